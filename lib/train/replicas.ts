// Replicas of one network for training (DESIGN.md decision 6). One device is a group of one; several
// local devices get in-process communicators (NCCL on GPUs); under `patho launch` each process holds
// one replica of a Gloo (CPU) or NCCL group. Replicas start equal, average gradients bucket by bucket
// as backward completes them, and apply the same optimizer update (step.ts).
import '../disposable';
import { deviceKind, cudaDeviceCount, resolveDevices } from '../device';
import { invalidOption } from '../errors';
import { native } from '../native';
import type { Module } from '../nn/module';
import type { Optimizer } from '../nn/optim';
import type { BucketOptions, ParamSpan } from '../parallel/buckets';
import { Communicator } from '../parallel/communicator';
import { GradientSync } from '../parallel/grad_sync';
import { Rendezvous, rendezvousOptionsFromEnv } from '../parallel/rendezvous';
import { cudaDeviceForPlacement } from '../parallel/scheduler';
import { record, Tensor } from '../tensor';

/** A fresh copy of net's architecture (weights come from the broadcast): replicate() or net.emptyCopy(). */
export function replicateModule(net: Module, replicate?: () => Module): Module {
  return replicate ? replicate() : net.emptyCopy();
}

/**
 * The devices of a model's replicas, or null for one device wherever the network is (or `device`).
 * Under `patho launch` (PATHO_WORLD_SIZE > 1) this process's single device, cuda:<local rank> for
 * CUDA. makeParallel()'s default 'cuda' on a machine without GPUs means one device.
 */
export function replicaDevices(spec: string | string[] | null | undefined, device: string | undefined, explicit: boolean): string[] | null {
  const env = rendezvousOptionsFromEnv();
  if (env.worldSize > 1) {
    const kind = deviceKind(spec ? (Array.isArray(spec) ? spec[0] : spec) : (device ?? 'cpu'));
    return [kind === 'cuda' ? cudaDeviceForPlacement(env, cudaDeviceCount()) : 'cpu'];
  }
  if (spec === undefined || spec === null) return null;
  if (spec === 'cuda' && !explicit && cudaDeviceCount() === 0) return null;
  return resolveDevices(spec, 'devices');
}

// The gradient of a module's own parameters is final once backward has passed the module's first op:
// a no-op node recorded just before the module's forward runs exactly then (ops replay in reverse).
// Assumes a parameter is used only inside its own module's forward, once per step (true of UNet);
// a module called twice in a step turns the overlap off for that step (finish() reduces everything).
function installReadyHooks(
  net: Module,
  armed: () => boolean,
  onReady: (params: number[]) => void,
  reuse: () => void,
): { reset(): void; dispose(): void } {
  const index = new Map<string, number>(net.store.paramSlots.map((s, i) => [s.name, i]));
  const called = new Set<Module>();
  const probe = new Tensor(native.empty([1], 'float32', net.device), { keep: true });
  for (const [name, m] of net.namedModules()) {
    const prefix = name ? `${name}.` : '';
    const own = m
      .namedParameters(prefix)
      .filter(([n]) => !n.slice(prefix.length).includes('.'))
      .map(([n, p]) => ({ i: index.get(n) as number, p }));
    if (own.length === 0) continue;
    const orig = m.forward;
    m.forward = function hooked(this: Module, ...xs: Tensor[]): Tensor {
      if (!armed()) return orig.apply(this, xs);
      if (called.has(m)) reuse();
      called.add(m);
      const marker = new Tensor(native.empty([1], 'float32', net.device));
      marker.grad = probe.value;
      marker.ownsGrad = false;
      marker.retainGrad = true;
      record(
        marker,
        own.map((o) => o.p.tensor),
        () => onReady(own.map((o) => o.i)),
      );
      return orig.apply(this, xs);
    };
  }
  return { reset: () => called.clear(), dispose: () => probe.value.dispose() };
}

export interface ReplicaOptions extends BucketOptions {
  /** builds an empty copy of the network (default: net.emptyCopy()) */
  replicate?: () => Module;
  /** false: all-reduce only after backward instead of as buckets complete (default true) */
  overlap?: boolean;
}

/** One local replica: its network, optimizer, communicator and gradient synchroniser. */
export interface Replica {
  net: Module;
  optimizer: Optimizer;
  /** null in a group of one in one process: there is nothing to average */
  comm: Communicator | null;
  sync: GradientSync | null;
  /** true before a training forward (backward then starts buckets as they complete); false after finish() */
  resetStep(armed: boolean): void;
  disposeHooks(): void;
}

export class ReplicaGroup implements Disposable {
  private disposed = false;
  private constructor(
    readonly replicas: Replica[],
    readonly rendezvous: Rendezvous | null,
  ) {}

  /** ranks over all processes (1 per process when launched; else the local replica count) */
  get worldSize(): number {
    return this.replicas[0].comm?.size ?? 1;
  }
  get rank(): number {
    return this.rendezvous ? this.rendezvous.rank : 0;
  }
  get multiProcess(): boolean {
    return this.rendezvous !== null;
  }

