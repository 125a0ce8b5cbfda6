// Data-parallel replicas of one network (issue 7): one replica per local device (in-process
// communicators) or one per process (Gloo / NCCL after `patho launch`), equal initial weights,
// bucketed gradient averaging started from backward, and the same optimizer update on every replica.
import { native } from '../native';
import { record, Tensor } from '../tensor';
import type { Module } from '../nn/module';
import type { Optimizer } from '../nn/optim';
import { UNet } from '../nn/unet';
import type { BucketOptions, ParamSpan } from './buckets';
import { Communicator } from './communicator';
import { GradientSync } from './grad_sync';
import { Rendezvous, rendezvousOptionsFromEnv } from './rendezvous';

/** The number of CUDA devices the plugin sees (0 without a GPU or plugin). */
export function cudaDeviceCount(): number {
  try {
    const raw = JSON.parse(native.cudaInfo()) as { devices?: unknown[] };
    return raw.devices?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Normalises a device list: 'cuda' alone means every GPU; 'cpu:0,1' / 'cuda:0,1' lists indices;
 * repeated bare kinds ['cpu', 'cpu'] mean cpu:0, cpu:1. Duplicates are rejected.
 */
export function resolveDevices(spec: string | string[], name = 'devices'): string[] {
  const items = (Array.isArray(spec) ? spec : [spec]).flatMap((s) => {
    if (typeof s !== 'string') throw new TypeError(`Expected device names for ${name} but received ${JSON.stringify(spec)}`);
    const m = /^(cpu|cuda):(\d+(?:,\d+)+)$/.exec(s);
    return m ? m[2].split(',').map((i) => `${m[1]}:${i}`) : [s];
  });
  if (items.length === 0) throw new TypeError(`Expected at least one device for ${name} but received []`);
  if (items.length === 1 && items[0] === 'cuda') {
    const n = cudaDeviceCount();
    if (n === 0) throw new TypeError(`Expected a CUDA device for ${name} 'cuda' but this machine has none (see \`patho doctor\`)`);
    return Array.from({ length: n }, (_, i) => `cuda:${i}`);
  }
  const next: Record<string, number> = { cpu: 0, cuda: 0 };
  const out = items.map((d) => {
    if (d === 'cpu' || d === 'cuda') return `${d}:${next[d]++}`;
    if (!/^(cpu|cuda):\d+$/.test(d)) throw new TypeError(`Expected cpu, cpu:N, cuda or cuda:N for ${name} but received '${d}'`);
    return d;
  });
  const kinds = new Set(out.map((d) => d.split(':')[0]));
  if (kinds.size > 1) throw new TypeError(`Expected devices of one kind for ${name} but received ${out.join(', ')}`);
  const dup = out.find((d, i) => out.indexOf(d) !== i);
  if (dup) throw new TypeError(`Expected distinct devices for ${name} but received ${dup} twice`);
  return out;
}

/** A fresh, uninitialised copy of net's architecture (weights come from the broadcast). */
export function replicateModule(net: Module, replicate?: () => Module): Module {
  if (replicate) return replicate();
  if (net instanceof UNet) return new UNet({ ...net.config });
  const C = net.constructor as new () => Module;
  if (C.length === 0) return new C();
  throw new TypeError(`Expected a replicate() function in the model options to build replicas of ${C.name} (its constructor takes arguments)`);
}

// The gradient of a module's own parameters is final once backward has passed the module's first op:
// a no-op node recorded just before the module's forward runs exactly then (ops replay in reverse).
// Assumes a parameter is used only inside its own module's forward, once per step (true of UNet);
// a module called twice in a step turns the overlap off for that step (finish() reduces everything).
function installReadyHooks(net: Module, armed: () => boolean, onReady: (params: number[]) => void, reuse: () => void): { reset(): void; dispose(): void } {
  const index = new Map<string, number>(net.store.paramSlots.map((s, i) => [s.name, i]));
  const called = new Set<Module>();
  const probe = new Tensor(native.empty([1], 'float32', net.device), { keep: true });
  for (const [name, m] of net.namedModules()) {
    const prefix = name ? `${name}.` : '';
    const own = m.namedParameters(prefix).filter(([n]) => !n.slice(prefix.length).includes('.')).map(([n, p]) => ({ i: index.get(n) as number, p }));
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
      record(marker, own.map((o) => o.p.tensor), () => onReady(own.map((o) => o.i)));
      return orig.apply(this, xs);
    };
  }
  return { reset: () => called.clear(), dispose: () => probe.value.dispose() };
}

export interface ReplicaOptions extends BucketOptions {
  /** builds an empty copy of the network (default: UNet from its config, or a constructor without arguments) */
  replicate?: () => Module;
  /** false: all-reduce only after backward instead of as buckets complete (default true) */
  overlap?: boolean;
}

/** One local replica: its network, optimizer, communicator and gradient synchroniser. */
export interface Replica {
  net: Module;
  optimizer: Optimizer;
  comm: Communicator;
  sync: GradientSync;
  /** true before a training forward (backward then starts buckets as they complete); false after finish() */
  resetStep(armed: boolean): void;
  disposeHooks(): void;
}

export class ReplicaGroup {
  private constructor(readonly replicas: Replica[], readonly rendezvous: Rendezvous | null) {}

  /** ranks over all processes (1 per process when launched; else the local replica count) */
  get worldSize(): number { return this.replicas[0].comm.size; }
  get rank(): number { return this.rendezvous ? this.rendezvous.rank : 0; }
  get multiProcess(): boolean { return this.rendezvous !== null; }

  /**
   * In-process replicas on `devices` (devices[0] is net's); or, with PATHO_WORLD_SIZE > 1, this
   * process's single replica of a launched job (Gloo on CPU, NCCL on CUDA). net must be initialised.
   */
  static async create(net: Module, devices: string[], makeOptimizer: (net: Module) => Optimizer, opts: ReplicaOptions = {}): Promise<ReplicaGroup> {
    let comms: Communicator[];
    let rdv: Rendezvous | null = null;
    const nets: Module[] = [net];
    const env = rendezvousOptionsFromEnv();
    if (env.worldSize > 1) {
      if (devices.length > 1) {
        throw new TypeError(`Expected one device per process under \`patho launch\` (PATHO_WORLD_SIZE=${env.worldSize}) but received ${devices.join(', ')}`);
      }
      rdv = await Rendezvous.join(env);
      comms = [net.device.startsWith('cuda') ? await Communicator.nccl(rdv, net.device) : await Communicator.gloo(rdv, { device: net.device })];
    } else {
      for (const d of devices.slice(1)) {
        const copy = replicateModule(net, opts.replicate);
        const precisionOf = new Map(net.namedModules().map(([n, m]) => [n, m.precision]));
        for (const [n, m] of copy.namedModules()) m.precision = precisionOf.get(n) ?? m.precision;
        nets.push(copy.initialized ? await copy.to(d) : copy.init({ device: d }));
      }
      const kind = devices[0].split(':')[0];
      comms = kind === 'cuda' ? await Communicator.ncclAll(devices) : Communicator.inProcess(devices);
    }
    const replicas = nets.map((n, r): Replica => {
      const spans: ParamSpan[] = n.store.paramSlots.map((s) => ({ name: s.name, offset: s.offset, numel: s.item.numel }));
      const sync = new GradientSync(comms[r], n.store.grads, spans, opts);
      let hooks = { reset: (_on: boolean) => {}, dispose: () => {} };
      if (opts.overlap !== false) {
        let armed = false;
        let safe = true;
        const h = installReadyHooks(n, () => armed, (ids) => { if (armed && safe) for (const i of ids) sync.markReady(i); }, () => { safe = false; });
        hooks = { reset: (on: boolean) => { h.reset(); armed = on; safe = true; }, dispose: h.dispose };
      }
      return { net: n, optimizer: makeOptimizer(n), comm: comms[r], sync, resetStep: hooks.reset, disposeHooks: hooks.dispose };
    });
    const g = new ReplicaGroup(replicas, rdv);
    await g.broadcastState();
    return g;
  }

  /** Copies replica/rank 0's parameters, buffers and optimizer state to every replica. */
  async broadcastState(): Promise<void> {
    for (const r of this.replicas) {
      const st = r.net.store;
      r.comm.broadcast(st.params, 0);
      r.comm.broadcast(st.buffers, 0);
      for (const t of Object.values(r.optimizer.stateTensors())) r.comm.broadcast(t, 0);
      r.optimizer.stepCount = this.replicas[0].optimizer.stepCount;
    }
    await Promise.all(this.replicas.map((r) => r.comm.sync()));
  }

  /**
   * Copies rank 0's buffers (BatchNorm running statistics) to every replica, as PyTorch's DDP does
   * before each forward: each rank's statistics drift with its own shard of the data, and a
   * validation split between ranks must see one model, the one rank 0 checkpoints.
   */
  async syncBuffers(): Promise<void> {
    for (const r of this.replicas) r.comm.broadcast(r.net.store.buffers, 0);
    await Promise.all(this.replicas.map((r) => r.comm.sync()));
  }

  dispose(): void {
    for (const [i, r] of this.replicas.entries()) {
      r.sync.dispose();
      r.disposeHooks();
      if (i > 0) { r.optimizer.dispose(); r.net.dispose(); }
      r.comm.destroy();
    }
  }

  async close(): Promise<void> {
    await this.rendezvous?.close();
  }
}
