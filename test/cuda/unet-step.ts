// A UNet-like training step written directly against the native ops, for the parity cases:
// conv-bn-relu, pool, conv-bn-relu, upsample, conv+bias, concat, conv-bn-relu, 1x1 head,
// BCE - log Jaccard; backward through all of it; gradient clipping and Adam on one parameter arena.
// precision 'bf16' runs it as autocast does: activations and their gradients bfloat16 NHWC, each
// conv weight cast from its float32 master copy every step, weight gradients cast back into the
// float32 arena, biases/BN parameters/statistics and the loss in float32.
import { native, type NativeTensor } from '../../lib/native';
import { numel, rng, uniform } from './random';

const LAYERS: Array<[string, number[]]> = [
  ['w1', [8, 3, 3, 3]],
  ['g1', [8]],
  ['b1', [8]],
  ['w2', [16, 8, 3, 3]],
  ['g2', [16]],
  ['b2', [16]],
  ['wu', [8, 16, 3, 3]],
  ['bu', [8]],
  ['w3', [8, 16, 3, 3]],
  ['g3', [8]],
  ['b3', [8]],
  ['wh', [1, 8, 1, 1]],
  ['bh', [1]],
];

export async function trainSteps(
  device: string,
  steps: number,
  precision: 'fp32' | 'bf16' = 'fp32',
): Promise<{ losses: number[]; firstGrads: Float32Array }> {
  const N = 2,
    H = 16,
    W = 16;
  const bf16 = precision === 'bf16';
  const total = LAYERS.reduce((a, [, s]) => a + numel(s), 0);
  const live: NativeTensor[] = [];
  const T = (shape: number[]): NativeTensor => {
    const t = native.empty(shape, 'float32', device);
    live.push(t);
    return t;
  };
  const params = T([total]),
    grads = T([total]),
    m = T([total]),
    v = T([total]);
  const init = new Float32Array(total);
  const P: Record<string, NativeTensor> = {},
    G: Record<string, NativeTensor> = {};
  let off = 0;
  const r = rng(7);
  for (const [name, shape] of LAYERS) {
    const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : 0;
    for (let i = 0; i < numel(shape); i++) {
      init[off + i] = name.startsWith('g') ? 1 : name.startsWith('w') ? (r() * 2 - 1) * Math.sqrt(3 / fanIn) : 0;
    }
    P[name] = params.view(off, shape);
    G[name] = grads.view(off, shape);
    live.push(P[name], G[name]);
    off += numel(shape);
  }
  params.write(init);
  native.fill(m, 0);
  native.fill(v, 0);
  const x = T([N, 3, H, W]),
    y = T([N, 1, H, W]);
  x.write(uniform([N, 3, H, W], 8));
  const target = new Float32Array(N * H * W);
  for (let i = 0; i < target.length; i++) {
    const row = Math.floor(i / W) % H,
      col = i % W;
    target[i] = (row - 8) ** 2 + (col - 7) ** 2 < 25 ? 1 : 0; // a disc to segment
  }
  y.write(target);
  const rs: NativeTensor[] = [];
  for (const c of [8, 16, 8]) rs.push(T([c]), T([c]));
  native.fill(rs[0], 0);
  native.fill(rs[1], 1);
  native.fill(rs[2], 0);
  native.fill(rs[3], 1);
  native.fill(rs[4], 0);
  native.fill(rs[5], 1);
  const losses: number[] = [];
  let firstGrads = new Float32Array(0);
  for (let step = 1; step <= steps; step++) {
    const tmp: NativeTensor[] = [];
    // A: float32 NCHW (statistics, loss); Z: an activation in the step's precision.
    const A = (shape: number[]): NativeTensor => {
      const t = native.empty(shape, 'float32', device);
      tmp.push(t);
      return t;
    };
    const Z = (shape: number[]): NativeTensor => {
      if (!bf16) return A(shape);
      const t = native.empty(shape, 'bfloat16', device, 'nhwc');
      tmp.push(t);
      return t;
    };
    // float32 NCHW -> activation precision (the autocast boundary); identity in fp32.
    const cast = (t: NativeTensor): NativeTensor => {
      if (!bf16) return t;
      const z = Z(t.shape);
      native.convert(t, z);
      return z;
    };
    const uncast = (z: NativeTensor): NativeTensor => {
      if (!bf16) return z;
      const t = A(z.shape);
      native.convert(z, t);
      return t;
    };
    // Weight gradient of conv `name`: computed in activation precision, stored float32 in the arena.
    const weightGrad = (name: string, run: (dw: NativeTensor) => void): void => {
      if (!bf16) {
        run(G[name]);
        return;
      }
      const dw = Z(G[name].shape);
      run(dw);
      native.convert(dw, G[name]);
    };
    const big = [N, 8, H, W],
      mid = [N, 16, H / 2, W / 2];
    const bnFwd = (xin: NativeTensor, g: NativeTensor, b: NativeTensor, rm: NativeTensor, rv: NativeTensor, shape: number[]) => {
      const out = Z(shape),
        sm = A([shape[1]]),
        si = A([shape[1]]),
        act = Z(shape);
      native.batchNormForwardTraining(xin, g, b, rm, rv, 0.1, 1e-5, out, sm, si);
      native.reluForward(out, act);
      return { act, sm, si };
    };
    const bnBwd = (
      xin: NativeTensor,
      act: NativeTensor,
      dact: NativeTensor,
      g: NativeTensor,
      sm: NativeTensor,
      si: NativeTensor,
      dg: NativeTensor,
      db: NativeTensor,
      shape: number[],
    ) => {
      const dz = Z(shape),
        dxin = Z(shape);
      native.reluBackward(act, dact, dz);
      native.batchNormBackward(xin, dz, g, sm, si, 1e-5, dxin, dg, db);
      return dxin;
    };
    const w1 = cast(P.w1),
      w2 = cast(P.w2),
      wu = cast(P.wu),
      w3 = cast(P.w3),
      wh = cast(P.wh);
    // forward
    const xa = cast(x);
    const c1 = Z(big);
    native.conv2dForward(xa, w1, null, c1);
    const l1 = bnFwd(c1, P.g1, P.b1, rs[0], rs[1], big);
    const p1 = Z([N, 8, H / 2, W / 2]);
    native.maxPool2dForward(l1.act, p1);
    const c2 = Z(mid);
    native.conv2dForward(p1, w2, null, c2);
    const l2 = bnFwd(c2, P.g2, P.b2, rs[2], rs[3], mid);
    const u = Z([N, 16, H, W]);
    native.upsampleBilinear2xForward(l2.act, u);
    const cu = Z(big);
    native.conv2dForward(u, wu, P.bu, cu);
    const cat = Z([N, 16, H, W]);
    native.concatChannels(l1.act, cu, cat);
    const c3 = Z(big);
    native.conv2dForward(cat, w3, null, c3);
    const l3 = bnFwd(c3, P.g3, P.b3, rs[4], rs[5], big);
    const logitsAct = Z([N, 1, H, W]);
    native.conv2dForward(l3.act, wh, P.bh, logitsAct);
    const logits = uncast(logitsAct); // the loss runs in float32
    const loss = A([1]),
      stats = A([4]),
      dloss = A([1]);
    native.bceJaccardForward(logits, y, 1, 1e-7, loss, stats);
    // backward
    native.fill(dloss, 1);
    const dlogits = A([N, 1, H, W]);
    native.bceJaccardBackward(logits, y, stats, dloss, 1, 1e-7, dlogits);
    const dla = cast(dlogits);
    weightGrad('wh', (dw) => native.conv2dBackwardFilter(l3.act, dla, dw, G.bh));
    const dl3 = Z(big);
    native.conv2dBackwardData(dla, wh, dl3);
    const dc3 = bnBwd(c3, l3.act, dl3, P.g3, l3.sm, l3.si, G.g3, G.b3, big);
    weightGrad('w3', (dw) => native.conv2dBackwardFilter(cat, dc3, dw, null));
    const dcat = Z([N, 16, H, W]);
    native.conv2dBackwardData(dc3, w3, dcat);
    const dl1 = Z(big),
      dcu = Z(big);
    native.splitChannels(dcat, dl1, dcu);
    weightGrad('wu', (dw) => native.conv2dBackwardFilter(u, dcu, dw, G.bu));
    const du = Z([N, 16, H, W]);
    native.conv2dBackwardData(dcu, wu, du);
    const dl2 = Z(mid);
    native.upsampleBilinear2xBackward(du, dl2);
    const dc2 = bnBwd(c2, l2.act, dl2, P.g2, l2.sm, l2.si, G.g2, G.b2, mid);
    weightGrad('w2', (dw) => native.conv2dBackwardFilter(p1, dc2, dw, null));
    const dp1 = Z([N, 8, H / 2, W / 2]);
    native.conv2dBackwardData(dc2, w2, dp1);
    const dpool = Z(big);
    native.maxPool2dBackward(l1.act, p1, dp1, dpool);
    native.axpy(dl1, dpool, 1);
    const dc1 = bnBwd(c1, l1.act, dl1, P.g1, l1.sm, l1.si, G.g1, G.b1, big);
    weightGrad('w1', (dw) => native.conv2dBackwardFilter(xa, dc1, dw, null));
    losses.push((await loss.read())[0]);
    if (step === 1) firstGrads = Float32Array.from(await grads.read());
    const norm = A([1]);
    native.clipGradNorm(grads, 10, norm);
    native.adamUpdate(params, grads, m, v, 1e-2, 0.9, 0.999, 1e-8, 0, false, step);
    for (const t of tmp) t.dispose();
  }
  await native.synchronize(device);
  for (const t of live) t.dispose();
  return { losses, firstGrads };
}
