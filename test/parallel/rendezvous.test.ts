// Rendezvous through rank 0's TCP store, several ranks in this one process (all on loopback):
// joining, barriers, a rank that never arrives is named, a rank whose connection drops is "gone",
// and the environment is validated.
import t from 'tap';
import { Rendezvous, rendezvousOptionsFromEnv, type RendezvousOptions } from '../../lib/parallel/rendezvous';
import { StoreClient, StoreServer } from '../../lib/parallel/store';
import { freePort } from '../../lib/parallel/launch';

const opts = (rank: number, worldSize: number, masterPort: number, timeoutMs = 5000): RendezvousOptions => ({
  rank,
  worldSize,
  localRank: rank,
  masterAddr: '127.0.0.1',
  masterPort,
  timeoutMs,
});

t.test('three ranks join, barrier twice, close', async (t) => {
  const port = await freePort('127.0.0.1');
  const rs = await Promise.all([0, 1, 2].map((r) => Rendezvous.join(opts(r, 3, port))));
  t.same(
    rs.map((r) => [r.rank, r.worldSize]),
    [
      [0, 3],
      [1, 3],
      [2, 3],
    ],
  );
  await Promise.all(rs.map((r) => r.barrier('a')));
  await Promise.all(rs.map((r) => r.barrier('a')));
  t.same(
    rs.map((r) => r.nextPrefix('gloo')),
    ['gloo/0', 'gloo/0', 'gloo/0'],
    'same prefixes on every rank',
  );
  t.same(await rs[1].goneRanks(), []);
  await Promise.all(rs.map((r) => r.close()));
  await Promise.all(rs.map((r) => r.close()));
  t.pass('close is idempotent');
});

t.test('a rank that never arrives is named by every rank that did', async (t) => {
  const port = await freePort('127.0.0.1');
  const start = Date.now();
  const joins = await Promise.allSettled([0, 1].map((r) => Rendezvous.join(opts(r, 3, port, 800))));
  const reasons = joins.map((j) => (j.status === 'rejected' ? (j.reason as Error & { code?: string }) : null));
  t.equal(reasons[0]?.code, 'ERR_PATHO_COMM');
  t.match(reasons[0]?.message, /^rank 0: rank 2 did not arrive at the rendezvous within 800 ms \(world size 3, store 127.0.0.1:\d+\)$/);
  t.match(reasons[1]?.message, /^rank 1: rank 2 did not arrive at the rendezvous within 800 ms/);
  t.ok(Date.now() - start < 4000, 'within the timeout');
});

t.test('a barrier names the missing ranks, and ranks that died are gone', async (t) => {
  const port = await freePort('127.0.0.1');
  const rs = await Promise.all([0, 1, 2, 3].map((r) => Rendezvous.join(opts(r, 4, port, 600))));
  // rank 3 "dies": its store connection closes without saying it is done
  (rs[3] as unknown as { store: StoreClient }).store.close();
  await new Promise((r) => setTimeout(r, 100));
  t.same(await rs[0].goneRanks(), [3]);
  await t.rejects(Promise.all([rs[0].barrier('step'), rs[1].barrier('step')]), {
    message: /^rank [01]: ranks 2, 3 did not arrive at barrier 'step' within 600 ms .*; rank 3 exited$/,
  });
  await Promise.all(rs.slice(1, 3).map((r) => r.close()));
  await rs[0].close();
});

t.test('environment: defaults and one clear error per bad value', async (t) => {
  const vars = {
    rank: 'PATHO_RANK',
    worldSize: 'PATHO_WORLD_SIZE',
    localRank: 'PATHO_LOCAL_RANK',
    masterAddr: 'PATHO_MASTER_ADDR',
    masterPort: 'PATHO_MASTER_PORT',
  };
  t.same(rendezvousOptionsFromEnv({}), {
    rank: 0,
    worldSize: 1,
    localRank: 0,
    masterAddr: '127.0.0.1',
    masterPort: 0,
    timeoutMs: 300000,
    source: 'patho',
    vars,
  });
  t.same(
    rendezvousOptionsFromEnv(
      { PATHO_RANK: '3', PATHO_WORLD_SIZE: '4', PATHO_LOCAL_RANK: '1', PATHO_MASTER_ADDR: 'node0', PATHO_MASTER_PORT: '29500' },
      1000,
    ),
    { rank: 3, worldSize: 4, localRank: 1, masterAddr: 'node0', masterPort: 29500, timeoutMs: 1000, source: 'patho', vars },
  );
  t.throws(() => rendezvousOptionsFromEnv({ PATHO_TIMEOUT_MS: '15s' }), {
    code: 'ERR_PATHO_LAUNCH',
    message: "Expected an integer >= 1 for PATHO_TIMEOUT_MS but received '15s'",
  });
  t.throws(() => rendezvousOptionsFromEnv({ PATHO_WORLD_SIZE: '2', PATHO_RANK: '1' }), { message: /Expected PATHO_MASTER_PORT to be set/ });
  t.throws(() => rendezvousOptionsFromEnv({ PATHO_RANK: 'x' }), { message: "Expected an integer >= 0 for PATHO_RANK but received 'x'" });
  t.throws(() => rendezvousOptionsFromEnv({ PATHO_RANK: '2', PATHO_WORLD_SIZE: '2', PATHO_MASTER_PORT: '1' }), {
    message: "Expected PATHO_RANK below PATHO_WORLD_SIZE (2) but received '2'",
  });
  t.throws(() => rendezvousOptionsFromEnv({ PATHO_WORLD_SIZE: '0' }), { message: /Expected an integer >= 1 for PATHO_WORLD_SIZE/ });
  const taken = await StoreServer.listen('127.0.0.1', 0);
  await t.rejects(Rendezvous.join(opts(0, 2, 0)), { message: /^Expected a master port for a job of 2 ranks but received 0/ });
  await t.rejects(StoreServer.listen('127.0.0.1', taken.port), {
    code: 'ERR_PATHO_COMM',
    message: /rank 0 could not serve the rendezvous store on 127.0.0.1:\d+ \(EADDRINUSE\); .*pick another PATHO_MASTER_PORT/,
  });
  await taken.close();
});
