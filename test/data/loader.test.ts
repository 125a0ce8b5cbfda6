// DataLoader: the batch contract, determinism (seed, epoch, workers, cache), disjoint shards,
// validation tiles covering every pixel, the original call shape, option and data errors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { Batch, DataLoader, FolderDataset } from '../../lib/data';
import { readImage, readMask } from '../../lib/data/decode';
import { noise, SHARED_DATA, writeDataset, writeImage } from '../fixtures/data/make';

async function collect(loader: DataLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}
const hex = (bs: Batch[]): string[] => bs.map((b) => Buffer.from(b.images).toString('base64') + Buffer.from(b.masks).toString('base64'));

let rgbRoot = '';
t.before(async () => {
  fs.mkdirSync(path.dirname(t.testdirName), { recursive: true }); // .tap/fixtures is missing in a fresh checkout
  rgbRoot = fs.mkdtempSync(path.join(t.testdirName + '-rgb'));
  await writeDataset(rgbRoot, ['a', 'b', 'c', 'd', 'e', 'f'], 48, 40, 3);
});
t.teardown(() => fs.rmSync(rgbRoot, { recursive: true, force: true }));

t.test('batch contract: NHWC uint8, 0/1 masks, stats, names, regions; partial and dropped last batch', async (t) => {
  const ds = new FolderDataset(rgbRoot);
  const loader = new DataLoader(ds, { batchSize: 4, crop: 32, workers: 0, seed: 1 });
  await loader.ready();
  t.equal(loader.length, 2);
  const bs = await collect(loader);
  t.same(
    bs.map((b) => b.n),
    [4, 2],
  );
  const stats = await ds.stats();
  for (const b of bs) {
    t.same([b.height, b.width, b.channels], [32, 32, 3]);
    t.equal(b.images.length, b.n * 32 * 32 * 3);
    t.equal(b.masks.length, b.n * 32 * 32);
    t.ok(b.masks.every((v) => v === 0 || v === 1));
    t.same({ mean: b.mean, std: b.std }, stats);
    t.equal(b.names.length, b.n);
    for (const [k, name] of b.names.entries()) {
      t.match(name, /^[a-f]@\d+,\d+$/);
      const r = b.regions![k];
      t.equal(name, `${ds.entry(r.item).stem}@${r.x},${r.y}`);
      t.same([r.width, r.height], [32, 32]);
    }
  }
  t.same(bs.flatMap((b) => b.names.map((n) => n[0])).sort(), ['a', 'b', 'c', 'd', 'e', 'f'], 'one crop of every image per epoch');
  const dropped = await collect(new DataLoader(ds, { batchSize: 4, crop: 32, workers: 0, dropLast: true }));
  t.same(
    dropped.map((b) => b.n),
    [4],
  );
});

t.test('deterministic for a seed; reshuffled per epoch; setEpoch replays; workers and cache do not matter', async (t) => {
  const opts = { batchSize: 2, crop: 32, seed: 7, samplesPerEpoch: 8 } as const;
  const a = new DataLoader(rgbRoot, { ...opts, workers: 0 });
  const a0 = hex(await collect(a)),
    a1 = hex(await collect(a));
  t.equal(a.epoch, 2);
  const b = new DataLoader(rgbRoot, { ...opts, workers: 0, cache: false });
  t.same(hex(await collect(b)), a0, 'same seed, no cache: same batches');
  t.notSame(a1, a0, 'epoch 1 differs from epoch 0');
  a.setEpoch(1);
  t.same(hex(await collect(a)), a1, 'setEpoch(1) replays epoch 1');
  const w = new DataLoader(rgbRoot, { ...opts, workers: 2, prefetch: 3 });
  t.same(hex(await collect(w)), a0, 'two worker threads give the same bytes in the same order');
  t.same(hex(await collect(w)), a1);
  await w.close();
  const c = new DataLoader(rgbRoot, { ...opts, seed: 8, workers: 0 });
  t.notSame(hex(await collect(c)), a0, 'another seed, other batches');
});

t.test('shards: disjoint, equal-sized, together the whole (truncated) epoch, same crops as one process', async (t) => {
  const base = { batchSize: 2, crop: 32, seed: 3, samplesPerEpoch: 14, workers: 0 } as const;
  const whole = new DataLoader(rgbRoot, base);
  await whole.ready();
  const all = whole.samples(0);
  const shards = [0, 1, 2].map((rank) => new DataLoader(rgbRoot, { ...base, shard: { rank, worldSize: 3 } }));
  const seeds: number[][] = [];
  for (const s of shards) {
    await s.ready();
    seeds.push(s.samples(0).map((x) => x.seed));
  }
  t.same(
    seeds.map((x) => x.length),
    [4, 4, 4],
    '14 samples over 3 ranks: 4 each (2 dropped for equal step counts)',
  );
  const union = seeds.flat();
  t.equal(new Set(union).size, 12, 'disjoint');
  t.same(new Set(union), new Set(all.slice(0, 12).map((x) => x.seed)));
  const names1 = (await collect(shards[1])).flatMap((b) => b.names);
  const namesAll = (await collect(whole)).flatMap((b) => b.names);
  t.same(
    names1,
    [1, 4, 7, 10].map((i) => namesAll[i]),
    'rank 1 renders samples 1, 4, 7, 10 exactly as a single process does',
  );
  t.same(
    shards.map((s) => s.length),
    [2, 2, 2],
  );
});

