// Shared helpers for the op tests: seeded random data, upload/read of tensors, a tolerance check
// that reports the worst element, and float64 central differences for gradient checks.
// reference.test.ts checks the helpers themselves.
import { native, NativeTensor } from '../../../lib/native';

/** What close() needs of a tap test (any subtest fits). */
export interface Test {
  ok(condition: boolean, message: string): unknown;
  fail(message: string): unknown;
}

/** mulberry32: a small seeded generator, so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values in [lo, hi), rounded to float32 so the reference sees what the op sees. */
export function uniform(next: () => number, n: number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * next());
  return out;
}

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function upload(shape: number[], data?: ArrayLike<number>): NativeTensor {
  const x = native.empty(shape, 'float32', 'cpu');
  if (data) {
    if (data.length !== numel(shape)) throw new Error(`upload: ${data.length} values for shape [${shape}]`);
    x.write(Float32Array.from(data));
  }
  return x;
}

export async function download(x: NativeTensor): Promise<Float64Array> {
  return Float64Array.from(await x.read());
}

export interface Tol {
  rtol: number;
  atol: number;
}

/** |actual - expected| <= atol + rtol*|expected| for every element; reports the worst one. */
export function close(test: Test, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, what: string): void {
  if (actual.length !== expected.length) {
    test.fail(`${what}: ${actual.length} values, expected ${expected.length}`);
    return;
  }
  let worst = -1;
  let worstRatio = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const allowed = tol.atol + tol.rtol * Math.abs(expected[i]);
    const ratio = Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / allowed;
    if (ratio > 1) bad++;
    if (ratio > worstRatio || worst < 0) {
      worstRatio = ratio;
      worst = i;
    }
  }
  test.ok(
    bad === 0,
    `${what} within rtol ${tol.rtol} atol ${tol.atol}` +
      (bad ? `: ${bad} of ${actual.length} off, worst [${worst}] ${actual[worst]} vs ${expected[worst]}` : ''),
  );
}

/**
 * Float64 central differences of L(x) = sum(r * f(x)) with respect to every element of x:
 * the numeric gradient that an op's backward must reproduce for dy = r.
 */
export function numericGrad(f: (x: Float64Array) => ArrayLike<number>, x: Float64Array, r: ArrayLike<number>, h = 1e-4): Float64Array {
  const loss = (v: Float64Array): number => {
    const y = f(v);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r[i] * y[i];
    return s;
  };
  const g = new Float64Array(x.length);
  const v = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    v[i] = x[i] + h;
    const lp = loss(v);
    v[i] = x[i] - h;
    const lm = loss(v);
    v[i] = x[i];
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/** The shape of a stride-1 'same' convolution: batch n, c -> k channels, h x w, an r x r kernel. */
export interface ConvShape {
  n: number;
  c: number;
  k: number;
  h: number;
  w: number;
  r: number;
}

/** y[n,k,i,j] = b[k] + sum_{c,u,v} x[n,c,i+u-p,j+v-p] * w[k,c,u,v], zero outside the image. */
export function conv2dRef(s: ConvShape, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null): Float64Array {
  const { n: N, c: C, k: K, h: H, w: W, r: R } = s;
  const p = (R - 1) / 2;
  const y = new Float64Array(N * K * H * W);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++)
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          let acc = b ? b[k] : 0;
          for (let c = 0; c < C; c++)
            for (let u = 0; u < R; u++) {
              const ii = i + u - p;
              if (ii < 0 || ii >= H) continue;
              for (let v = 0; v < R; v++) {
                const jj = j + v - p;
                if (jj < 0 || jj >= W) continue;
                acc += x[((n * C + c) * H + ii) * W + jj] * w[((k * C + c) * R + u) * R + v];
              }
            }
          y[((n * K + k) * H + i) * W + j] = acc;
        }
  return y;
}
