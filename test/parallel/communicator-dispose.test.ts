// Communicators are Disposable: `using` destroys them at the end of the block (idempotently), and
// a destroyed communicator refuses collectives with ERR_PATHO_DISPOSED.
import t from 'tap';
import { native } from '../../lib/native';
import { Communicator } from '../../lib/parallel/communicator';

t.test('`using` destroys in-process communicators', async (t) => {
  let kept: Communicator[] = [];
  {
    const [c0, c1] = Communicator.inProcess(['cpu:0', 'cpu:1']);
    using a = c0;
    using b = c1;
    kept = [a, b];
    t.same(
      kept.map((c) => c.handle.destroyed),
      [false, false],
    );
  }
  t.same(
    kept.map((c) => c.handle.destroyed),
    [true, true],
    'destroyed when the block ended',
  );
  kept[0][Symbol.dispose]();
  t.equal(kept[0].handle.destroyed, true, 'a second dispose is a no-op');
  const x = native.empty([2], 'float32', 'cpu:0');
  t.throws(() => kept[0].allReduce(x), { code: 'ERR_PATHO_DISPOSED' });
  x.dispose();
});
