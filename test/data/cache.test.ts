// Decode cache: byte budget respected, concurrent requests share one decode, shared memory.
import t from 'tap';
import { DecodeCache, toShared } from '../../lib/data/cache';
import type { SampleSource } from '../../lib/data/sample';

const entry = (bytes: number): SampleSource => ({
  image: new Uint8Array(bytes),
  mask: new Uint8Array(0),
  width: 1,
  height: 1,
  channels: 1,
});

t.test('keeps entries while they fit the budget; misses and hits counted', async (t) => {
  const c = new DecodeCache(250);
  let loads = 0;
  const load = (n: number) => async () => {
    loads++;
    return entry(n);
  };
  await c.get('a', load(100));
  await c.get('b', load(100));
  await c.get('c', load(100)); // would exceed 250: served, not kept
  t.equal(c.bytes, 200);
  await c.get('a', load(100));
  await c.get('c', load(100));
  t.equal(loads, 4, 'a cached, c decoded again');
  t.same([c.hits, c.misses], [1, 4]);
  const off = new DecodeCache(0);
  await off.get('a', load(1));
  await off.get('a', load(1));
  t.equal(off.bytes, 0);
});

t.test('concurrent requests for one key share a single decode', async (t) => {
  const c = new DecodeCache(0);
  let loads = 0;
  const slow = async (): Promise<SampleSource> => {
    loads++;
    await new Promise((r) => setTimeout(r, 20));
    return entry(4);
  };
  const [x, y] = await Promise.all([c.get('k', slow), c.get('k', slow)]);
  t.equal(loads, 1);
  t.equal(x, y);
});

t.test('toShared copies into a SharedArrayBuffer', async (t) => {
  const a = Uint8Array.from([1, 2, 3]);
  const s = toShared(a);
  t.ok(s.buffer instanceof SharedArrayBuffer);
  t.same(Array.from(s), [1, 2, 3]);
});
