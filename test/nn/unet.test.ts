// UNet against the PyTorch reference: golden values from scripts/golden.py (tiny UNet width 4,
// depth 2, 16x16, batch 2, BN in training mode): logits, loss, every gradient, running stats.
import * as path from 'node:path';
import t from 'tap';
import { Tensor, scope } from '../../lib/tensor';
import { bceJaccardLoss, bceLoss } from '../../lib/nn/losses';
import { loadStateDict, stateDict, type StateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { readSafetensors } from '../../lib/nn/safetensors';
import { sigmoid } from '../../lib/nn/functional';
import { noGrad } from '../../lib/tensor';

const golden = readSafetensors(path.join(__dirname, '..', 'golden', 'unet_w4d2.safetensors')).tensors;
const g = (name: string): Float32Array => {
  const e = golden.get(name);
  if (!e) throw new Error(`golden file lacks ${name}`);
  return e.data as Float32Array;
};

/** max |a-b| / (atol + rtol*|b|) must be <= 1; atol scales with the reference's magnitude */
function close(t: tap.Test, a: Float32Array, b: Float32Array, what: string, rtol = 2e-3, atolRel = 1e-4): void {
  t.equal(a.length, b.length, `${what}: length`);
  let maxRef = 0;
  for (const v of b) maxRef = Math.max(maxRef, Math.abs(v));
  const atol = atolRel * Math.max(maxRef, 1e-6);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  t.ok(
    worst <= 1,
    `${what}: max error ratio ${worst.toFixed(3)} (at ${at}: ${a[at]} vs ${b[at]}, rtol ${rtol}, atol ${atol.toExponential(2)})`,
  );
}

function initState(): StateDict {
  const s: StateDict = new Map();
  for (const [k, v] of golden) if (k.startsWith('init.')) s.set(k.slice(5), v);
  return s;
}

t.test('parameter and buffer names and shapes are the reference state_dict', async (t) => {
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 2 });
  const ours = await stateDict(net);
  const ref = initState();
  t.same([...ours.keys()].sort(), [...ref.keys()].sort());
  for (const [k, v] of ref) t.same(ours.get(k)?.shape, v.shape, k);
  t.equal(ours.get('encoder.0.bn1.num_batches_tracked')?.dtype, 'I64');
  const full = new UNet();
  t.equal(full.numParameters(), 34519233, 'default UNet (width 64, depth 4) has the reference parameter count');
  full.dispose();
  net.dispose();
});

t.test('forward, loss, gradients and running stats match PyTorch', async (t) => {
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 2 });
  await loadStateDict(net, initState(), { strict: true });
  const x = Tensor.fromArray(g('input'), [2, 3, 16, 16]);
  const y = Tensor.fromArray(g('target'), [2, 1, 16, 16]);
  net.store.zeroGrad();
  const [logitsP, lossP, bceP] = scope(() => {
    const logits = net.forward(x);
    const loss = bceJaccardLoss(logits, y);
    loss.backward();
    return [logits.read(), loss.read(), noGrad(() => bceLoss(logits, y)).read()];
  });
  close(t, await logitsP, g('logits'), 'logits (train-mode BN)');
  close(t, await lossP, g('loss'), 'bce - log jaccard loss', 1e-4);
  close(t, await bceP, g('bce_loss'), 'plain bce loss', 1e-4);
  const state = await stateDict(net);
  for (const [k, e] of golden) {
    if (k.startsWith('after.'))
      close(t, state.get(k.slice(6))!.data as Float32Array, e.data as Float32Array, `${k.slice(6)} after one training forward`);
  }
  t.equal(Number((state.get('decoder.0.block.bn2.num_batches_tracked')!.data as BigInt64Array)[0]), 1);
  const grads = await net.store.readGrads();
  let checked = 0;
  for (const s of net.store.paramSlots) {
    const ref = golden.get(`grad.${s.name}`)!.data as Float32Array;
    close(t, grads.slice(s.offset, s.offset + s.item.numel), ref, `grad ${s.name}`, 5e-3, 2e-3);
    checked++;
  }
  t.equal(checked, 36, 'every parameter gradient checked');
  const evalLogits = noGrad(() =>
    scope(() => {
      net.eval();
      return net.forward(x).read();
    }),
  );
  close(t, await evalLogits, g('eval_logits'), 'eval-mode logits with the updated running stats');
  const probs = noGrad(() => scope(() => sigmoid(net.forward(x)).read()));
  const p = await probs;
  const ref = g('eval_logits');
  close(
    t,
    p,
    ref.map((v) => 1 / (1 + Math.exp(-v))),
    'sigmoid of eval logits',
  );
  net.dispose();
});

t.test('a bad input shape is one clear error', async (t) => {
  const net = new UNet({ inChannels: 3, width: 4, depth: 2 });
  const x = Tensor.empty([1, 3, 18, 16]);
  t.throws(() => net.forward(x), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected input \[N, 3, H, W\] with H and W multiples of 4 but received \[1,3,18,16\]/,
  });
  t.throws(() => new UNet({ width: 0 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected an integer in [1, 4096] for UNet width but received 0',
  });
  t.throws(() => new UNet({ depth: 9 }), { code: 'ERR_PATHO_ARG', message: 'Expected an integer in [1, 8] for UNet depth but received 9' });
  x.dispose();
  net.dispose();
});
