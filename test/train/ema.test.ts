// The moving average of the weights: the recursion against a host computation from the weights
// after every step, swapping in and out, the sidecar (a plain model checkpoint, checked against its
// step), resume bit-for-bit, best.safetensors without validation, and data-parallel replicas.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { Rng } from '../../lib/rng';
import { emaSidecar, WeightEma } from '../../lib/train/ema';
import { Model, type ModelOptions } from '../../lib/train/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-ema-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function synthBatch(seed: number, n = 2, size = 16, c = 1): Batch {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * size * size * c }, () => rng.int(256));
  const masks = Uint8Array.from(images, (v) => (v > 128 ? 1 : 0));
  return { images, masks, n, height: size, width: size, channels: c, mean: [0.5], std: [0.3], names: [] };
}
const train = Array.from({ length: 3 }, (_, i) => synthBatch(i));
const loader = {
  length: 3,
  async *[Symbol.asyncIterator]() {
    yield* train;
  },
};
const opts = (dir: string, extra: ModelOptions = {}): ModelOptions => ({ lr: 1e-2, out: path.join(tmp, dir), ...extra });
const net = (seed = 1): UNet => new UNet({ inChannels: 1, width: 4, depth: 2, seed });

async function emaState(m: Model): Promise<{ params: Float32Array; buffers: Float32Array }> {
  return m.ema!.withWeights(async () => ({ params: await m.net.store.readParams(), buffers: await m.net.store.readBuffers() }));
}

t.test('the recursion: a = d a + (1 - d) w after each step, d = min(decay, (1 + n) / (10 + n))', async (t) => {
  const m = new Model(net(), opts('recursion', { ema: 0.8, checkpoint: false }));
  await m.ready();
  let a = Float64Array.from(await m.net.store.readParams());
  let ab = Float64Array.from(await m.net.store.readBuffers());
  const decays: number[] = [];
  for (let k = 0; k < 8; k++) {
    const d = m.ema!.nextDecay();
    t.equal(d, Math.min(0.8, (1 + k) / (10 + k)));
    decays.push(d);
    await m.trainStep(train[k % 3]);
    const w = await m.net.store.readParams();
    const wb = await m.net.store.readBuffers();
    a = a.map((v, i) => d * v + (1 - d) * w[i]);
    ab = ab.map((v, i) => d * v + (1 - d) * wb[i]);
  }
  t.same(decays.slice(0, 3), [0.1, 2 / 11, 0.25], 'the early steps average over a short window');
  t.equal(decays[7], 8 / 17);
  t.equal(m.ema!.updates, 8);
  const got = await emaState(m);
  const err = (x: Float32Array, y: Float64Array): number => x.reduce((mx, v, i) => Math.max(mx, Math.abs(v - y[i])), 0);
  t.ok(err(got.params, a) < 1e-6, `parameters: max |ema - host recursion| = ${err(got.params, a)}`);
  t.ok(err(got.buffers, ab) < 1e-5, `BatchNorm statistics: max |ema - host recursion| = ${err(got.buffers, ab)}`);
  const w = await m.net.store.readParams();
  t.ok(err(w, a) > 1e-3, 'the average differs from the trained weights');
  t.same(Array.from(await m.net.store.readParams()), Array.from(w), 'withWeights put the trained weights back');
  await t.rejects(
    m.ema!.withWeights(() => {
      throw new Error('inside');
    }),
    { message: 'inside' },
  );
  t.same(Array.from(await m.net.store.readParams()), Array.from(w), '... also when fn throws');
  for (let k = 8; k < 40; k++) m.ema!.update();
  t.equal(m.ema!.nextDecay(), 0.8, 'the decay asked for, once (1 + n) / (10 + n) reaches it');
  m.dispose();
});

