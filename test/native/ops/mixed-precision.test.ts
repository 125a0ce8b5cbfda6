// Mixed precision on the CPU backend: every op argument marked ACT in backend.h, in float32 NHWC,
// bfloat16 NCHW and bfloat16 NHWC, against the same op in float32 NCHW on the same inputs (random
// values already rounded to bfloat16 here, so every combination sees identical numbers); and
// convert() between all four combinations, bit for bit against round-to-nearest-even written here.
//
// Tolerances, per output (r = float32 NCHW result, o = the combination's result, M = max|r|):
//  * exact ops (pooling, concat/split, relu, copy, fill, scale, convert): o == r in float32, and
//    o == roundBf16(r) in bfloat16 (their result is the float32 op's, rounded once);
//  * other ops in float32 NHWC: |o - r| <= 1e-5|r| + 1e-6 M (same math, other summation order);
//  * other ops in bfloat16: |o - r| <= 2^-8|r| + 1e-6 M. One rounding to 8 significant bits moves
//    a value by at most half an ulp = 2^-8 of its leading power of two; the rest is float32
//    summation order;
//  * convolutions in bfloat16: |o - r| <= 2^-8|r| + 1e-5 M. Products of bf16 values are exact in
//    float32 and oneDNN accumulates in float32, but sums up to 144 terms (C*R*R, or N*H*W for the
//    filter gradient) in another order and blocking than the float32 kernel; 1e-5 M covers that
//    (float32 NHWC vs NCHW differ by at most 2e-7 M here; the bf16 results, measured on
//    avx512_core_bf16, stayed inside the 2^-8|r| rounding term alone);
//  * float32 outputs of ACT ops (BN statistics, dgamma/dbeta, conv db): 1e-5|r| + 1e-5 M.
import t from 'tap';
import { DType, Layout, native, NativeTensor } from '../../../lib/native';
import { numel, rng, Test } from './reference';
import { roundBf16 } from '../../helpers/bf16';

interface Combo {
  dtype: DType;
  layout: Layout;
}
const base: Combo = { dtype: 'float32', layout: 'nchw' };
const combos: Combo[] = [
  { dtype: 'float32', layout: 'nhwc' },
  { dtype: 'bfloat16', layout: 'nchw' },
  { dtype: 'bfloat16', layout: 'nhwc' },
];
const comboName = (c: Combo): string => `${c.dtype} ${c.layout}`;

/** n values uniform in [lo, hi), rounded to bfloat16. */
function bfRandom(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * next();
  return roundBf16(v);
}

/** A tensor of the combination (non-4-D tensors are always NCHW), holding data if given. */
function make(shape: number[], c: Combo, data?: Float32Array): NativeTensor {
  const x = native.empty(shape, c.dtype, 'cpu', shape.length === 4 ? c.layout : 'nchw');
  if (data) x.write(data);
  return x;
}

const read = async (x: NativeTensor): Promise<Float32Array> => (await x.read()) as Float32Array;

type Check = 'exact' | 'round' | 'conv';

/** One tensor argument: ACT ones take the combination, the others stay float32 NCHW. */
interface Arg {
  shape: number[];
  act: boolean;
  data?: Float32Array; // initial contents (inputs, and in/out tensors such as running statistics)
  check?: Check; // compared after the op when set
}

interface OpCase {
  name: string;
  args: Arg[];
  run(a: NativeTensor[]): void;
}

/** Compares o (from combination c) with the float32 NCHW result r under the rule of `check`. */
function compare(t: Test, o: Float32Array, r: Float32Array, c: Combo, arg: Arg, what: string): void {
  let M = 0;
  for (const v of r) if (Number.isFinite(v)) M = Math.max(M, Math.abs(v));
  const bf = arg.act && c.dtype === 'bfloat16';
  const want = bf && arg.check === 'exact' ? roundBf16(r) : r;
  let bad = 0;
  let worst = 0;
  let rule = '';
  for (let i = 0; i < o.length; i++) {
    let allowed: number;
    if (arg.check === 'exact') {
      rule = 'exact';
      if (Number.isNaN(want[i]) && Number.isNaN(o[i])) continue;
      allowed = 0;
    } else if (!arg.act) {
      rule = '1e-5|r| + 1e-5 M';
      allowed = 1e-5 * Math.abs(r[i]) + 1e-5 * M;
    } else if (!bf) {
      rule = '1e-5|r| + 1e-6 M';
      allowed = 1e-5 * Math.abs(r[i]) + 1e-6 * M;
    } else if (arg.check === 'conv') {
      rule = '2^-8|r| + 1e-5 M';
      allowed = 2 ** -8 * Math.abs(r[i]) + 1e-5 * M;
    } else {
      rule = '2^-8|r| + 1e-6 M';
      allowed = 2 ** -8 * Math.abs(r[i]) + 1e-6 * M;
    }
    const err = Math.abs(o[i] - want[i]);
    if (!(err <= allowed)) {
      if (bad === 0) worst = i;
      bad++;
    }
  }
  t.ok(
    o.length === r.length && bad === 0,
    `${what}: ${rule}` + (bad ? ` - ${bad} of ${o.length} off, first [${worst}] ${o[worst]} vs ${want[worst]}` : ''),
  );
}

