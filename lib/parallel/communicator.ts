// Communicator: the TypeScript face of one rank of a native communicator (in-process CPU
// replicas, Gloo across processes, NCCL on GPUs). Collectives are queued on the rank's device and
// return at once; sync() waits for them and turns a failure into one error that names the rank
// and, where the rendezvous store knows, the ranks that died.
import '../disposable';
import { invalidOption } from '../errors';
import { native, type NativeComm, type NativeTensor } from '../native';
import { createGlooRank } from './gloo_peers';
import type { Rendezvous } from './rendezvous';

export type ReduceOp = 'sum' | 'avg';

export interface GlooOptions {
  /**
   * address this rank listens on for its peers; default: PATHO_GLOO_HOST, else the address of
   * PATHO_GLOO_IFACE, else 127.0.0.1 when every rank is on this host, else the address this rank
   * reached the rendezvous store from (lib/parallel/netaddr.ts)
   */
  bindHost?: string;
  /** CPU device whose queue runs the collectives (default 'cpu') */
  device?: string;
  timeoutMs?: number;
}

function expectOp(op: string): ReduceOp {
  if (op !== 'sum' && op !== 'avg') throw invalidOption('op', "'sum' or 'avg'", op);
  return op;
}

export class Communicator implements Disposable {
  constructor(
    readonly handle: NativeComm,
    private readonly rendezvous: Rendezvous | null = null,
  ) {}

  get rank(): number {
    return this.handle.rank;
  }
  get size(): number {
    return this.handle.size;
  }
  get device(): string {
    return this.handle.device;
  }
  get kind(): NativeComm['kind'] {
    return this.handle.kind;
  }

  /** One communicator per device ('cpu:0', 'cpu:1', ...) in this process; rank i drives devices[i]. */
  static inProcess(devices: string[], opts: { timeoutMs?: number } = {}): Communicator[] {
    if (!Array.isArray(devices) || devices.length === 0) {
      throw invalidOption('devices', 'a non-empty array of devices', devices);
    }
    return native.commCreateInProcess(devices, opts.timeoutMs).map((h) => new Communicator(h));
  }

  /** This process's rank of a Gloo communicator over every rank of the rendezvous. */
  static async gloo(rdv: Rendezvous, opts: GlooOptions = {}): Promise<Communicator> {
    const h = await createGlooRank(rdv, {
      ...(opts.bindHost !== undefined ? { bindHost: opts.bindHost } : {}),
      device: opts.device ?? 'cpu',
      timeoutMs: opts.timeoutMs ?? rdv.timeoutMs,
    });
    return new Communicator(h, rdv);
  }

  /** This process's rank of an NCCL communicator; rank 0 makes the unique id and the store carries it. */
  static async nccl(rdv: Rendezvous, device = `cuda:${rdv.localRank}`): Promise<Communicator> {
    const key = `${rdv.nextPrefix('nccl')}/id`;
    let id: string;
    if (rdv.rank === 0) {
      id = native.commNcclUniqueId();
      await rdv.store.set(key, id);
    } else {
      id = (await rdv.store.get(key, rdv.timeoutMs)).toString();
    }
    return new Communicator(await native.commCreateNccl(rdv.rank, rdv.worldSize, id, device), rdv);
  }

  /** One NCCL communicator per GPU of this process (ncclCommInitAll); rank i drives devices[i]. */
  static async ncclAll(devices: string[]): Promise<Communicator[]> {
    return (await native.commCreateNcclAll(devices)).map((h) => new Communicator(h));
  }

  /** Queues t = sum/average of t over all ranks (in place; e.g. a gradient arena or a view of one bucket). */
  allReduce(t: NativeTensor, op: ReduceOp = 'avg'): void {
    this.handle.allReduce(t, expectOp(op));
  }

  /**
   * Overlap with compute: queues the start of t's reduction; work queued afterwards runs at once
   * (the next buckets of backward) and must leave t alone until wait(). Collectives keep call order.
   */
  allReduceStart(t: NativeTensor, op: ReduceOp = 'avg'): void {
    this.handle.allReduceStart(t, expectOp(op));
  }

