// Resumable at any point: a run stopped mid-epoch saves where the epoch stands (metadata `loader`)
// and a resume continues with the next batch, so stop + resume == one straight run bit for bit,
// with lib/data's DataLoader (crops, augmentation, shuffling: it starts the epoch mid-way) and with
// a plain async iterable (replayed, the batches done dropped).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { DataLoader, FolderDataset } from '../../lib/data';
import { UNet } from '../../lib/nn/unet';
import { Rng } from '../../lib/rng';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { Model, type ModelOptions } from '../../lib/train/model';
import { positionFromMeta } from '../../lib/train/position';
import { writeDataset } from '../fixtures/data/make';

let root = '';
let tmp = '';
t.before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-position-data-'));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-position-runs-'));
  await writeDataset(root, ['a', 'b', 'c', 'd', 'e', 'f', 'g'], 40, 36, 3);
});
t.teardown(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

const opts = (dir: string, extra: ModelOptions = {}): ModelOptions => ({
  lr: 1e-2,
  optimizer: 'adam',
  schedule: { kind: 'cosine' },
  out: path.join(tmp, dir),
  seed: 3,
  ...extra,
});
// 7 images, batch 2: 4 batches per epoch (the last one of a single image)
const dataLoader = (): DataLoader => new DataLoader(new FolderDataset(root), { batchSize: 2, crop: 16, depth: 2, workers: 0, seed: 5 });
const net = (seed = 4): UNet => new UNet({ inChannels: 3, width: 2, depth: 2, seed });

async function params(m: Model): Promise<Float32Array> {
  return m.net.store.readParams();
}

function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : a.length;
}

async function stopAndResume(
  dir: string,
  makeLoader: () => AsyncIterable<Batch>,
  stopAtStep: number,
  epochs: number,
): Promise<{ resumed: Model; steps: number; meta: ReturnType<typeof readCheckpoint>['meta'] }> {
  const first = new Model(net(), opts(dir));
  const ac = new AbortController();
  const r1 = await first.train(makeLoader(), {
    epochs,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.type === 'step' && e.step === stopAtStep) ac.abort();
    },
  });
  first.dispose();
  if (r1.steps !== stopAtStep) throw new Error(`stopped after ${r1.steps} steps, not ${stopAtStep}`);
  const meta = readCheckpoint(path.join(tmp, dir, 'last.safetensors')).meta;
  const resumed = new Model(net(99), opts(dir, { loadModel: true }));
  const r2 = await resumed.train(makeLoader(), { epochs });
  return { resumed, steps: r2.steps, meta };
}

t.test('DataLoader: stopped mid-epoch and resumed == straight, bit for bit', async (t) => {
  const straight = new Model(net(), opts('straight'));
  const r = await straight.train(dataLoader(), { epochs: 2 });
  t.equal(r.steps, 8);
  // step 6 = batch 2 of epoch 2 (0-based epoch 1): 4 samples of it done over 1 rank
  const { resumed, steps, meta } = await stopAndResume('cut', dataLoader, 6, 2);
  t.same(meta.loader, { epoch: 1, batch: 2, samples: 4 }, 'the checkpoint says where the epoch stood');
  t.same(positionFromMeta(meta), { epoch: 1, batch: 2, samples: 4 });
  t.equal(meta.epoch, 1);
  t.equal(steps, 8, 'the resumed run did the 2 remaining steps, not the whole epoch again');
  t.equal(resumed.step, 8);
  t.equal(firstDifference(await params(straight), await params(resumed)), -1, 'weights identical to the straight run');
  const end = readCheckpoint(path.join(tmp, 'cut', 'last.safetensors')).meta;
  t.equal(end.loader, undefined, 'a checkpoint at the end of an epoch holds no mid-epoch position');
  straight.dispose();
  resumed.dispose();
});

t.test('DataLoader.resumeAt starts the epoch after whole batches of this run', async (t) => {
  const a = dataLoader();
  const all: Batch[] = [];
  a.setEpoch(1);
  for await (const b of a) all.push(b);
  const b = dataLoader();
  t.same(b.resumeAt(1, 5), { batch: 2, samples: 4 }, '5 samples done: resume after the 2 whole batches (4 samples)');
  const rest: Batch[] = [];
  for await (const x of b) rest.push(x);
  t.same(
    rest.map((x) => x.names),
    all.slice(2).map((x) => x.names),
    'the same crops as the straight epoch from batch 3 on',
  );
  t.same(
    rest.map((x) => x.index),
    [2, 3],
    'batch indices count from the start of the epoch',
  );
  t.same(Buffer.from(rest[0].images).equals(Buffer.from(all[2].images)), true, 'pixels (augmentation) identical');
  t.equal(b.epoch, 2, 'the next iteration is the next epoch');
  const sharded = new DataLoader(new FolderDataset(root), {
    batchSize: 2,
    crop: 16,
    depth: 2,
    workers: 0,
    seed: 5,
    shard: { rank: 1, worldSize: 2 },
  });
  t.same(sharded.resumeAt(0, 5), { batch: 1, samples: 4 }, '2 ranks x batch 2: 4 samples make one batch per rank');
  await Promise.all([a.close(), b.close(), sharded.close()]);
});

// a plain iterable: the same 3 batches per epoch, shuffled by epoch (no resumeAt)
function plainLoader(): AsyncIterable<Batch> & { setEpoch(e: number): void; length: number } {
  const rng = new Rng(8);
  const batches: Batch[] = Array.from({ length: 3 }, () => {
    const images = Uint8Array.from({ length: 2 * 16 * 16 * 3 }, () => rng.int(256));
    const masks = Uint8Array.from({ length: 2 * 16 * 16 }, (_, i) => (images[i * 3] > 128 ? 1 : 0));
    return { images, masks, n: 2, height: 16, width: 16, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.3, 0.3, 0.3], names: [] };
  });
  let order = [0, 1, 2];
  return {
    length: 3,
    setEpoch(e: number) {
      order = e % 2 ? [2, 0, 1] : [0, 1, 2];
    },
    async *[Symbol.asyncIterator]() {
      for (const i of order) yield batches[i];
    },
  };
}

t.test('a plain iterable is replayed and the batches done are dropped', async (t) => {
  const straight = new Model(net(), opts('plain-straight'));
  await straight.train(plainLoader(), { epochs: 2 });
  const { resumed, steps, meta } = await stopAndResume('plain-cut', plainLoader, 5, 2);
  t.same(meta.loader, { epoch: 1, batch: 2, samples: 4 });
  t.equal(steps, 6);
  t.equal(firstDifference(await params(straight), await params(resumed)), -1, 'weights identical to the straight run');
  straight.dispose();
  resumed.dispose();
});

t.test('positions that do not fit the checkpoint are ignored', async (t) => {
  t.equal(positionFromMeta({ epoch: 2, loader: { epoch: 1, batch: 3, samples: 6 } }), null, 'another epoch');
  t.equal(positionFromMeta({ epoch: 1, loader: { epoch: 1, batch: 0, samples: 0 } }), null, 'the start of an epoch');
  t.equal(positionFromMeta({ epoch: 1, loader: { epoch: 1, batch: -1, samples: 2 } }), null);
  t.equal(positionFromMeta({ epoch: 1 }), null);
  t.same(positionFromMeta({ epoch: 1, loader: { epoch: 1, batch: 1, samples: 2 } }), { epoch: 1, batch: 1, samples: 2 });
});