async function runCase(c: Combo, op: OpCase): Promise<Float32Array[]> {
  const ts = op.args.map((a) => make(a.shape, a.act ? c : base, a.data));
  op.run(ts);
  const out: Float32Array[] = [];
  for (let i = 0; i < ts.length; i++) if (op.args[i].check) out.push(await read(ts[i]));
  for (const x of ts) x.dispose();
  return out;
}

function testOp(op: OpCase): void {
  t.test(op.name, async (t) => {
    const ref = await runCase(base, op);
    const checked = op.args.filter((a) => a.check);
    for (const c of combos) {
      const got = await runCase(c, op);
      checked.forEach((a, i) => compare(t, got[i], ref[i], c, a, `${comboName(c)} output ${op.args.indexOf(a)}`));
    }
  });
}

// ---- shapes: channel counts on both sides of oneDNN's block of 16, nothing square ----
const N = 2,
  C = 3,
  H = 6,
  W = 4;
const x4 = [N, C, H, W];
const act = (shape: number[], seed: number, check?: Check): Arg => ({
  shape,
  act: true,
  data: seed ? bfRandom(seed, numel(shape)) : undefined,
  check,
});
const vec = (n: number, data: Float32Array | undefined, check?: Check): Arg => ({ shape: [n], act: false, data, check });

// ---- elementwise ----
testOp({ name: 'fill', args: [act(x4, 0, 'exact')], run: ([y]) => native.fill(y, 0.3) });
testOp({ name: 'copy', args: [act(x4, 1), act(x4, 0, 'exact')], run: ([s, d]) => native.copy(d, s) });
testOp({ name: 'scale', args: [act(x4, 2, 'exact')], run: ([y]) => native.scale(y, -0.37) });
testOp({ name: 'axpy', args: [act(x4, 3, 'round'), act(x4, 4)], run: ([y, x]) => native.axpy(y, x, 0.71) });
testOp({ name: 'reluForward', args: [act(x4, 5), act(x4, 0, 'exact')], run: ([x, y]) => native.reluForward(x, y) });
testOp({
  name: 'reluBackward (dx aliases dy)',
  args: [act(x4, 6), act(x4, 7, 'exact')],
  run: ([y, dy]) => native.reluBackward(y, dy, dy),
});
testOp({
  name: 'sigmoidForward',
  args: [{ shape: x4, act: true, data: bfRandom(8, numel(x4), -6, 6) }, act(x4, 0, 'round')],
  run: ([x, y]) => native.sigmoidForward(x, y),
});

