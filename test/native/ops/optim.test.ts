// sgdUpdate / adamUpdate / clipGradNorm over a few steps against torch.optim's formulas evaluated
// in float64 here (SGD with momentum, dampening, Nesterov, weight decay; Adam and AdamW).
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, rng, uniform, upload } from './reference';

const n = 1000;
const tol = { rtol: 1e-5, atol: 1e-6 };

interface Sgd {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

const sgdCases: Sgd[] = [
  { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: false },
  { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0.1, nesterov: true },
  { lr: 0.1, momentum: 0.5, dampening: 0.3, weightDecay: 0, nesterov: false },
];

for (const c of sgdCases) {
  t.test(`sgd ${JSON.stringify(c)}`, async (t) => {
    const next = rng(7);
    const p = Float64Array.from(uniform(next, n)),
      buf = new Float64Array(n);
    const params = upload([n], p),
      grads = upload([n]),
      mom = upload([n]);
    native.fill(mom, 0); // the caller zeroes the buffer (see optim.cc on PyTorch's first step)
    for (let step = 1; step <= 4; step++) {
      const g = uniform(next, n);
      grads.write(Float32Array.from(g));
      native.sgdUpdate(params, grads, mom, c.lr, c.momentum, c.dampening, c.weightDecay, c.nesterov);
      for (let i = 0; i < n; i++) {
        let d = g[i] + c.weightDecay * p[i];
        if (c.momentum !== 0) {
          // torch.optim.SGD, except that its first step sets buf = d; with a zeroed buffer this is
          // (1 - dampening) * d, identical when dampening = 0
          buf[i] = c.momentum * buf[i] + (1 - c.dampening) * d;
          d = c.nesterov ? d + c.momentum * buf[i] : buf[i];
        }
        p[i] -= c.lr * d;
      }
      close(t, await download(params), p, tol, `params after step ${step}`);
      if (c.momentum !== 0) close(t, await download(mom), buf, tol, `momentum buffer after step ${step}`);
    }
    for (const z of [params, grads, mom]) z.dispose();
  });
}

for (const c of [
  { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
  { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: false },
  { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupled: true },
]) {
  t.test(`${c.decoupled ? 'adamw' : 'adam'} ${JSON.stringify(c)}`, async (t) => {
    const next = rng(11);
    const p = Float64Array.from(uniform(next, n)),
      m = new Float64Array(n),
      v = new Float64Array(n);
    const params = upload([n], p),
      grads = upload([n]),
      mt = upload([n]),
      vt = upload([n]);
    native.fill(mt, 0);
    native.fill(vt, 0);
    for (let step = 1; step <= 4; step++) {
      const g = uniform(next, n);
      grads.write(Float32Array.from(g));
      native.adamUpdate(params, grads, mt, vt, c.lr, c.beta1, c.beta2, c.eps, c.weightDecay, c.decoupled, step);
      // AdamParams carries the betas as float32 (0.999 becomes 0.99900001287), so 1 - beta2 differs
      // from PyTorch's double 1 - 0.999 by 1.3e-5 relative: the reference uses the float32 betas.
      const b1 = Math.fround(c.beta1),
        b2 = Math.fround(c.beta2);
      const bc1 = 1 - b1 ** step,
        bc2 = 1 - b2 ** step;
      for (let i = 0; i < n; i++) {
        let gi = g[i];
        if (c.decoupled) p[i] *= 1 - c.lr * c.weightDecay;
        else gi += c.weightDecay * p[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p[i] -= (c.lr / bc1) * (m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + c.eps));
      }
      close(t, await download(params), p, tol, `params after step ${step}`);
      close(t, await download(mt), m, tol, `m after step ${step}`);
      close(t, await download(vt), v, { rtol: 1e-5, atol: 1e-9 }, `v after step ${step}`);
    }
    for (const z of [params, grads, mt, vt]) z.dispose();
  });
}

t.test('clipGradNorm', async (t) => {
  const next = rng(5);
  const g = uniform(next, 100003); // above the parallel threshold
  const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
  for (const maxNorm of [norm / 4, norm * 2]) {
    const grads = upload([g.length], g),
      out = upload([1]);
    native.clipGradNorm(grads, maxNorm, out);
    close(t, await download(out), [norm], { rtol: 1e-6, atol: 0 }, `norm before clipping (maxNorm ${maxNorm.toFixed(1)})`);
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    close(
      t,
      await download(grads),
      g.map((v) => v * coef),
      { rtol: 1e-6, atol: 1e-9 },
      coef < 1 ? 'scaled to maxNorm' : 'unchanged below maxNorm',
    );
    grads.dispose();
    out.dispose();
  }
});