t.test('the sidecar is a plain checkpoint of the average, tied to its step', async (t) => {
  const m = new Model(net(), opts('sidecar', { ema: 0.9 }));
  for (let k = 0; k < 4; k++) await m.trainStep(train[k % 3]);
  const file = await m.save('last');
  const side = emaSidecar(file);
  t.equal(side, path.join(tmp, 'sidecar', 'last.ema.safetensors'));
  const ck = readCheckpoint(side);
  const want = await m.ema!.withWeights(() => stateDict(m.net));
  t.same([...ck.state.keys()].sort(), [...want.keys()].sort(), 'every parameter, buffer and counter under the reference names');
  for (const [k, v] of want) t.same(Array.from(ck.state.get(k)!.data as Float32Array), Array.from(v.data as Float32Array), k);
  t.equal(ck.meta.step, 4);
  t.same(JSON.parse(ck.rawMetadata['patho.ema']), { decay: 0.9, updates: 4 });
  // a fresh model resumes the average with the checkpoint
  const back = new Model(net(5), opts('sidecar', { ema: 0.9, loadModel: true }));
  await back.ready();
  t.equal(back.ema!.updates, 4);
  const a = await emaState(m),
    b = await emaState(back);
  t.same(Array.from(b.params), Array.from(a.params));
  t.same(Array.from(b.buffers), Array.from(a.buffers));
  // a sidecar of another step (an interrupted save) is refused, naming the file
  fs.copyFileSync(side, path.join(tmp, 'keep.safetensors'));
  await m.trainStep(train[0]);
  await m.save('last');
  fs.copyFileSync(path.join(tmp, 'keep.safetensors'), side);
  const stale = new Model(net(), opts('sidecar', { ema: 0.9, loadModel: true }));
  await t.rejects(stale.ready(), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /last\.ema\.safetensors does not match the checkpoint it goes with:\n {2}step 4 does not match the model checkpoint's step 5/,
  });
  // without a sidecar (a run that kept no average) the average starts at the loaded weights
  fs.rmSync(side);
  const fresh = new Model(net(), opts('sidecar', { ema: 0.9, loadModel: true }));
  await fresh.ready();
  t.equal(fresh.ema!.updates, 0);
  t.same(Array.from((await emaState(fresh)).params), Array.from(await fresh.net.store.readParams()));
  for (const x of [m, back, stale, fresh]) x.dispose();
  t.throws(() => new Model(net(), { ema: 1 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a decay in [0, 1) (0: no average) for ema but received 1',
  });
  t.throws(() => new WeightEma(net(), 0), { code: 'ERR_PATHO_ARG' });
});

t.test('resume with an average continues bit-for-bit', async (t) => {
  const straight = new Model(net(2), opts('straight', { ema: 0.9 }));
  await straight.train(loader, { epochs: 4 });
  const first = new Model(net(2), opts('resumed', { ema: 0.9 }));
  const ac = new AbortController();
  await first.train(loader, {
    epochs: 4,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.type === 'step' && e.step === 5) ac.abort();
    },
  });
  first.dispose();
  const second = new Model(net(9), opts('resumed', { ema: 0.9, loadModel: true }));
  const r = await second.train(loader, { epochs: 4 });
  t.equal(r.steps, 12);
  const a = await emaState(straight),
    b = await emaState(second);
  t.same(Array.from(b.params), Array.from(a.params), 'averaged parameters identical');
  t.same(Array.from(b.buffers), Array.from(a.buffers), 'averaged statistics identical');
  t.equal(second.ema!.updates, 12);
  // no validation: best.safetensors holds the final average, and says so
  t.same(r.selection, { source: 'final', weights: 'ema', step: 12, dice: null, smoothedDice: null });
  const best = readCheckpoint(path.join(tmp, 'resumed', 'best.safetensors'));
  t.equal(best.meta.weights, 'ema', "best's metadata says it holds the average");
  const want = await second.ema!.withWeights(() => stateDict(second.net));
  for (const name of ['encoder.0.conv1.weight', 'head.bias', 'bottleneck.bn2.running_var']) {
    t.same(
      Array.from(best.state.get(name)!.data as Float32Array),
      Array.from(want.get(name)!.data as Float32Array),
      `best ${name} = the average`,
    );
  }
  straight.dispose();
  second.dispose();
});

t.test('data-parallel replicas: one average of the weights every replica holds', async (t) => {
  const m = new Model(net(3), opts('replicas', { ema: 0.5, devices: 'cpu:0,1', checkpoint: false }));
  const batches = [synthBatch(20, 4), synthBatch(21, 4)];
  const r = await m.train(
    {
      length: 2,
      async *[Symbol.asyncIterator]() {
        yield* batches;
      },
    } as AsyncIterable<Batch>,
    { epochs: 3 },
  );
  t.equal(r.steps, 6);
  const [w0, w1] = await Promise.all(m.replicas.map((n) => n.store.readParams()));
  t.same(Array.from(w1), Array.from(w0), 'replicas hold the same weights');
  t.equal(m.ema!.updates, 6);
  t.equal(r.selection?.weights, 'ema');
  await m.close();
});