// ---- pooling, upsampling, concat/split, batch norm: small channel counts, 20 channels on 32x32
// (more than one block of 128 pixels, threads), and 96x96 images ----
function layoutOps([N, C, H, W]: number[]): void {
  const x4 = [N, C, H, W];
  const tag = ` [${x4}]`;
  // ---- max pooling: inputs on a coarse grid so most windows hold ties (the gradient must still go
  // to the first maximum in row-major order), and one NaN (propagated) ----
  const poolIn = bfRandom(9, numel(x4)).map((v) => Math.round(v * 2) / 2);
  poolIn[13] = NaN;
  const p4 = [N, C, H / 2, W / 2];
  testOp({
    name: 'maxPool2dForward' + tag,
    args: [{ shape: x4, act: true, data: poolIn }, act(p4, 0, 'exact')],
    run: ([x, y]) => native.maxPool2dForward(x, y),
  });
  testOp({
    name: 'maxPool2dBackward (ties)' + tag,
    args: [{ shape: x4, act: true, data: poolIn }, act(p4, 0), act(p4, 10), act(x4, 0, 'exact')],
    run: ([x, y, dy, dx]) => {
      native.maxPool2dForward(x, y);
      native.maxPool2dBackward(x, y, dy, dx);
    },
  });

  // ---- upsampling, concat/split ----
  const u4 = [N, C, 2 * H, 2 * W];
  testOp({
    name: 'upsampleBilinear2xForward' + tag,
    args: [act(x4, 11), act(u4, 0, 'round')],
    run: ([x, y]) => native.upsampleBilinear2xForward(x, y),
  });
  testOp({
    name: 'upsampleBilinear2xBackward' + tag,
    args: [act(u4, 12), act(x4, 0, 'round')],
    run: ([dy, dx]) => native.upsampleBilinear2xBackward(dy, dx),
  });
  const b4 = [N, 5, H, W],
    cat4 = [N, C + 5, H, W];
  testOp({
    name: 'concatChannels' + tag,
    args: [act(x4, 13), act(b4, 14), act(cat4, 0, 'exact')],
    run: ([a, b, y]) => native.concatChannels(a, b, y),
  });
  testOp({
    name: 'splitChannels' + tag,
    args: [act(cat4, 15), act(x4, 0, 'exact'), act(b4, 0, 'exact')],
    run: ([dy, da, db]) => native.splitChannels(dy, da, db),
  });

  // ---- batch norm: a channel mean far from 0 checks the shifted sums; statistics stay float32 ----
  const bnX = bfRandom(16, numel(x4)).map((v, i) => v + (Math.floor(i / (H * W)) % C === 1 ? 8 : 0));
  const bn = [
    { shape: x4, act: true, data: roundBf16(bnX) },
    vec(C, bfRandom(17, C, 0.5, 1.5)), // gamma
    vec(C, bfRandom(18, C)), // beta
  ];
  testOp({
    name: 'batchNormForwardTraining' + tag,
    args: [
      ...bn,
      vec(C, bfRandom(19, C), 'round'),
      vec(C, bfRandom(20, C, 0.5, 2), 'round'),
      act(x4, 0, 'round'),
      vec(C, undefined, 'round'),
      vec(C, undefined, 'round'),
    ],
    run: ([x, g, b, rm, rv, y, sm, si]) => native.batchNormForwardTraining(x, g, b, rm, rv, 0.1, 1e-5, y, sm, si),
  });
  testOp({
    name: 'batchNormForwardInference' + tag,
    args: [...bn, vec(C, bfRandom(19, C)), vec(C, bfRandom(20, C, 0.5, 2)), act(x4, 0, 'round')],
    run: ([x, g, b, rm, rv, y]) => native.batchNormForwardInference(x, g, b, rm, rv, 1e-5, y),
  });
  testOp({
    name: 'batchNormBackward' + tag,
    args: [
      ...bn,
      act(x4, 21),
      vec(C, new Float32Array(C)),
      vec(C, new Float32Array(C)),
      vec(C, new Float32Array(C)),
      vec(C, new Float32Array(C)),
      act(x4, 0, 'round'),
      vec(C, undefined, 'round'),
      vec(C, undefined, 'round'),
    ],
    run: ([x, g, b, dy, rm, rv, sm, si, dx, dg, db]) => {
      const y = make(x.shape, { dtype: x.dtype, layout: x.layout });
      native.batchNormForwardTraining(x, g, b, rm, rv, 0.1, 1e-5, y, sm, si);
      native.batchNormBackward(x, dy, g, sm, si, 1e-5, dx, dg, db);
      y.dispose();
    },
  });
}
layoutOps([2, 3, 6, 4]);
layoutOps([2, 20, 32, 32]);
layoutOps([2, 3, 96, 96]); // 9216 pixels an image: batch norm's NHWC sums run in more than one chunk

// ---- convolutions: the plain small-channel cases and oneDNN's blocked ones ----
const convs = [
  { c: 3, k: 16, r: 3, bias: true },
  { c: 16, k: 16, r: 3, bias: false },
  { c: 16, k: 3, r: 3, bias: true },
  { c: 16, k: 1, r: 1, bias: true },
];
for (const s of convs) {
  const xs = [N, s.c, H, W],
    ys = [N, s.k, H, W],
    ws = [s.k, s.c, s.r, s.r];
  const name = `conv ${s.c}->${s.k} ${s.r}x${s.r}`;
  const bias = s.bias ? vec(s.k, bfRandom(22, s.k)) : null;
  testOp({
    name: `${name} forward${s.bias ? ' + bias' : ''}`,
    args: [act(xs, 23), act(ws, 24), ...(bias ? [bias] : []), act(ys, 0, 'conv')],
    run: (a) => native.conv2dForward(a[0], a[1], s.bias ? a[2] : null, a[a.length - 1]),
  });
  testOp({
    name: `${name} backward data`,
    args: [act(ys, 25), act(ws, 26), act(xs, 0, 'conv')],
    run: ([dy, w, dx]) => native.conv2dBackwardData(dy, w, dx),
  });
  testOp({
    name: `${name} backward filter${s.bias ? ' + db' : ''}`,
    args: [act(xs, 27), act(ys, 28), act(ws, 0, 'conv'), ...(s.bias ? [vec(s.k, undefined, 'round')] : [])],
    run: (a) => native.conv2dBackwardFilter(a[0], a[1], a[2], s.bias ? a[3] : null),
  });
}

// ---- convert ----
/** Special float32 bit patterns: ties to even both ways, carries into the exponent, overflow to
 * infinity, denormals (rounded, not flushed), signed zeros, infinities and NaNs. */
