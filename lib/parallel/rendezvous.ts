// Rendezvous of the processes of one job (DESIGN.md decision 6): rank 0 serves the key-value store
// on PATHO_MASTER_ADDR:PATHO_MASTER_PORT, every rank connects, announces itself and waits for the
// others; a rank that does not arrive in time is named. Communicators exchange their NCCL id or
// Gloo addresses through the same store. Placement comes from scheduler.ts (patho launch, torchrun,
// SLURM, mpirun); liveness.ts names ranks that fall silent; netaddr.ts picks addresses between hosts.
import * as os from 'node:os';
import { PathoError } from '../errors';
import { type Heartbeat, silenceThresholdMs, silentRanks, startHeartbeat, type Silence, watchLauncher } from './liveness';
import { networkInfo, storeListenHost, type NetworkInfo } from './netaddr';
import { describePlacement, detectPlacement, type PlacementSource, type PlacementVars } from './scheduler';
import { StoreClient, StoreError, StoreServer } from './store';

export { isLoopback } from './netaddr';

export interface RendezvousOptions {
  rank: number;
  worldSize: number;
  /** rank within this node (picks the GPU); defaults to rank */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** how long to wait for every rank to arrive (and for each collective's setup) */
  timeoutMs: number;
  /** whose variables placed this process (patho launch, torchrun, SLURM, mpirun), for the log and messages */
  source?: PlacementSource;
  vars?: PlacementVars;
}

/**
 * This process's rank, world size, local rank and master from the environment (scheduler.ts: the
 * variables of patho launch, else torchrun/Kubernetes, SLURM or Open MPI), and PATHO_TIMEOUT_MS.
 */
export function rendezvousOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, timeoutMs?: number): RendezvousOptions {
  const p = detectPlacement(env);
  let timeout = timeoutMs;
  if (timeout === undefined) {
    const raw = env.PATHO_TIMEOUT_MS;
    timeout = raw === undefined || raw === '' ? 300_000 : Number(raw);
    if (!Number.isInteger(timeout) || timeout < 1)
      throw new PathoError('ERR_PATHO_LAUNCH', `Expected an integer >= 1 for PATHO_TIMEOUT_MS but received '${raw}'`);
  }
  return {
    rank: p.rank,
    worldSize: p.worldSize,
    localRank: p.localRank,
    masterAddr: p.masterAddr,
    masterPort: p.masterPort,
    timeoutMs: timeout,
    source: p.source,
    vars: p.vars,
  };
}

function rankList(ranks: number[]): string {
  return `${ranks.length > 1 ? 'ranks' : 'rank'} ${ranks.join(', ')}`;
}

export class Rendezvous {
  private counters = new Map<string, number>();
  private closed = false;
  private heartbeat: Heartbeat | null = null;
  private netInfo: Promise<NetworkInfo> | null = null;
  /** ranks a failed collective found silent: close() does not wait for them */
  private readonly silent = new Set<number>();

  private constructor(
    readonly options: RendezvousOptions,
    readonly store: StoreClient,
    private readonly server: StoreServer | null,
  ) {}

  get rank(): number {
    return this.options.rank;
  }
  get worldSize(): number {
    return this.options.worldSize;
  }
  get localRank(): number {
    return this.options.localRank;
  }
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  /** Rank 0 serves the store; every rank connects, announces itself and waits for all the others. */
  static async join(options: RendezvousOptions = rendezvousOptionsFromEnv()): Promise<Rendezvous> {
    const { rank, masterAddr, timeoutMs } = options;
    watchLauncher();
    if (options.worldSize > 1 && options.masterPort === 0) {
      throw new StoreError(
        `Expected a master port for a job of ${options.worldSize} ranks but received 0 (only a single rank may let the system pick one)`,
      );
    }
    if (options.worldSize > 1 && options.source && options.source !== 'patho' && options.vars) {
      process.stderr.write(describePlacement({ ...options, localWorldSize: null, source: options.source, vars: options.vars }) + '\n');
    }
    const server = rank === 0 ? await StoreServer.listen(await storeListenHost(masterAddr), options.masterPort) : null;
    const port = server ? server.port : options.masterPort;
    let store: StoreClient;
    try {
      store = await StoreClient.connect(masterAddr, port, timeoutMs, `rank ${rank}`);
    } catch (e) {
      await server?.close();
      throw e;
    }
    store.unref();
    const r = new Rendezvous({ ...options, masterPort: port }, store, server);
    try {
      await store.set(`rank/${rank}`, JSON.stringify({ host: os.hostname(), pid: process.pid }));
      await r.waitForAll((k) => `rank/${k}`, 'the rendezvous', timeoutMs);
      if (server) await r.network(); // publish how the job spreads over hosts: every rank may ask
      if (options.worldSize > 1) r.heartbeat = await startHeartbeat(masterAddr, port, rank, timeoutMs);
    } catch (e) {
      // rank 0 keeps the store a moment, so the ranks that did arrive report their own timeout
      await r.close({ waitMs: Math.min(timeoutMs, 2000) });
      throw e;
    }
    return r;
  }

