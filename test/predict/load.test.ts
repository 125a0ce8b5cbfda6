// loadInferenceModel: a patho checkpoint comes back with its config, normalisation and thresholds
// and predicts exactly what the trained Model predicted, without optimizer state; a plain
// state_dict gets its config from the shapes; bad files and options are clear errors.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { native } from '../../lib/native';
import { writeSafetensors } from '../../lib/nn/safetensors';
import { stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { loadInferenceModel } from '../../lib/predict/load';
import { Rng } from '../../lib/rng';
import { Model } from '../../lib/train/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-load-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function batch(seed: number, n = 2, size = 16): Batch {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * size * size }, () => rng.int(256));
  const masks = Uint8Array.from(images, (v) => (v > 120 ? 1 : 0));
  return { images, masks, n, height: size, width: size, channels: 1, mean: [0.45], std: [0.2], names: [] };
}

t.test('a patho checkpoint predicts what the trained model predicted', async (t) => {
  const model = new Model(new UNet({ inChannels: 1, width: 4, depth: 2, seed: 4 }), { checkpoint: tmp, out: tmp, thresholds: [0.4, 0.6] });
  for (let s = 0; s < 3; s++) await model.trainStep(batch(s));
  const file = await model.save('ck');
  const { mean, std, ...images } = batch(10);
  void mean;
  void std; // predicted with the model's own normalisation, as `patho predict` does
  const want = await model.predict(images);
  const arenaBytes = 4 * (2 * model.net.store.size + model.net.store.bufferSize);
  model.dispose();
  const before = native.liveTensors();
  const loaded = await loadInferenceModel(file);
  t.ok(
    native.liveTensors().bytes - before.bytes <= arenaBytes,
    `allocates the network's arenas only, no optimizer state (${native.liveTensors().bytes - before.bytes} <= ${arenaBytes} bytes)`,
  );
  t.same(loaded.config, { inChannels: 1, outChannels: 1, width: 4, depth: 2 });
  t.same(loaded.normalization, { mean: [0.45], std: [0.2] });
  t.same(loaded.thresholds, [0.4, 0.6]);
  t.equal(loaded.source, 'patho');
  // the loaded model runs the compiled path (BatchNorm folded into the convolutions): the same
  // probabilities up to float32 rounding of the folded weights
  const got = await loaded.model.predict(images);
  t.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  t.ok(worst <= 1e-5, `the trained model's probabilities within 1e-5 (max |diff| ${worst})`);
  {
    using m = loaded.model;
    t.equal(m.device, 'cpu:0');
  }
  t.same(native.liveTensors(), before, '`using` freed everything it loaded');
});

t.test('a plain state_dict: config from the shapes, pixel/255 input; errors', async (t) => {
  const net = new UNet({ inChannels: 3, outChannels: 2, width: 2, depth: 3, seed: 1 });
  const file = path.join(tmp, 'plain.safetensors');
  writeSafetensors(file, await stateDict(net));
  const loaded = await loadInferenceModel(file);
  t.same(loaded.config, { inChannels: 3, outChannels: 2, width: 2, depth: 3 });
  t.same(loaded.normalization, { mean: [0, 0, 0], std: [1, 1, 1] });
  t.equal(loaded.thresholds, null);
  t.equal(loaded.source, 'state_dict');
  const x = { data: new Float32Array(3 * 8 * 8).fill(0.3), shape: [1, 3, 8, 8] };
  const a = await loaded.model.predict(x),
    b = await new Model(net, { checkpoint: false }).predict(x);
  t.equal(a.length, b.length);
  t.ok(
    a.every((v, i) => Math.abs(v - b[i]) <= 1e-5),
    'same network (BatchNorm folded: within 1e-5)',
  );
  loaded.model.dispose();
  net.dispose();
  await t.rejects(loadInferenceModel(file, { mean: [0.5] }), { code: 'ERR_PATHO_ARG', message: /Expected 3 values for --mean and --std/ });
  await t.rejects(loadInferenceModel(file, { precision: 'fp16' as never }), {
    code: 'ERR_PATHO_ARG',
    message: "Expected 'fp32' or 'bf16' for precision but received 'fp16'",
  });
  await t.rejects(loadInferenceModel(path.join(tmp, 'nope.safetensors')), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /nope\.safetensors' does not exist/,
  });
  writeSafetensors(path.join(tmp, 'other.safetensors'), new Map([['x', { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) }]]));
  await t.rejects(loadInferenceModel(path.join(tmp, 'other.safetensors')), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /is not a UNet state_dict of the reference module: it has no tensor 'encoder\.0\.conv1\.weight'/,
  });
});