const specialBits = [
  0x3f808000, 0x3f818000, 0x3f80ffff, 0x3f807fff, 0xbf808000, 0xbf818000, 0x3fff8000, 0x7f7f8000, 0x7f7fffff, 0xff7fffff, 0x00000001,
  0x00008000, 0x00018000, 0x007fffff, 0x80010000, 0x807f8000, 0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
  0xffa00000, 0x3eaaaaab,
];

/** Same bits, NaN for NaN with any payload equal (oneDNN's and bf16.h's quiet NaNs may differ). */
function sameBits(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

t.test('convert float32 -> bfloat16 rounds to nearest even (ties, overflow, denormals, NaN, Inf)', async (t) => {
  const n = 4 * 3 * 5 * 7;
  const v = new Float32Array(n);
  const next = rng(30);
  const u = new Uint32Array(v.buffer);
  for (let i = 0; i < n; i++) u[i] = i < specialBits.length ? specialBits[i] : Math.floor(next() * 2 ** 32) >>> 0;
  const want = roundBf16(v);
  t.equal(
    sameBits(roundBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8])), Float32Array.from([1, 1 + 2 ** -6])),
    -1,
    'the test rounding itself: ties go to even',
  );
  for (const shape of [[n], [4, 3, 5, 7]]) {
    for (const layout of ['nchw', 'nhwc'] as Layout[]) {
      if (shape.length !== 4 && layout === 'nhwc') continue;
      const src = make(shape, { dtype: 'float32', layout: 'nchw' }, v);
      const dst = make(shape, { dtype: 'bfloat16', layout });
      native.convert(src, dst);
      const got = await read(dst);
      const bad = sameBits(got, want);
      t.equal(bad, -1, `[${shape}] nchw float32 -> ${layout} bfloat16` + (bad >= 0 ? `: [${bad}] 0x${u[bad].toString(16)}` : ''));
      // and back: bfloat16 -> float32 is exact
      const back = make(shape, { dtype: 'float32', layout: 'nchw' });
      native.convert(dst, back);
      t.equal(sameBits(await read(back), want), -1, `[${shape}] ${layout} bfloat16 -> nchw float32 is exact`);
      src.dispose();
      dst.dispose();
      back.dispose();
    }
  }
});

t.test('convert between every pair of combinations (element by element in logical NCHW order)', async (t) => {
  // read() and write() permute NHWC on the host (binding), independently of convert()'s oneDNN
  // reorder: a wrong permutation either side shows up as misplaced elements.
  const shape = [2, 3, 5, 4];
  const v = bfRandom(31, numel(shape));
  const raw = new Float32Array(numel(shape)).map((_, i) => Math.sin(i * 1.7) * 3); // not bf16-representable
  const all: Combo[] = [base, ...combos];
  for (const from of all)
    for (const to of all) {
      for (const [data, label] of [
        [v, 'bf16 values'],
        [raw, 'float32 values'],
      ] as [Float32Array, string][]) {
        const src = make(shape, from, data);
        const dst = make(shape, to);
        native.convert(src, dst);
        const stored = from.dtype === 'bfloat16' ? roundBf16(data) : data; // what src holds
        const want = to.dtype === 'bfloat16' ? roundBf16(stored) : stored;
        const got = await read(dst);
        const bad = sameBits(got, want);
        t.equal(bad, -1, `${comboName(from)} -> ${comboName(to)}, ${label}` + (bad >= 0 ? `: [${bad}] ${got[bad]} vs ${want[bad]}` : ''));
        src.dispose();
        dst.dispose();
      }
    }
});

// The CPU backend's bf16/NHWC loops have a generic and an AVX-512 copy (native/cpu/elem.h), picked
// once per process: on an AVX-512 machine, run this whole file again with the generic ones.
if (!process.env.PATHO_CPU_NO_AVX512 && native.info().cpuIsa.startsWith('avx512')) {
  t.spawn(
    process.execPath,
    [...process.execArgv, __filename],
    { env: { ...process.env, PATHO_CPU_NO_AVX512: '1' } },
    'the same with PATHO_CPU_NO_AVX512=1 (generic loops)',
  );
}

t.test('convert round trips through every combination', async (t) => {
  const shape = [3, 5, 2, 7];
  const v = new Float32Array(numel(shape)).map((_, i) => Math.cos(i * 0.37) * (i + 1));
  for (const mid of combos) {
    const a = make(shape, base, v);
    const m = make(shape, mid);
    const b = make(shape, base);
    native.convert(a, m);
    native.convert(m, b);
    const want = mid.dtype === 'bfloat16' ? roundBf16(v) : v;
    t.equal(sameBits(await read(b), want), -1, `float32 nchw -> ${comboName(mid)} -> float32 nchw`);
    a.dispose();
    m.dispose();
    b.dispose();
  }
});
