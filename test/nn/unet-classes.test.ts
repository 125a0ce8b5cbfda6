// A K-class UNet (out_channels 3) against the PyTorch reference: golden values of
// scripts/golden_unet_classes.py (logits, CE(weight, ignore_index 255) - log mean foreground Jaccard,
// every gradient, running stats, eval softmax), and interop both ways: a patho 3-class checkpoint loads
// into the reference module with strict=True and predicts the same; the reference's state_dict loads
// into patho's predict path, which returns its softmax.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { crossEntropy, crossEntropyJaccardLoss } from '../../lib/nn/multiclass';
import { saveCheckpoint } from '../../lib/nn/checkpoint';
import { encodeSafetensors, readSafetensors } from '../../lib/nn/safetensors';
import { loadStateDict, type StateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { loadInferenceModel } from '../../lib/predict/load';
import { predictProbabilities } from '../../lib/predict/inference';
import { classesFromCheckpoint } from '../../lib/classes/meta';
import { noGrad, scope, Tensor } from '../../lib/tensor';

const golden = readSafetensors(path.join(__dirname, '..', 'golden', 'unet_w4d2_k3.safetensors'));
const g = (name: string): Float32Array => {
  const e = golden.tensors.get(name);
  if (!e) throw new Error(`golden file lacks ${name}`);
  return e.data as Float32Array;
};
const WEIGHT = JSON.parse(golden.metadata.weight) as number[];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-unet-k3-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function close(t: tap.Test, a: ArrayLike<number>, b: ArrayLike<number>, what: string, rtol = 2e-3, atolRel = 1e-4): void {
  t.equal(a.length, b.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < b.length; i++) maxRef = Math.max(maxRef, Math.abs(b[i]));
  const atol = atolRel * Math.max(maxRef, 1e-6);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  t.ok(worst <= 1, `${what}: max error ratio ${worst.toFixed(3)} (rtol ${rtol}, atol ${atol.toExponential(2)})`);
}

function state(prefix: string, replace: string[] = []): StateDict {
  const s: StateDict = new Map();
  for (const [k, v] of golden.tensors) if (k.startsWith(prefix)) s.set(k.slice(prefix.length), v);
  // the running statistics after the golden training step (so eval logits are comparable)
  for (const k of replace) s.set(k, golden.tensors.get(`after.${k}`)!);
  return s;
}

t.test('3-class forward, class loss, gradients and running stats match PyTorch', async (t) => {
  const net = new UNet({ inChannels: 3, outChannels: 3, width: 4, depth: 2 });
  await loadStateDict(net, state('init.'), { strict: true });
  const x = Tensor.fromArray(g('input'), [2, 3, 16, 16]);
  const y = Tensor.fromArray(g('labels'), [2, 16, 16]);
  net.store.zeroGrad();
  const [logitsP, lossP, ceP] = scope(() => {
    const logits = net.forward(x);
    const loss = crossEntropyJaccardLoss(logits, y, { weight: WEIGHT, ignoreIndex: 255 });
    loss.backward();
    return [logits.read(), loss.read(), noGrad(() => crossEntropy(logits, y, { weight: WEIGHT, ignoreIndex: 255 })).read()];
  });
  close(t, await logitsP, g('logits'), 'logits [2,3,16,16] (train-mode BN)');
  close(t, await lossP, g('loss'), 'CE - log mean foreground Jaccard', 1e-4);
  close(t, await ceP, g('ce_loss'), 'weighted CE with ignore_index 255', 1e-4);
  const grads = await net.store.readGrads();
  let checked = 0;
  for (const s of net.store.paramSlots) {
    close(t, grads.slice(s.offset, s.offset + s.item.numel), g(`grad.${s.name}`), `grad ${s.name}`, 5e-3, 2e-3);
    checked++;
  }
  t.equal(checked, 36, 'every parameter gradient checked');
  t.equal(net.config.outChannels, 3);
  // predict's path: eval BN with the updated statistics, softmax over the 3 channels
  const probs = await predictProbabilities(net, { data: g('input'), shape: [2, 3, 16, 16] }, null);
  close(t, probs, g('eval_softmax'), 'eval softmax (predictProbabilities)', 1e-3, 1e-5);
  let sumErr = 0;
  for (let i = 0; i < 2 * 256; i++) {
    const n = Math.floor(i / 256),
      p = i % 256;
    sumErr = Math.max(sumErr, Math.abs(probs[n * 768 + p] + probs[n * 768 + 256 + p] + probs[n * 768 + 512 + p] - 1));
  }
  t.ok(sumErr < 1e-5, `probabilities sum to 1 over the classes (max error ${sumErr.toExponential(2)})`);
  x.dispose();
  y.dispose();
  net.dispose();
});

t.test("the reference's 3-class state_dict loads into patho's predict path and gives its softmax", async (t) => {
  const runningKeys = [...golden.tensors.keys()].filter((k) => k.startsWith('after.')).map((k) => k.slice(6));
  const file = path.join(tmp, 'torch_k3.safetensors');
  fs.writeFileSync(file, encodeSafetensors(state('init.', runningKeys)));
  const loaded = await loadInferenceModel(file, {});
  t.same(loaded.config, { inChannels: 3, outChannels: 3, width: 4, depth: 2 }, 'config from the tensor shapes');
  t.equal(loaded.source, 'state_dict');
  const list = classesFromCheckpoint({}, 3, file)!;
  t.same(
    list.classes.map((c) => c.name),
    ['background', 'class1', 'class2'],
    'a state_dict without names gets default class names',
  );
  const probs = await loaded.model.predict({ data: g('input'), shape: [2, 3, 16, 16] });
  close(t, probs, g('eval_softmax'), 'InferenceModel (compiled, BN folded) softmax', 1e-3, 1e-5);
  loaded.model.dispose();
});

const py = spawnSync('python3', ['-c', 'import torch, safetensors'], { encoding: 'utf8' });
t.test(
  'a patho 3-class checkpoint loads into the PyTorch reference (out_channels=3) with strict=True',
  { skip: py.status !== 0 ? 'python3 with torch and safetensors not available' : false },
  async (t) => {
    const net = new UNet({ inChannels: 3, outChannels: 3, width: 4, depth: 2 });
    await loadStateDict(net, state('init.'), { strict: true });
    const file = path.join(tmp, 'patho_k3.safetensors');
    await saveCheckpoint(file, net, {
      model: { kind: 'unet', ...net.config },
      epoch: 0,
      step: 0,
      classes: ['background', 'interior', 'boundary'],
      classColors: ['#000000', '#00ff00', '#ff0000'],
    });
    const inputFile = path.join(tmp, 'input.safetensors');
    fs.writeFileSync(inputFile, encodeSafetensors(new Map([['input', { dtype: 'F32', shape: [2, 3, 16, 16], data: g('input') }]])));
    const r = spawnSync('python3', [path.join(__dirname, '..', '..', 'scripts', 'golden.py'), '--check', file, inputFile], {
      encoding: 'utf8',
    });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { missing: string[]; unexpected: string[]; logits: number[] };
    t.same([out.missing, out.unexpected], [[], []], 'strict load: nothing missing, nothing unexpected');
    t.equal(out.logits.length, 2 * 3 * 16 * 16, '3 output channels');
    net.eval();
    const x = Tensor.fromArray(g('input'), [2, 3, 16, 16]);
    const ours = await noGrad(() => scope(() => net.forward(x).read()));
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - out.logits[i]));
    t.ok(worst < 1e-4, `eval logits: max |patho - torch| = ${worst.toExponential(2)} < 1e-4`);
    const meta = readSafetensors(file).metadata;
    t.same(JSON.parse(meta['patho.classes']), ['background', 'interior', 'boundary'], 'class names recorded');
    t.same(JSON.parse(meta['patho.classColors']), ['#000000', '#00ff00', '#ff0000'], 'colours recorded');
    x.dispose();
    net.dispose();
  },
);
