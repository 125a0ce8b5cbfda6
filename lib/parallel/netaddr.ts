// Addresses between hosts: where rank 0 serves the rendezvous store, and which address each rank
// gives Gloo to listen on, so that ranks on other hosts can reach it. PATHO_GLOO_HOST (an address or
// name of this host) or PATHO_GLOO_IFACE (an interface) decide; otherwise the address this rank's
// connection to the store came from, as the store saw it (the route the network itself chose).
import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import { PathoError } from '../errors';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}

/** Every address of this host's interfaces (all families, loopback included). */
export function localAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
}

function describeInterfaces(): string {
  return Object.entries(os.networkInterfaces())
    .map(([name, l]) => `${name} (${(l ?? []).map((a) => a.address).join(', ') || 'no address'})`)
    .join(', ');
}

async function resolve(host: string): Promise<{ address: string; family: number }> {
  return dns.lookup(host);
}

/**
 * Where rank 0 serves the store for a master address: the address itself when it is loopback or one
 * of this host's; the wildcard otherwise (a name that resolves to 127.0.1.1 here, as Debian's
 * /etc/hosts maps the host name, while the other hosts reach it at its real address).
 */
export async function storeListenHost(masterAddr: string): Promise<string> {
  if (isLoopback(masterAddr)) return masterAddr;
  let r: { address: string; family: number };
  try {
    r = await resolve(masterAddr);
  } catch (e) {
    throw new PathoError(
      'ERR_PATHO_COMM',
      `rank 0 could not resolve the master address '${masterAddr}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'set PATHO_MASTER_ADDR (or MASTER_ADDR) to a name or address of the host of rank 0',
    );
  }
  if (!isLoopback(r.address) && localAddresses().includes(r.address)) return r.address;
  return r.family === 6 ? '::' : '0.0.0.0';
}

/** The first IPv4 address of an interface (else its first non-link-local IPv6 address). */
export function interfaceAddress(iface: string, what = 'PATHO_GLOO_IFACE'): string {
  const list = os.networkInterfaces()[iface];
  if (!list || list.length === 0) {
    throw new PathoError(
      'ERR_PATHO_COMM',
      `Expected a network interface of this host for ${what} but received '${iface}' (this host has: ${describeInterfaces()})`,
    );
  }
  const v4 = list.find((a) => a.family === 'IPv4');
  const v6 = list.find((a) => a.family === 'IPv6' && !a.address.toLowerCase().startsWith('fe80:'));
  const a = v4 ?? v6;
  if (!a)
    throw new PathoError(
      'ERR_PATHO_COMM',
      `Expected an IPv4 or global IPv6 address on interface ${iface} (${what}) but it has only ${list.map((x) => x.address).join(', ')}`,
    );
  return a.address;
}

/** An address or host name of this host (PATHO_GLOO_HOST), as the address Gloo binds. */
export async function localHostAddress(host: string, what = 'PATHO_GLOO_HOST'): Promise<string> {
  let address = host;
  if (!net.isIP(host)) {
    try {
      address = (await resolve(host)).address;
    } catch (e) {
      throw new PathoError(
        'ERR_PATHO_COMM',
        `Expected an address or resolvable name of this host for ${what} but received '${host}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
  }
  if (!localAddresses().includes(address)) {
    throw new PathoError(
      'ERR_PATHO_COMM',
      `Expected an address of this host for ${what} but received '${host}'${address !== host ? ` (${address})` : ''}; this host has: ${describeInterfaces()}`,
    );
  }
  return address;
}

/** How the job is spread, as the store saw the ranks' connections (rank 0 works it out once). */
export interface NetworkInfo {
  /** every rank reached the store over loopback: Gloo stays on 127.0.0.1 */
  singleHost: boolean;
  /** the address ranks on other hosts reached rank 0 at (for ranks on rank 0's host) */
  masterSeenAt: string | null;
}

/** From each rank's addr/<r> (where it came from) and via/<r> (which of rank 0's addresses it reached). */
export function networkInfo(addrs: string[], vias: string[]): NetworkInfo {
  const remote = addrs.findIndex((a) => a !== '' && !isLoopback(a));
  return { singleHost: remote < 0, masterSeenAt: remote < 0 ? null : vias[remote] || null };
}

export interface BindChoice {
  host: string;
  /** why this address, for messages */
  how: string;
}

/**
 * The address this rank's Gloo listens on: PATHO_GLOO_HOST, else PATHO_GLOO_IFACE, else 127.0.0.1
 * when every rank is on this host, else where the store saw this rank (ranks on rank 0's host that
 * reached it over loopback: the address the other hosts reached rank 0 at). A loopback address in a
 * job over several hosts is refused: the other hosts could never connect to it.
 */
export async function glooBindHost(
  rank: number,
  env: NodeJS.ProcessEnv,
  info: () => Promise<{ layout: NetworkInfo; seenAs: string }>,
): Promise<BindChoice> {
  let choice: BindChoice;
  if (env.PATHO_GLOO_HOST) {
    choice = { host: await localHostAddress(env.PATHO_GLOO_HOST), how: `PATHO_GLOO_HOST=${env.PATHO_GLOO_HOST}` };
  } else if (env.PATHO_GLOO_IFACE) {
    choice = { host: interfaceAddress(env.PATHO_GLOO_IFACE), how: `PATHO_GLOO_IFACE=${env.PATHO_GLOO_IFACE}` };
  } else {
    const { layout, seenAs } = await info();
    if (layout.singleHost) return { host: '127.0.0.1', how: 'every rank on this host' };
    if (!isLoopback(seenAs)) return { host: seenAs, how: 'the address this rank reached the rendezvous store from' };
    if (!layout.masterSeenAt)
      throw new PathoError(
        'ERR_PATHO_COMM',
        `rank ${rank}: could not tell which address other hosts reach this host at; set PATHO_GLOO_IFACE or PATHO_GLOO_HOST`,
      );
    return { host: layout.masterSeenAt, how: "the address other hosts reached rank 0's host at" };
  }
  if (isLoopback(choice.host)) {
    const { layout } = await info();
    if (!layout.singleHost) {
      throw new PathoError(
        'ERR_PATHO_COMM',
        `rank ${rank}: Gloo would listen on the loopback address ${choice.host} (${choice.how}), which ranks on other hosts cannot reach; ` +
          'set PATHO_GLOO_IFACE or PATHO_GLOO_HOST to the interface or address the hosts share',
      );
    }
  }
  return choice;
}
