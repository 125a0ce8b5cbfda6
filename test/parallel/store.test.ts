// The rendezvous key-value store over loopback TCP: set, waiting get with timeout, binary values,
// connection retries that give up with the address, and ranks whose connection drops are "gone".
import t from 'tap';
import { StoreClient, StoreServer } from '../../lib/parallel/store';

t.test('store: set, waiting get, timeout, binary values', async (t) => {
  const server = await StoreServer.listen('127.0.0.1', 0);
  const a = await StoreClient.connect('127.0.0.1', server.port, 2000);
  const b = await StoreClient.connect('127.0.0.1', server.port, 2000);
  const waiting = b.get('k', 2000);
  await new Promise((r) => setTimeout(r, 50));
  const bytes = Buffer.from([0, 255, 1, 128, 10, 13]);
  await a.set('k', bytes);
  t.same([...(await waiting)], [...bytes], 'a waiting get wakes with the value, bytes intact');
  t.equal(await a.has('k'), true);
  t.equal(await a.has('nope'), false);
  const start = Date.now();
  await t.rejects(a.get('never', 200), { code: 'ERR_PATHO_COMM', timedOut: true, message: /key 'never' not set within 200 ms/ });
  t.ok(Date.now() - start >= 190, 'waited for the timeout');
  const big = Buffer.alloc(300_000, 7);
  await a.set('big', big);
  t.equal((await b.get('big', 0)).length, 300_000);
  a.close();
  b.close();
  await server.close();
  await t.rejects(StoreClient.connect('127.0.0.1', server.port, 300), {
    message: /could not reach the rendezvous store at 127.0.0.1:\d+ within 300 ms \(ECONNREFUSED\)/,
  });
});

t.test('a connection that announced a rank and closes without done/<rank> marks it gone', async (t) => {
  const server = await StoreServer.listen('127.0.0.1', 0);
  const a = await StoreClient.connect('127.0.0.1', server.port, 2000);
  const b = await StoreClient.connect('127.0.0.1', server.port, 2000);
  const c = await StoreClient.connect('127.0.0.1', server.port, 2000);
  await a.set('rank/1', 'x');
  await b.set('rank/2', 'x');
  await b.set('done/2', '1');
  a.close();
  b.close();
  t.match((await c.get('gone/1', 2000)).toString(), /^\d{4}-\d\d-\d\dT/, 'rank 1 is gone (with the time)');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(await c.has('gone/2'), false, 'rank 2 said it was done');
  c.close();
  await server.close();
});
