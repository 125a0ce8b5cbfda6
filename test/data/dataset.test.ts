// FolderDataset: construction errors, ONE aggregated error for bad files (or skipInvalid with a
// warning and a count), channel checks, statistics against a float64 reference, trainValSplit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import sharp from 'sharp';
import { FolderDataset } from '../../lib/data/dataset';
import { trainValSplit } from '../../lib/data/split';
import { DataError } from '../../lib/errors';
import { noise, writeDataset, writeImage } from '../fixtures/data/make';

t.test('pairs, entries and decode of a good dataset', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['1', '2', '10'], 24, 16, 3);
  const ds = new FolderDataset(root);
  t.equal(ds.length, 3);
  t.throws(() => ds.channels, { code: 'ERR_PATHO_DATA', message: /ready/ });
  await ds.ready();
  t.equal(ds.channels, 3);
  t.same([ds.entry(2).stem, ds.entry(2).width, ds.entry(2).height], ['10', 24, 16]);
  const { image, mask } = await ds.read(0);
  t.equal(image.data.length, 24 * 16 * 3);
  t.ok(mask.data.every((v) => v === 0 || v === 1) && mask.data.some((v) => v === 1));
  t.doesNotThrow(() => ds.checkChannels(3));
  t.throws(() => ds.checkChannels(1), { code: 'ERR_PATHO_DATA', message: /Expected images with 1 channel.*holds 3-channel/ });
});

t.test('custom folder names and mask threshold', async (t) => {
  const root = t.testdir();
  await writeImage(path.join(root, 'x/a.png'), noise(16, 1), 4, 4, 1);
  await writeImage(
    path.join(root, 'y/a.png'),
    Uint8Array.from({ length: 16 }, (_, i) => i * 16),
    4,
    4,
    1,
  );
  const ds = await new FolderDataset(root, { images: 'x', masks: 'y', threshold: 100 }).ready();
  t.same(
    Array.from((await ds.read(0)).mask.data),
    Array.from({ length: 16 }, (_, i) => (i * 16 > 100 ? 1 : 0)),
  );
});

t.test('every bad-input case is reported in ONE error listing the files', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['ok1', 'ok2', 'ok3'], 16, 16, 3);
  await writeImage(path.join(root, 'images/size.png'), noise(16 * 16 * 3, 1), 16, 16, 3);
  await writeImage(path.join(root, 'masks/size.png'), noise(16 * 8, 1), 16, 8, 1);
  fs.writeFileSync(path.join(root, 'images/corrupt.png'), 'not an image');
  await writeImage(path.join(root, 'masks/corrupt.png'), noise(256, 1), 16, 16, 1);
  await sharp(noise(16 * 16 * 3, 2), { raw: { width: 16, height: 16, channels: 3 } })
    .toColourspace('cmyk')
    .jpeg()
    .toFile(path.join(root, 'images/cmyk.jpg'));
  await writeImage(path.join(root, 'masks/cmyk.png'), noise(256, 1), 16, 16, 1);
  await writeImage(path.join(root, 'images/grey.png'), noise(256, 3), 16, 16, 1);
  await writeImage(path.join(root, 'masks/grey.png'), noise(256, 1), 16, 16, 1);
  const ds = new FolderDataset(root);
  const err = await ds.ready().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DataError);
  const e = err as DataError;
  t.equal(e.code, 'ERR_PATHO_DATA');
  const rel = e.files.map((f) => path.relative(root, f)).sort();
  t.same(rel, ['images/cmyk.jpg', 'images/corrupt.png', 'images/grey.png', 'images/size.png', 'masks/size.png']);
  t.match(e.message, /size mismatch: image 16x16, mask 16x8/);
  t.match(e.message, /unsupported channel count 4/);
  t.match(e.message, /grey\.png: has 1 channel\(s\) but most images have 3/);
  t.match(e.message, /corrupt\.png: unreadable or corrupt/);
});

t.test('unpaired files fail in the constructor with every stray listed', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['a', 'b'], 16, 16, 1);
  await writeImage(path.join(root, 'images/lonely.png'), noise(256, 1), 16, 16, 1);
  await writeImage(path.join(root, 'masks/orphan.png'), noise(256, 1), 16, 16, 1);
  t.throws(() => new FolderDataset(root), {
    code: 'ERR_PATHO_DATA',
    message: /lonely\.png: image without a mask[\s\S]*orphan\.png: mask without an image/,
  });
  const empty = t.testdir({ images: {}, masks: {} });
  t.throws(() => new FolderDataset(empty), { code: 'ERR_PATHO_DATA', message: /found none/ });
  t.throws(() => new FolderDataset(path.join(empty, 'missing')), { code: 'ERR_PATHO_DATA', message: /missing/ });
});

