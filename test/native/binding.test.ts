// The binding matches the Backend interface exactly (issue 12): every op of native/core/backend.h is
// exported under its name with its parameters in order (struct parameters flattened into their
// fields), lib/native.ts declares the same, and the binding refuses extra arguments. The
// communicator's methods have one name each in communicator.h, NativeComm and lib/parallel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { native } from '../../lib/native';
import { Communicator } from '../../lib/parallel/communicator';

const root = path.resolve(__dirname, '..', '..');
const read = (p: string): string => fs.readFileSync(path.join(root, p), 'utf8');
const stripComments = (s: string): string => s.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

/** struct Name { float a = 1, b = 2; bool c = false; } -> { Name: [a, b, c] } */
function structFields(src: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of src.matchAll(/struct\s+(\w+)\s*\{([^}]*)\};/g)) {
    const fields: string[] = [];
    for (const decl of m[2].split(';')) {
      const d = decl.trim();
      if (!d) continue;
      const declarators = d.replace(/^[\w:<>]+\s+/, '').split(',');
      for (const x of declarators) fields.push(x.split('=')[0].trim());
    }
    out.set(m[1], fields);
  }
  return out;
}

/** Every pure virtual method of the class in src: name -> parameter names (structs expanded). */
function virtualMethods(src: string, structs: Map<string, string[]>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of src.matchAll(/virtual\s+[\w:<>&*\s]+?\b(\w+)\s*\(([^)]*)\)\s*(?:const\s*)?(?:=\s*0|\{[^}]*\})\s*;?/g)) {
    const params: string[] = [];
    for (const p of m[2]
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      const name = /(\w+)\s*$/.exec(p)![1];
      const type = /(\w+)\s*&?\s*\w+\s*$/.exec(p.replace(/^const\s+/, ''))?.[1] ?? '';
      params.push(...(structs.get(type) ?? [name]));
    }
    out.set(m[1], params);
  }
  return out;
}

/** The members of `interface Binding { ... }` in lib/native.ts that are methods: name -> parameter names. */
function bindingInterface(src: string): Map<string, string[]> {
  const body = /export interface Binding(?: extends [\w, ]+)? \{([\s\S]*?)\n\}/.exec(src)![1];
  const out = new Map<string, string[]>();
  for (const m of stripComments(body).matchAll(/^\s*(\w+)\(([^)]*)\)\s*:/gm)) {
    out.set(
      m[1],
      m[2]
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => p.split(/\??:/)[0].trim()),
    );
  }
  return out;
}

const backendSrc = stripComments(read('native/core/backend.h'));
const backend = virtualMethods(backendSrc, structFields(backendSrc));
// Backend methods that are not ops of the binding, and where JS reaches them instead.
const notOps: Record<string, string> = {
  device: 'NativeTensor.device',
  name: 'backendName(device)',
  allocator: 'memoryStats(device)',
  copyFromHost: 'NativeTensor.write',
  copyToHost: 'NativeTensor.read',
  synchronize: 'synchronize(device)',
};

t.test('backend.h parses into the ops this test expects', async (t) => {
  t.ok(backend.size > 30, `${backend.size} virtual methods found`);
  t.same(
    backend.get('sgdUpdate'),
    ['params', 'grads', 'momentumBuf', 'lr', 'momentum', 'dampening', 'weightDecay', 'nesterov'],
    'struct parameters are expanded into their fields',
  );
  for (const n of Object.keys(notOps)) t.ok(backend.has(n), `backend.h declares ${n}`);
});

t.test('the binding exports exactly the Backend ops, with backend.h parameter names in order', async (t) => {
  const ops = [...backend.keys()].filter((n) => !(n in notOps)).sort();
  t.same(Object.keys(native.opParams).sort(), ops, 'op names');
  const exported = native as unknown as Record<string, unknown>;
  for (const op of ops) {
    t.type(exported[op], 'function', `${op} is exported`);
    t.same(native.opParams[op], backend.get(op), `${op}(${backend.get(op)!.join(', ')})`);
  }
});

t.test('lib/native.ts declares every op with the same parameters', async (t) => {
  const declared = bindingInterface(read('lib/native.ts'));
  for (const [op, params] of Object.entries(native.opParams)) {
    t.same(declared.get(op), params, `Binding.${op}`);
  }
});

t.test('the binding refuses more arguments than an op has, naming them', async (t) => {
  for (const [op, params] of Object.entries(native.opParams)) {
    const fn = (native as unknown as Record<string, (...a: unknown[]) => void>)[op];
    t.throws(
      () => fn(...new Array(params.length + 1).fill(undefined)),
      {
        code: 'ERR_PATHO_ARG',
        message: `${op}: Expected ${params.length} arguments (${params.join(', ')}) but received ${params.length + 1}`,
      },
      op,
    );
  }
});

t.test('communicator methods have one name in communicator.h, NativeComm and lib/parallel', async (t) => {
  const commSrc = stripComments(read('native/comm/communicator.h'));
  const methods = [...virtualMethods(commSrc, new Map()).keys()];
  const accessors = ['rank', 'size', 'device', 'kind'];
  t.same(methods.filter((m) => !accessors.includes(m)).sort(), ['abort', 'allReduce', 'allReduceStart', 'barrier', 'broadcast', 'wait']);
  const [comm] = native.commCreateInProcess(['cpu:0']);
  try {
    for (const m of methods) {
      const kind = accessors.includes(m) ? 'accessor' : 'method';
      if (kind === 'method') t.type((comm as unknown as Record<string, unknown>)[m], 'function', `NativeComm.${m}`);
      else t.ok(m in comm, `NativeComm.${m}`);
      const desc = Object.getOwnPropertyDescriptor(Communicator.prototype, m);
      t.ok(kind === 'method' ? typeof desc?.value === 'function' : typeof desc?.get === 'function', `Communicator.${m}`);
    }
    for (const old of ['commAllReduce', 'commWait', 'commBroadcast', 'commBarrier', 'commAbort', 'allReduceSum', 'allReduceAvg']) {
      t.notOk(old in native, `no ${old}`);
    }
  } finally {
    comm.destroy();
  }
});

t.test('float16 is gone: declared and never built', async (t) => {
  t.throws(() => native.empty([1], 'float16' as never), {
    code: 'ERR_PATHO_DTYPE',
    message: /Expected one of float32, bfloat16, uint8 for dtype but received 'float16'/,
  });
  t.notMatch(read('native/core/dtype.h'), /F16\b(?<!BF16)/);
});
