// Setting up a Gloo rank between hosts: picks the address it listens on (netaddr.ts) and, when Gloo
// cannot connect the full mesh, says which peer's address is unreachable from here. Gloo's own
// message ("connect: Network is unreachable") names neither the rank nor, on the connecting side,
// the address; so every rank also listens on a probe port at its Gloo address while Gloo connects,
// and a rank whose setup failed tries each peer's probe.
import * as net from 'node:net';
import { native, type NativeComm } from '../native';
import { glooBindHost, isLoopback } from './netaddr';
import type { Rendezvous } from './rendezvous';

const PROBE_MS = 2000;

function listenProbe(host: string): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const s = net.createServer((sock) => sock.destroy());
    s.once('error', () => resolve(null)); // a probe is a diagnosis aid: never a reason to fail
    s.listen(0, host, () => {
      s.unref();
      resolve(s);
    });
  });
}

// '' when host:port answers within PROBE_MS, else the reason (ECONNREFUSED, ENETUNREACH, 'no answer within 2000 ms').
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (why: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer within ${PROBE_MS} ms`), PROBE_MS);
    s.once('connect', () => done(''));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** Which peers' Gloo addresses this rank cannot reach (those that got as far as publishing one). */
async function unreachablePeers(rdv: Rendezvous, prefix: string): Promise<string[]> {
  const gone = new Set(await rdv.goneRanks().catch(() => [] as number[]));
  const checks: Promise<string>[] = [];
  for (let k = 0; k < rdv.worldSize; k++) {
    if (k === rdv.rank || gone.has(k)) continue;
    checks.push(
      (async () => {
        let rec: { host: string; port: number; how: string };
        try {
          rec = JSON.parse((await rdv.store.get(`${prefix}/probe/${k}`, 0, PROBE_MS)).toString()) as typeof rec;
        } catch {
          return ''; // rank k never got this far; the rendezvous names it
        }
        const why = await probe(rec.host, rec.port);
        return why ? `rank ${k}'s Gloo address ${rec.host} (${rec.how}) is unreachable from rank ${rdv.rank} (${why})` : '';
      })(),
    );
  }
  return (await Promise.all(checks)).filter((s) => s !== '');
}

/**
 * This process's native Gloo rank over every rank of the rendezvous. bindHost: the address to
 * listen on (default: netaddr.ts's choice). Errors add which peers are unreachable, and why.
 */
export async function createGlooRank(rdv: Rendezvous, opts: { bindHost?: string; device: string; timeoutMs: number }): Promise<NativeComm> {
  const prefix = rdv.nextPrefix('gloo');
  const { masterAddr, masterPort } = rdv.options;
  const bind =
    opts.bindHost !== undefined ? { host: opts.bindHost, how: 'bindHost' } : await glooBindHost(rdv.rank, process.env, () => rdv.network());
  const probeServer = rdv.worldSize > 1 ? await listenProbe(bind.host) : null;
  try {
    if (probeServer) {
      const { port } = probeServer.address() as net.AddressInfo;
      await rdv.store.set(`${prefix}/probe/${rdv.rank}`, JSON.stringify({ host: bind.host, port, how: bind.how }));
    }
    return await native.commCreateGloo(rdv.rank, rdv.worldSize, masterAddr, masterPort, prefix, opts.timeoutMs, bind.host, opts.device);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PATHO_COMM' && probeServer) {
      const bad = await unreachablePeers(rdv, prefix).catch(() => [] as string[]);
      if (bad.length > 0) {
        err.message += `; ${bad.join('; ')}: set PATHO_GLOO_IFACE or PATHO_GLOO_HOST on that rank's host to an address the others reach`;
      } else if (isLoopback(bind.host) && !isLoopback(masterAddr)) {
        err.message += `; this rank listens on ${bind.host} (${bind.how})`;
      }
    }
    throw err;
  } finally {
    probeServer?.close();
  }
}