t.test('validation tiles cover every pixel of every image (reflection-padded where smaller)', async (t) => {
  const root = t.testdir();
  const sizes: [string, number, number][] = [
    ['big', 70, 50],
    ['square', 64, 64],
    ['tiny', 20, 30],
  ];
  for (const [stem, w, h] of sizes) {
    await writeImage(path.join(root, `images/${stem}.png`), noise(w * h, w), w, h, 1);
    await writeImage(
      path.join(root, `masks/${stem}.png`),
      noise(w * h, h, 0, 1).map((v) => v * 255),
      w,
      h,
      1,
    );
  }
  const ds = await new FolderDataset(root).ready();
  const loader = new DataLoader(ds, { batchSize: 3, crop: 32, tiles: true, workers: 0, stats: { mean: [0.5], std: [0.25] } });
  const bs = await collect(loader);
  t.same(bs[0].mean, [0.5]);
  const tiles = bs.flatMap((b) => b.names);
  t.equal(tiles.length, 3 * 2 + 2 * 2 + 1, 'big: 3x2 tiles, square: 2x2, tiny: 1');
  for (let i = 0; i < ds.length; i++) {
    const e = ds.entry(i);
    const img = (await readImage(e.image)).data,
      msk = (await readMask(e.mask)).data;
    const seen = new Uint8Array(e.width * e.height);
    for (const b of bs) {
      b.regions!.forEach((r, k) => {
        if (r.item !== i) return;
        t.same([r.width, r.height], [Math.min(32, e.width), Math.min(32, e.height)]);
        for (let y = 0; y < r.height; y++)
          for (let x = 0; x < r.width; x++) {
            const s = (r.y + y) * e.width + r.x + x,
              o = k * 32 * 32 + y * 32 + x;
            if (b.images[o] !== img[s] || b.masks[o] !== msk[s]) t.fail(`${e.stem} pixel ${r.x + x},${r.y + y}`);
            seen[s] = 1;
          }
      });
    }
    t.ok(
      seen.every((v) => v === 1),
      `${e.stem}: all ${seen.length} pixels covered with their own values`,
    );
  }
  const again = await collect(new DataLoader(ds, { batchSize: 3, crop: 32, tiles: true, workers: 0, stats: { mean: [0.5], std: [0.25] } }));
  t.same(hex(again), hex(bs), 'tiles are deterministic');
  const r0 = (
    await collect(new DataLoader(ds, { batchSize: 2, crop: 32, tiles: true, workers: 0, shard: { rank: 0, worldSize: 2 } }))
  ).flatMap((b) => b.names);
  const r1 = (
    await collect(new DataLoader(ds, { batchSize: 2, crop: 32, tiles: true, workers: 0, shard: { rank: 1, worldSize: 2 } }))
  ).flatMap((b) => b.names);
  t.same([...r0, ...r1].sort(), [...tiles].sort(), 'tile shards are disjoint and complete');
  t.equal(r0.filter((n) => r1.includes(n)).length, 0);
});

t.test("the original call shape: DataLoader(root, 'images', 'masks', { batchSize })", async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['1', '2', '3', '4', '5'], 32, 32, 1);
  fs.renameSync(path.join(root, 'masks'), path.join(root, 'labels'));
  const loader = new DataLoader(root, 'images', 'labels', { batchSize: 3, workers: 0 });
  const bs = await collect(loader);
  t.same(
    bs.map((b) => [b.n, b.height, b.width, b.channels]),
    [
      [3, 32, 32, 1],
      [2, 32, 32, 1],
    ],
  );
  t.same(bs.flatMap((b) => b.names).sort(), ['1', '2', '3', '4', '5'], 'whole images, named by stem');
  t.ok(bs.every((b) => b.regions!.every((r) => r.x === 0 && r.y === 0 && r.width === 32 && r.height === 32)));
  t.ok(loader.dataset instanceof FolderDataset);
});

t.test('prefetch: the next batches are started while the current one is consumed', async (t) => {
  const loader = new DataLoader(rgbRoot, { batchSize: 1, crop: 32, workers: 0, prefetch: 2, shuffle: false });
  for await (const b of loader) {
    t.equal(b.index, 0);
    t.equal(loader.cacheStats.misses, 3, 'batch 0 plus two prefetched batches decoding');
    break;
  }
  await loader.close();
  await t.rejects(collect(loader), { code: 'ERR_PATHO_DATA', message: /closed/ });
});