  /**
   * Replicas of net on `devices` (devices[0] is net's; one device: a group of one); or, with
   * PATHO_WORLD_SIZE > 1, this process's single replica of a launched job (Gloo on CPU, NCCL on
   * CUDA). net must be initialised; makeOptimizer builds each replica's optimizer.
   */
  static async create(
    net: Module,
    devices: string[],
    makeOptimizer: (net: Module) => Optimizer,
    opts: ReplicaOptions = {},
  ): Promise<ReplicaGroup> {
    let comms: (Communicator | null)[];
    let rdv: Rendezvous | null = null;
    const nets: Module[] = [net];
    const env = rendezvousOptionsFromEnv();
    if (env.worldSize > 1) {
      if (devices.length > 1) {
        throw invalidOption(`devices under \`patho launch\` (PATHO_WORLD_SIZE=${env.worldSize})`, 'one device per process', devices);
      }
      rdv = await Rendezvous.join(env);
      comms = [
        deviceKind(net.device) === 'cuda' ? await Communicator.nccl(rdv, net.device) : await Communicator.gloo(rdv, { device: net.device }),
      ];
    } else if (devices.length === 1) {
      comms = [null];
    } else {
      for (const d of devices.slice(1)) {
        const copy = replicateModule(net, opts.replicate);
        const precisionOf = new Map(net.namedModules().map(([n, m]) => [n, m.precision]));
        for (const [n, m] of copy.namedModules()) m.precision = precisionOf.get(n) ?? m.precision;
        nets.push(copy.initialized ? await copy.to(d) : copy.init({ device: d }));
      }
      comms = deviceKind(devices[0]) === 'cuda' ? await Communicator.ncclAll(devices) : Communicator.inProcess(devices);
    }
    const replicas = nets.map((n, r): Replica => {
      const comm = comms[r];
      const optimizer = makeOptimizer(n);
      if (!comm) return { net: n, optimizer, comm, sync: null, resetStep: () => {}, disposeHooks: () => {} };
      const spans: ParamSpan[] = n.store.paramSlots.map((s) => ({ name: s.name, offset: s.offset, numel: s.item.numel }));
      const sync = new GradientSync(comm, n.store.grads, spans, opts);
      let hooks = { reset: (_on: boolean) => {}, dispose: () => {} };
      if (opts.overlap !== false) {
        let armed = false;
        let safe = true;
        const h = installReadyHooks(
          n,
          () => armed,
          (ids) => {
            if (armed && safe) for (const i of ids) sync.markReady(i);
          },
          () => {
            safe = false;
          },
        );
        hooks = {
          reset: (on: boolean) => {
            h.reset();
            armed = on;
            safe = true;
          },
          dispose: h.dispose,
        };
      }
      return { net: n, optimizer, comm, sync, resetStep: hooks.reset, disposeHooks: hooks.dispose };
    });
    const g = new ReplicaGroup(replicas, rdv);
    await g.broadcastState();
    return g;
  }

  /** Copies replica/rank 0's parameters, buffers and optimizer state to every replica. */
  async broadcastState(): Promise<void> {
    for (const r of this.replicas) {
      if (!r.comm) continue;
      const st = r.net.store;
      r.comm.broadcast(st.params, 0);
      r.comm.broadcast(st.buffers, 0);
      for (const t of Object.values(r.optimizer.stateTensors())) r.comm.broadcast(t, 0);
      r.optimizer.stepCount = this.replicas[0].optimizer.stepCount;
    }
    await Promise.all(this.replicas.map((r) => r.comm?.sync()));
  }

  /**
   * Copies rank 0's buffers (BatchNorm running statistics) to every replica, as PyTorch's DDP does
   * before each forward: each rank's statistics drift with its own shard of the data, and a
   * validation split between ranks must see one model, the one rank 0 checkpoints.
   */
  async syncBuffers(): Promise<void> {
    for (const r of this.replicas) r.comm?.broadcast(r.net.store.buffers, 0);
    await Promise.all(this.replicas.map((r) => r.comm?.sync()));
  }

  /**
   * Sums of per-process values over every process of a launched job (every rank calls it with the
   * same keys in the same order); in one process the values themselves.
   */
  async sumOverProcesses<K extends string>(values: Record<K, number>): Promise<Record<K, number>> {
    const comm = this.replicas[0].comm;
    return this.multiProcess && comm ? comm.reduceMetrics(values, 'sum') : { ...values };
  }

  /**
   * A replica failed at a read: a collective broke (a peer is gone) or an op failed. In one process
   * the other replicas are released with abort(); across processes the communicator names dead ranks.
   */
  async explainFailure(e: unknown): Promise<unknown> {
    if (!this.multiProcess) {
      for (const r of this.replicas) r.comm?.abort(`a replica failed: ${(e as Error).message}`);
      return e;
    }
    const comm = this.replicas[0].comm;
    return comm ? comm.explain(e) : e;
  }

  /** Frees the replicas' communicators, syncs and (but replica 0's) networks and optimizers; idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const [i, r] of this.replicas.entries()) {
      r.sync?.dispose();
      r.disposeHooks();
      if (i > 0) {
        r.optimizer.dispose();
        r.net.dispose();
      }
      r.comm?.destroy();
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Leaves a `patho launch` job (rank 0 keeps serving the store until every rank is done). */
  async close(): Promise<void> {
    await this.rendezvous?.close();
  }
}