  /** Returns once every rank has called barrier(name); names the ranks that did not, after timeoutMs. */
  async barrier(name: string, timeoutMs = this.timeoutMs): Promise<void> {
    const n = this.next(`barrier/${name}`);
    await this.store.set(`barrier/${name}/${n}/${this.rank}`, '1');
    await this.waitForAll((k) => `barrier/${name}/${n}/${k}`, `barrier '${name}'`, timeoutMs);
  }

  /** A fresh key prefix for a communicator; ranks that create communicators in the same order get the same one. */
  nextPrefix(kind: string): string {
    return `${kind}/${this.next(kind)}`;
  }

  /** Ranks whose connection to the store closed before they finished (they crashed or were killed). */
  async goneRanks(): Promise<number[]> {
    const gone: number[] = [];
    for (let k = 0; k < this.worldSize; k++) if (await this.store.has(`gone/${k}`, 3000)) gone.push(k);
    return gone;
  }

  /**
   * Ranks whose heartbeat stopped reaching the store (stopped, hung or cut off), and remembers them
   * so close() does not wait for them. Rejects when the store does not answer: rank 0 is the silent one.
   */
  async silentRanks(): Promise<Silence[]> {
    const s = await silentRanks(this.store, this.worldSize, silenceThresholdMs(this.timeoutMs));
    const others = s.filter((x) => x.rank !== this.rank);
    for (const x of others) this.silent.add(x.rank);
    return others;
  }

  /** How the ranks are spread over hosts, and where this rank is as the store saw it (for Gloo's address). */
  async network(): Promise<{ layout: NetworkInfo; seenAs: string }> {
    this.netInfo ??= (async (): Promise<NetworkInfo> => {
      if (this.server) {
        const get = (k: string): string => this.server!.value(k)?.toString() ?? '';
        const info = networkInfo(
          Array.from({ length: this.worldSize }, (_, k) => get(`addr/${k}`)),
          Array.from({ length: this.worldSize }, (_, k) => get(`via/${k}`)),
        );
        await this.store.set('network', JSON.stringify(info));
        return info;
      }
      return JSON.parse((await this.store.get('network', this.timeoutMs)).toString()) as NetworkInfo;
    })();
    const layout = await this.netInfo;
    return { layout, seenAs: (await this.store.get(`addr/${this.rank}`, this.timeoutMs)).toString() };
  }

  /**
   * Leaves the job: marks this rank done; rank 0 then waits (up to waitMs, default the timeout) for
   * the others that joined to be done, gone or silent before it stops serving the store, so nobody
   * loses the store mid-setup and survivors of a failure can still ask it who failed. Idempotent.
   */
  async close(opts: { waitForOthers?: boolean; waitMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // a silent rank 0 would never answer: leave without telling it
      if (!this.silent.has(0)) await this.store.set(`done/${this.rank}`, '1');
      const server = this.server;
      if (server && opts.waitForOthers !== false) {
        const deadline = Date.now() + (opts.waitMs ?? this.timeoutMs);
        const busy = (k: number): boolean =>
          server.has(`rank/${k}`) && !server.has(`done/${k}`) && !server.has(`gone/${k}`) && !this.silent.has(k);
        const others = Array.from({ length: this.worldSize - 1 }, (_, i) => i + 1);
        while (others.some(busy) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      }
    } catch {
      // the store is already gone (rank 0 exited): nothing left to tell it
    } finally {
      this.heartbeat?.stop();
      this.store.close();
      await this.server?.close();
    }
  }

  private next(kind: string): number {
    const n = this.counters.get(kind) ?? 0;
    this.counters.set(kind, n + 1);
    return n;
  }

  // Waits for key(k) of every rank k; on timeout names the ranks still missing (and those gone).
  private async waitForAll(key: (k: number) => string, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let k = 0; k < this.worldSize; k++) {
      try {
        await this.store.get(key(k), Math.max(0, deadline - Date.now()));
      } catch (e) {
        if (!(e instanceof StoreError && e.timedOut)) throw e;
        let missing: number[] = [];
        let gone: number[] = [];
        try {
          for (let j = 0; j < this.worldSize; j++) if (!(await this.store.has(key(j), 3000))) missing.push(j);
          gone = (await this.goneRanks()).filter((g) => missing.includes(g));
        } catch {
          missing = [k]; // the store went away meanwhile (rank 0 gave up too): name the rank we know of
        }
        const { masterAddr, masterPort } = this.options;
        throw new StoreError(
          `rank ${this.rank}: ${rankList(missing)} did not arrive at ${what} within ${timeoutMs} ms ` +
            `(world size ${this.worldSize}, store ${masterAddr}:${masterPort})` +
            (gone.length ? `; ${rankList(gone)} exited` : ''),
          true,
        );
      }
    }
  }
}
