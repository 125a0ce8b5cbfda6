// Symbol.dispose and Symbol.asyncDispose, which `using` needs at run time, for Node 20 releases
// before 20.4 that lack them (Node's own names, so its objects and ours agree). Imported for this
// effect by the classes that are Disposable. A leaf module: it imports nothing from patho.
const symbols = Symbol as unknown as { dispose?: symbol; asyncDispose?: symbol };
symbols.dispose ??= Symbol.for('nodejs.dispose');
symbols.asyncDispose ??= Symbol.for('nodejs.asyncDispose');

export {};
