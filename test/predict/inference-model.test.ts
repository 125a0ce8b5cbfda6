// InferenceModel (what patho predict and slide prediction run) computes the probabilities of
// Model.predict through the compiled inference path (BatchNorm folded, conv+bias+ReLU fused) with
// far less peak device memory: every activation is freed as soon as its consumer has run.
import t from 'tap';
import { native } from '../../lib/native';
import { UNet } from '../../lib/nn/unet';
import { InferenceModel } from '../../lib/predict/inference';
import { Model } from '../../lib/train/model';

function images(n: number, size: number, seed: number): Uint8Array {
  const a = new Uint8Array(n * size * size * 3);
  let s = seed;
  for (let i = 0; i < a.length; i++) a[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return a;
}

t.test('same probabilities as Model.predict', async (t) => {
  for (const precision of ['fp32', 'bf16'] as const) {
    const model = new Model(new UNet({ width: 4, depth: 3, seed: 3 }), { checkpoint: false, precision });
    await model.ready();
    // move BN running statistics off their defaults so eval-mode BatchNorm matters
    for (const [name, b] of model.net.namedBuffers())
      if (name.endsWith('running_var')) b.tensor.value.write(new Float32Array(b.tensor.numel).fill(0.7));
    const batch = { images: images(2, 64, 7), n: 2, height: 64, width: 64, channels: 3, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
    const ref = await model.predict(batch);
    // the same weights as a loaded model: folding BN changes float32 rounding only (probabilities
    // within 1e-5); bf16 rounds the folded weights once instead of the activations after BN (0.02)
    const inf = new InferenceModel(model.net, model.normalization ?? { mean: [0, 0, 0], std: [1, 1, 1] }, null, precision);
    const got = await inf.predict(batch);
    t.equal(got.length, ref.length);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    t.ok(worst <= (precision === 'bf16' ? 0.02 : 1e-5), `${precision}: max |diff| ${worst}`);
    t.equal(model.net.training, true, 'the training net stays in training mode');
    model.dispose();
  }
});

t.test('peak memory per tile falls well below Model.predict', async (t) => {
  const model = new Model(new UNet({ width: 16, depth: 4, seed: 1 }), { checkpoint: false });
  await model.ready();
  const batch = { images: images(2, 256, 1), n: 2, height: 256, width: 256, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const peakOf = async (f: () => Promise<Float32Array>) => {
    native.releaseCachedMemory('cpu');
    native.resetPeakMemory('cpu');
    const base = native.memoryStats('cpu').current;
    await f();
    return native.memoryStats('cpu').peak - base;
  };
  const whole = await peakOf(() => model.predict(batch));
  const inf = new InferenceModel(model.net, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  await inf.predict(batch); // compiles: the folded weights are allocated once, before the measurement
  const step = await peakOf(() => inf.predict(batch));
  // activations of one 256x256 tile at width 16: level-0 maps are 16 x 256^2 x 4 B = 4 MiB
  t.ok(step < whole / 3, `compiled peak ${(step / 2 ** 20).toFixed(1)} MiB vs Model.predict ${(whole / 2 ** 20).toFixed(1)} MiB`);
  t.ok(step < 2 * 12 * 2 ** 20 * 2, 'under 24 MiB per tile (skips + a few working maps)');
  model.dispose();
});