  /** Queues a wait: work queued after it runs after every started reduction (e.g. the optimizer step). */
  wait(): void {
    this.handle.wait();
  }

  /** Queues t = t of rank `root` (e.g. the initial parameters, so every replica starts equal). */
  broadcast(t: NativeTensor, root = 0): void {
    this.handle.broadcast(t, root);
  }

  /** Resolves once every rank has reached the barrier (and everything queued before it has run). */
  async barrier(): Promise<void> {
    this.handle.barrier();
    await this.sync();
  }

  /** Waits for everything queued on this rank's device; a failed collective rejects here. */
  async sync(): Promise<void> {
    try {
      await native.synchronize(this.device);
    } catch (e) {
      throw await this.explain(e);
    }
  }

  /**
   * Reduces scalar metrics (loss, Dice counts, ...) over all ranks for reporting: every rank calls
   * it with the same keys in the same order and gets the sum or average back.
   */
  async reduceMetrics<K extends string>(values: Record<K, number>, op: ReduceOp = 'avg'): Promise<Record<K, number>> {
    const keys = Object.keys(values) as K[];
    if (keys.length === 0) return { ...values };
    const t = native.empty([keys.length], 'float32', this.device);
    try {
      t.write(Float32Array.from(keys, (k) => values[k]));
      this.allReduce(t, op);
      let data: Float32Array | Uint8Array;
      try {
        data = await t.read();
      } catch (e) {
        throw await this.explain(e);
      }
      const out = {} as Record<K, number>;
      keys.forEach((k, i) => {
        out[k] = data[i];
      });
      return out;
    } finally {
      t.dispose();
    }
  }

  /**
   * Breaks the group at once: collectives waiting for a peer, and later ones, fail with reason on
   * every rank of this process (use when a replica failed and will never reach the next collective).
   */
  abort(reason: string): void {
    this.handle.abort(reason);
  }

  /** Idempotent. */
  destroy(): void {
    this.handle.destroy();
  }

  /** `using comms = ...`: destroy() at the end of the block. */
  [Symbol.dispose](): void {
    this.destroy();
  }

  /**
   * A collective failed (e.g. seen at a read): adds which ranks fell silent (stopped or hung: their
   * heartbeat stopped) or died, when the rendezvous store can tell (it sees their connections
   * close). Their death and our failure race, so give the store a moment.
   */
  async explain(e: unknown): Promise<unknown> {
    const err = e as Error & { code?: string };
    if (err.code !== 'ERR_PATHO_COMM' || !this.rendezvous) return e;
    try {
      const silentNow = await this.rendezvous.silentRanks(); // first: it gives up on a silent store
      const gone = await this.rendezvous.goneRanks();
      const silent = silentNow.filter((x) => Number.isFinite(x.silentMs) && !gone.includes(x.rank));
      if (silent.length > 0) {
        err.message +=
          `; ${silent.map((x) => `rank ${x.rank}`).join(', ')} ${silent.length > 1 ? 'are' : 'is'} not responding ` +
          `(no heartbeat for ${(Math.min(...silent.map((x) => x.silentMs)) / 1000).toFixed(1)} s: stopped, hung or cut off)` +
          (gone.length > 0 ? `; ${gone.length > 1 ? 'ranks' : 'rank'} ${gone.join(', ')} exited` : '');
        return err;
      }
    } catch (why) {
      if (/did not answer/.test((why as Error).message)) {
        err.message += '; rank 0 is not responding (the rendezvous store it serves does not answer: stopped, hung or cut off)';
        return err;
      }
      // the store is gone: found out below
    }
    let gone: number[] = [];
    for (let i = 0; i < 25 && gone.length === 0; i++) {
      try {
        gone = await this.rendezvous.goneRanks();
      } catch {
        gone = [0]; // the store itself is gone: it lived in rank 0
      }
      if (gone.length === 0) await new Promise((r) => setTimeout(r, 40));
    }
    if (gone.length > 0) {
      err.message += `; ${gone.length > 1 ? 'ranks' : 'rank'} ${gone.join(', ')} exited`;
    }
    return err;
  }
}