t.test('option errors name the option and what was expected', async (t) => {
  const bad: [object, RegExp][] = [
    [{ crop: 250 }, /Expected a positive multiple of 16 \(2\^depth, depth 4\) for crop but received 250/],
    [{ crop: 96, depth: 6 }, /multiple of 64 .* for crop but received 96/],
    [{ crop: [32, 40] }, /crop\[1\] \(width\)/],
    [{ batchSize: 0 }, /for batchSize but received 0/],
    [{ shard: { rank: 2, worldSize: 2 } }, /for shard/],
    [{ batch_size: 3 }, /known option.*batch_size/],
    [{ tiles: true, crop: 32, augment: true }, /no augmentation in tiles/],
    [{ crop: { size: 32, foreground: 2 } }, /crop\.foreground/],
    [{ augment: { flip: { p: 3 } } }, /augment\.flip\.p but received 3/],
    [{ augment: { blur: true } }, /augment\.blur/],
    [{ cache: 'lots' }, /for cache/],
  ];
  for (const [o, re] of bad) t.throws(() => new DataLoader(rgbRoot, o), { code: 'ERR_PATHO_DATA', message: re }, JSON.stringify(o));
  await t.rejects(new DataLoader(rgbRoot, { inChannels: 1 }).ready(), { code: 'ERR_PATHO_DATA', message: /model's inChannels/ });
  await t.rejects(new DataLoader(rgbRoot, { crop: 32, stats: { mean: [0], std: [1] } }).ready(), {
    code: 'ERR_PATHO_DATA',
    message: /for stats/,
  });
  await t.rejects(
    new DataLoader(rgbRoot, {}).ready(),
    { code: 'ERR_PATHO_DATA', message: /48x40/ },
    'whole images must be multiples of 2^depth',
  );
  const mixed = t.testdir();
  await writeDataset(mixed, ['a'], 32, 32, 1);
  await writeDataset(path.join(mixed, 'x'), ['b'], 64, 32, 1);
  fs.renameSync(path.join(mixed, 'x/images/b.png'), path.join(mixed, 'images/b.png'));
  fs.renameSync(path.join(mixed, 'x/masks/b.png'), path.join(mixed, 'masks/b.png'));
  await t.rejects(new DataLoader(mixed, {}).ready(), { code: 'ERR_PATHO_DATA', message: /images of one size/ });
});

t.test('a file that breaks mid-epoch rejects the iteration with ERR_PATHO_DATA, no crash', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['a', 'b', 'c'], 64, 64, 3);
  const f = path.join(root, 'images/c.png');
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 300)); // header still parses
  const loader = new DataLoader(root, { batchSize: 1, crop: 32, workers: 0, shuffle: false, stats: { mean: [0, 0, 0], std: [1, 1, 1] } });
  const got: string[] = [];
  await t.rejects(
    (async () => {
      for await (const b of loader) got.push(b.names[0]);
    })(),
    { code: 'ERR_PATHO_DATA', files: [f] },
  );
  t.same(
    got.map((n) => n[0]),
    ['a', 'b'],
  );
  await t.rejects(
    new DataLoader(root, { crop: 32, verify: 'full' }).ready(),
    { code: 'ERR_PATHO_DATA', files: [f] },
    'verify: full finds it up front',
  );
});

t.test('real data: membrane and MoNuSeg', { skip: !fs.existsSync(SHARED_DATA) && 'no ../shared/data' }, async (t) => {
  const mem = new DataLoader(path.join(SHARED_DATA, 'membrane/train'), 'images', 'masks', {
    batchSize: 3,
    workers: 0,
    samplesPerEpoch: 3,
    statsSample: 2,
  });
  const [m] = await collect(mem);
  t.same([m.n, m.height, m.width, m.channels], [3, 512, 512, 1]);
  const fg = m.masks.reduce((s, v) => s + v, 0) / m.masks.length;
  t.ok(fg > 0.6 && fg < 0.9, `membrane foreground ${fg}`);
  const monu = new DataLoader(path.join(SHARED_DATA, 'monuseg2018/train'), {
    batchSize: 4,
    crop: 256,
    samplesPerEpoch: 4,
    statsSample: 2,
    workers: 0,
  });
  const [b] = await collect(monu);
  t.same([b.n, b.height, b.width, b.channels], [4, 256, 256, 3]);
  t.ok(b.masks.some((v) => v === 1) && b.masks.every((v) => v <= 1), '0/1 masks survive');
  t.ok(b.mean.every((v) => v > 0.3 && v < 0.8) && b.std.every((v) => v > 0.05 && v < 0.4), `H&E stats ${b.mean} ${b.std}`);
});
