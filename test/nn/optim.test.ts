// Fused optimizers against torch.optim: three steps of SGD (momentum 0.9, Nesterov, weight decay),
// Adam (L2 weight decay) and AdamW (decoupled) from the same weights on the same batch (golden file).
import * as path from 'node:path';
import t from 'tap';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { Adam, SGD, createOptimizer } from '../../lib/nn/optim';
import { loadStateDict, type StateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { Tensor, scope } from '../../lib/tensor';
import { readSafetensors } from '../../lib/nn/safetensors';

const dir = path.join(__dirname, '..', 'golden');
const golden = readSafetensors(path.join(dir, 'unet_w4d2.safetensors')).tensors;
const optimGolden = readSafetensors(path.join(dir, 'unet_w4d2_optim.safetensors')).tensors;
const init: StateDict = new Map([...golden].filter(([k]) => k.startsWith('init.')).map(([k, v]) => [k.slice(5), v]));

const specs = {
  sgd: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
  adam: { name: 'adam', lr: 1e-2, weightDecay: 1e-3 },
  adamw: { name: 'adamw', lr: 1e-2, weightDecay: 0.1 },
} as const;

for (const [name, spec] of Object.entries(specs)) {
  t.test(`${name}: three steps match torch.optim`, async (t) => {
    const net = new UNet({ inChannels: 3, width: 4, depth: 2 });
    await loadStateDict(net, init);
    const opt = createOptimizer(net.store, spec);
    const x = Tensor.fromArray(golden.get('input')!.data as Float32Array, [2, 3, 16, 16]);
    const y = Tensor.fromArray(golden.get('target')!.data as Float32Array, [2, 1, 16, 16]);
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const p = scope(() => {
        opt.zeroGrad();
        const loss = bceJaccardLoss(net.forward(x), y);
        loss.backward();
        opt.step();
        return loss.read();
      });
      losses.push((await p)[0]);
    }
    const refLosses = Array.from(optimGolden.get(`${name}.losses`)!.data as Float32Array);
    losses.forEach((l, i) =>
      t.ok(Math.abs(l - refLosses[i]) <= 1e-4 * Math.abs(refLosses[i]), `loss ${i}: ${l} vs ${refLosses[i]} (rtol 1e-4)`),
    );
    for (const [k, e] of optimGolden) {
      if (!k.startsWith(`${name}.`) || k.endsWith('.losses')) continue;
      const pname = k.slice(name.length + 1);
      const ours = await net.store.readByName(pname);
      const ref = e.data as Float32Array;
      let worst = 0;
      // tolerance 1e-6 absolute: updates are ~lr = 1e-2 in size, so this checks them to ~1e-4 relative
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ours[i] - ref[i]));
      t.ok(worst <= 1e-6, `${pname}: max |patho - torch| = ${worst.toExponential(2)} <= 1e-6`);
    }
    t.equal(opt.stepCount, 3);
    opt.dispose();
    net.dispose();
  });
}

t.test('option checks', async (t) => {
  const net = new UNet({ inChannels: 1, width: 2, depth: 1 });
  t.throws(() => new SGD(net.store, { lr: -1 }), { code: 'ERR_PATHO_ARG', message: 'Expected a number > 0 for lr but received -1' });
  t.throws(() => new SGD(net.store, { nesterov: true }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected momentum > 0 and dampening 0 for nesterov/,
  });
  t.throws(() => new Adam(net.store, { beta1: 1 }), { code: 'ERR_PATHO_ARG', message: /beta1 and beta2 < 1/ });
  t.throws(() => createOptimizer(net.store, 'rmsprop' as never), {
    code: 'ERR_PATHO_ARG',
    message: "Expected 'sgd', 'adam' or 'adamw' for optimizer but received 'rmsprop'",
  });
  const o = createOptimizer(net.store, 'adamw', 0.3);
  t.equal(o.lr, 0.3);
  t.equal((o as Adam).weightDecay, 0.01, 'AdamW default weight decay as torch');
  o.dispose();
  net.dispose();
});

t.test('clipGradNorm scales the whole gradient arena to the global norm', async (t) => {
  const net = new UNet({ inChannels: 1, width: 2, depth: 1 });
  const opt = new SGD(net.store, { lr: 0.1 });
  const host = new Float32Array(net.store.size);
  for (let i = 0; i < host.length; i++) host[i] = ((i % 7) - 3) * 0.5;
  net.store.grads.write(host);
  let sq = 0;
  for (const v of host) sq += v * v;
  const norm = (await opt.clipGradNorm(1).read())[0];
  t.ok(Math.abs(norm - Math.sqrt(sq)) <= 1e-4 * Math.sqrt(sq), `norm before clipping ${norm} vs ${Math.sqrt(sq)}`);
  const after = await net.store.readGrads();
  let sq2 = 0;
  for (const v of after) sq2 += v * v;
  t.ok(Math.abs(Math.sqrt(sq2) - 1) < 1e-4, `norm after clipping ${Math.sqrt(sq2)}`);
  opt.dispose();
  net.dispose();
});
