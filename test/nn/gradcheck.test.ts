// Whole-network gradient check: backprop through a tiny UNet (width 4, depth 2, 16x16, batch 2,
// BCE - log Jaccard) against central finite differences of the float32 network's logits, with the
// loss itself evaluated in float64 on the host (an independent implementation of the formula).
import t from 'tap';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { Rng } from '../../lib/rng';
import { UNet } from '../../lib/nn/unet';
import { Tensor, noGrad, scope } from '../../lib/tensor';

/** mean BCE with logits - log((I + eps) / (U + eps)), in float64, as the reference's bce_jaccard_loss */
function hostLoss(z: Float32Array, y: Float32Array, eps = 1e-7): number {
  let bce = 0;
  let inter = 0;
  let sp = 0;
  let sy = 0;
  for (let k = 0; k < z.length; k++) {
    const v = z[k];
    bce += Math.max(v, 0) - v * y[k] + Math.log1p(Math.exp(-Math.abs(v)));
    const p = 1 / (1 + Math.exp(-v));
    inter += p * y[k];
    sp += p;
    sy += y[k];
  }
  return bce / z.length - Math.log((inter + eps) / (sp + sy - inter + eps));
}

t.test('analytic gradients agree with central differences', async (t) => {
  const rng = new Rng(7);
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 2, seed: 3 });
  // non-trivial BN affine values so their gradients are not the degenerate ones of weight 1, bias 0
  for (const [name, p] of net.namedParameters()) {
    if (name.includes('.bn')) {
      const v = Float32Array.from({ length: p.numel }, () => (name.endsWith('weight') ? rng.uniform(0.5, 1.5) : rng.uniform(-0.3, 0.3)));
      p.tensor.value.write(v);
    }
  }
  const x = Tensor.fromArray(
    Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => rng.uniform(-1, 1)),
    [2, 3, 16, 16],
  );
  const yHost = Float32Array.from({ length: 2 * 16 * 16 }, () => (rng.float() < 0.6 ? 1 : 0));
  const y = Tensor.fromArray(yHost, [2, 1, 16, 16]);
  net.store.zeroGrad();
  const lossF32 = await scope(() => {
    const logits = net.forward(x);
    const loss = bceJaccardLoss(logits, y);
    loss.backward();
    return Promise.all([loss.item(), logits.read()]);
  });
  const l64 = hostLoss(lossF32[1], yHost);
  t.ok(Math.abs(lossF32[0] - l64) <= 1e-5 * l64, `native loss ${lossF32[0]} vs float64 ${l64}`);
  const grads = await net.store.readGrads();
  const params = await net.store.readParams();
  const setParam = (i: number, v: number): void => {
    const cell = net.store.params.view(i, [1]);
    cell.write(Float32Array.of(v));
    cell.dispose();
  };
  const lossAt = async (i: number, v: number): Promise<number> => {
    setParam(i, v);
    return hostLoss(await noGrad(() => scope(() => net.forward(x).read())), yHost);
  };
  // backprop's gradient of parameter i with the parameter set to v
  const gradAt = async (i: number, v: number): Promise<number> => {
    setParam(i, v);
    net.store.zeroGrad();
    await scope(() => {
      const loss = bceJaccardLoss(net.forward(x), y);
      loss.backward();
      return loss.item();
    });
    return (await net.store.readGrads())[i];
  };
  // Steps 2e-4 (then 1e-4, 5e-4): ReLU and max-pool switches make the network piecewise smooth, so a large step
  // measures kinks rather than the derivative; the float64 loss on the host removes the rounding of
  // the loss reduction, leaving that of the float32 logits.
  // Tolerance: |fd - g| <= 0.05*|g| + 5e-5.
  const steps = [2e-4, 1e-4, 5e-4];
  let checked = 0;
  let failures = 0;
  let kinks = 0;
  const report: string[] = [];
  for (const s of net.store.paramSlots) {
    const n = s.item.numel;
    let best = 0;
    for (let k = 1; k < n; k++) if (Math.abs(grads[s.offset + k]) > Math.abs(grads[s.offset + best])) best = k;
    // the largest gradient and a random one of at least a tenth of it: the loss of a float32 network
    // moves by ~3e-8 for reasons of rounding alone, i.e. ~1e-4 of noise in a difference quotient with
    // h = 2e-4, so gradients far below that cannot be checked by finite differences
    const big: number[] = [];
    for (let k = 0; k < n; k++) if (Math.abs(grads[s.offset + k]) >= 0.1 * Math.abs(grads[s.offset + best])) big.push(k);
    for (const k of new Set([best, big[rng.int(big.length)]])) {
      const i = s.offset + k;
      const p0 = params[i];
      const g = grads[i];
      const tried: string[] = [];
      let ok = false;
      // a kink inside [p-h, p+h] spoils one step size but not all three: accept the first that agrees
      for (const h of steps) {
        const lp = await lossAt(i, p0 + h);
        const lm = await lossAt(i, p0 - h);
        setParam(i, p0);
        const fd = (lp - lm) / (2 * h);
        tried.push(`h=${h}: ${fd.toExponential(4)}`);
        if (Math.abs(fd - g) <= 0.05 * Math.abs(g) + 5e-5) {
          ok = true;
          break;
        }
      }
      if (!ok) {
        // A ReLU or max-pool switch within 1e-4 of the parameter (it happens: the gradient can jump by
        // 25% there) makes every difference quotient an average of the slopes on both sides. Then the
        // one-sided gradients differ, and the quotient must lie between them; a wrong backward rule
        // gives the same wrong value on both sides and fails here too.
        const h = steps[0];
        const gl = await gradAt(i, p0 - h);
        const gr = await gradAt(i, p0 + h);
        setParam(i, p0);
        const tol = 0.05 * Math.max(Math.abs(gl), Math.abs(gr)) + 5e-5;
        const fd = Number(tried[0].split(': ')[1]);
        const kink = Math.abs(gl - gr) > tol;
        if (kink && fd >= Math.min(gl, gr, g) - tol && fd <= Math.max(gl, gr, g) + tol) {
          kinks++;
          continue;
        }
        failures++;
        report.push(
          `${s.name}[${k}]: backprop ${g.toExponential(4)} (at -h ${gl.toExponential(4)}, +h ${gr.toExponential(4)}) vs finite differences ${tried.join(', ')}`,
        );
      }
      checked++;
    }
  }
  t.ok(checked >= 60, `${checked} parameters checked in ${net.store.paramSlots.length} tensors`);
  t.ok(kinks <= 4, `${kinks} parameters sit at a ReLU/max-pool switch (checked to lie between the one-sided gradients)`);
  t.equal(failures, 0, report.join('\n') || 'all within tolerance');
  x.dispose();
  y.dispose();
  net.dispose();
});
