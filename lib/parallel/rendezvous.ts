// Rendezvous of the processes of one job (DESIGN.md decision 6): rank 0 serves the key-value store
// on PATHO_MASTER_ADDR:PATHO_MASTER_PORT, every rank connects, announces itself and waits for the
// others; a rank that does not arrive in time is named. Communicators exchange their NCCL id or
// Gloo addresses through the same store.
import * as os from 'node:os';
import { StoreClient, StoreError, StoreServer } from './store';

export interface RendezvousOptions {
  rank: number;
  worldSize: number;
  /** rank within this node (picks the GPU); defaults to rank */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** how long to wait for every rank to arrive (and for each collective's setup) */
  timeoutMs: number;
}

function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number | null, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback === null) throw new StoreError(`Expected ${name} to be set (an integer >= ${min}) but it is not set; start workers with \`patho launch\``);
    return fallback;
  }
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new StoreError(`Expected an integer >= ${min} for ${name} but received '${raw}'`);
  return v;
}

/** Reads PATHO_RANK, PATHO_WORLD_SIZE, PATHO_LOCAL_RANK, PATHO_MASTER_ADDR, PATHO_MASTER_PORT (as set by `patho launch`). */
export function rendezvousOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, timeoutMs?: number): RendezvousOptions {
  const worldSize = envInt(env, 'PATHO_WORLD_SIZE', 1, 1);
  const rank = envInt(env, 'PATHO_RANK', 0, 0);
  if (rank >= worldSize) throw new StoreError(`Expected PATHO_RANK below PATHO_WORLD_SIZE (${worldSize}) but received '${rank}'`);
  return {
    rank,
    worldSize,
    localRank: envInt(env, 'PATHO_LOCAL_RANK', rank, 0),
    masterAddr: env.PATHO_MASTER_ADDR || '127.0.0.1',
    masterPort: envInt(env, 'PATHO_MASTER_PORT', worldSize > 1 ? null : 0, 0),
    timeoutMs: timeoutMs ?? envInt(env, 'PATHO_TIMEOUT_MS', 300_000, 1),
  };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function rankList(ranks: number[]): string {
  return `${ranks.length > 1 ? 'ranks' : 'rank'} ${ranks.join(', ')}`;
}

export class Rendezvous {
  private counters = new Map<string, number>();
  private closed = false;

  private constructor(readonly options: RendezvousOptions, readonly store: StoreClient, private readonly server: StoreServer | null) {}

  get rank(): number { return this.options.rank; }
  get worldSize(): number { return this.options.worldSize; }
  get localRank(): number { return this.options.localRank; }
  get timeoutMs(): number { return this.options.timeoutMs; }

  /** Rank 0 serves the store; every rank connects, announces itself and waits for all the others. */
  static async join(options: RendezvousOptions = rendezvousOptionsFromEnv()): Promise<Rendezvous> {
    const { rank, masterAddr, timeoutMs } = options;
    if (options.worldSize > 1 && options.masterPort === 0) {
      throw new StoreError(`Expected a master port for a job of ${options.worldSize} ranks but received 0 (only a single rank may let the system pick one)`);
    }
    const server = rank === 0 ? await StoreServer.listen(masterAddr, options.masterPort) : null;
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
    } catch (e) {
      await r.close({ waitForOthers: false });
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
    for (let k = 0; k < this.worldSize; k++) if (await this.store.has(`gone/${k}`)) gone.push(k);
    return gone;
  }

  /**
   * Leaves the job: marks this rank done; rank 0 then waits (up to the timeout) for the others to be
   * done before it stops serving the store, so nobody loses the store mid-setup. Idempotent.
   */
  async close(opts: { waitForOthers?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.store.set(`done/${this.rank}`, '1');
      const server = this.server;
      if (server && opts.waitForOthers !== false) {
        const deadline = Date.now() + this.timeoutMs;
        const busy = (k: number): boolean => !server.has(`done/${k}`) && !server.has(`gone/${k}`);
        const others = Array.from({ length: this.worldSize - 1 }, (_, i) => i + 1);
        while (others.some(busy) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      }
    } catch {
      // the store is already gone (rank 0 exited): nothing left to tell it
    } finally {
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
        const missing: number[] = [];
        for (let j = 0; j < this.worldSize; j++) if (!(await this.store.has(key(j)))) missing.push(j);
        const gone = (await this.goneRanks()).filter((g) => missing.includes(g));
        const { masterAddr, masterPort } = this.options;
        throw new StoreError(`rank ${this.rank}: ${rankList(missing)} did not arrive at ${what} within ${timeoutMs} ms ` +
          `(world size ${this.worldSize}, store ${masterAddr}:${masterPort})` +
          (gone.length ? `; ${rankList(gone)} exited` : ''), true);
      }
    }
  }
}