t.test('skipInvalid drops bad pairs with one warning and a count', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['a', 'b', 'c'], 16, 16, 1);
  await writeImage(path.join(root, 'images/lonely.png'), noise(256, 1), 16, 16, 1);
  fs.writeFileSync(path.join(root, 'masks/b.png'), 'garbage');
  const warnings: string[] = [];
  const onWarn = (w: Error): void => {
    warnings.push(w.message);
  };
  process.on('warning', onWarn);
  const ds = new FolderDataset(root, { skipInvalid: true });
  t.equal(ds.length, 3);
  await ds.ready();
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarn);
  t.equal(ds.length, 2);
  t.same([ds.entry(0).stem, ds.entry(1).stem], ['a', 'c']);
  t.equal(ds.skipped.length, 2);
  t.equal(warnings.length, 2, 'one warning for pairing, one for file checks');
  t.match(warnings[0], /skipped 1 invalid file/);
});

t.test('verify: full finds truncated files that a header probe accepts', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['a', 'b'], 64, 64, 3);
  const f = path.join(root, 'images/b.png');
  fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 300));
  await t.resolves(new FolderDataset(root).ready(), 'header probe passes');
  await t.rejects(new FolderDataset(root, { verify: 'full' }).ready(), { code: 'ERR_PATHO_DATA', files: [f] });
});

t.test('stats: per-channel mean/std in [0,1] units vs a float64 reference; given stats are checked', async (t) => {
  const root = t.testdir();
  await writeDataset(root, ['a', 'b', 'c'], 20, 12, 3);
  const ds = await new FolderDataset(root).ready();
  const s = await ds.stats();
  const sum = [0, 0, 0],
    sq = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < 3; i++) {
    const d = (await ds.read(i)).image.data;
    for (let p = 0; p < d.length; p += 3)
      for (let c = 0; c < 3; c++) {
        const v = d[p + c] / 255;
        sum[c] += v;
        sq[c] += v * v;
      }
    n += d.length / 3;
  }
  for (let c = 0; c < 3; c++) {
    const m = sum[c] / n;
    t.ok(Math.abs(s.mean[c] - m) < 1e-9, `mean[${c}]`);
    t.ok(Math.abs(s.std[c] - Math.sqrt(sq[c] / n - m * m)) < 1e-9, `std[${c}]`);
  }
  const given = await new FolderDataset(root, { stats: { mean: [0.1, 0.2, 0.3], std: [1, 1, 1] } }).stats();
  t.same(given, { mean: [0.1, 0.2, 0.3], std: [1, 1, 1] });
  await t.rejects(new FolderDataset(root, { stats: { mean: [0.5], std: [1] } }).stats(), {
    code: 'ERR_PATHO_DATA',
    message: /Expected \{ mean, std \} with 3/,
  });
});

t.test('trainValSplit: disjoint, complete, seeded; val uses the training statistics', async (t) => {
  const root = t.testdir();
  await writeDataset(
    root,
    Array.from({ length: 10 }, (_, i) => `s${i}`),
    16,
    16,
    1,
  );
  const ds = new FolderDataset(root);
  const { train, val } = trainValSplit(ds, 0.3, 5);
  t.equal(val.length, 3);
  t.equal(train.length, 7);
  t.same(
    [...train.pairIndices, ...val.pairIndices].sort((a, b) => a - b),
    Array.from({ length: 10 }, (_, i) => i),
  );
  t.same(trainValSplit(ds, 0.3, 5).val.pairIndices, val.pairIndices, 'same seed, same split');
  t.not(trainValSplit(ds, 0.3, 6).val.pairIndices.join(), val.pairIndices.join(), 'other seed, other split');
  await train.ready();
  await val.ready();
  t.same(await val.stats(), await train.stats());
  const ref = await (await new FolderDataset(root).ready()).subset([...train.pairIndices]).stats();
  t.same(await train.stats(), ref, 'train stats come from the training images');
  t.throws(() => trainValSplit(ds, 1.5, 0), { code: 'ERR_PATHO_DATA', message: /fraction/ });
});
