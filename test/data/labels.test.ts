// Multi-class masks through the data pipeline: index masks (8/16-bit, values mapped through the class
// list), colour and palette masks through classes.json, instance labels turned into the boundary
// recipe's classes (hand-worked, and find_boundaries(mode='inner') for a rim of 1), the errors that
// name the file, the value and the class list, the scan with per-class counts, and augmentation that
// keeps labels labels (nearest neighbour) through the DataLoader to the device.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { classesFromNames, parseClasses } from '../../lib/classes/classes';
import { DataLoader, FolderDataset } from '../../lib/data';
import { readLabels, scanLabels } from '../../lib/data/labels';
import { maskRowCounts, pickForeground, renderSample } from '../../lib/data/sample';
import { uploadLabels } from '../../lib/data/upload';
import { resolveAugment } from '../../lib/data/augment';
import { instancesToBoundaryClasses } from '../../lib/objects/boundary';
import { Rng } from '../../lib/rng';
import { writeImage } from '../fixtures/data/make';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-labels-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const abc = classesFromNames(['background', 'tumour', 'stroma']);

t.test('index masks: 8-bit values 0..K-1, 16-bit values through classes.json, ignore value to 255', async (t) => {
  const f8 = path.join(tmp, 'i8.png');
  await writeImage(f8, Uint8Array.from([0, 1, 2, 1, 0, 2]), 3, 2, 1);
  t.same(Array.from((await readLabels(f8, { classes: abc })).data), [0, 1, 2, 1, 0, 2]);
  const f16 = path.join(tmp, 'i16.png');
  await writeImage(f16, Uint16Array.from([0, 1000, 2000, 65535, 1000, 0]), 3, 2, 1);
  const list = parseClasses(
    {
      classes: [
        { name: 'bg', value: 0 },
        { name: 'a', value: 2000 },
        { name: 'b', value: 1000 },
      ],
      ignore: { value: 65535 },
    },
    'classes.json',
  );
  const l = await readLabels(f16, { classes: list });
  t.same(Array.from(l.data), [0, 2, 1, 255, 2, 0], 'class i is the i-th entry, whatever its value; the ignore value becomes 255');
  t.same([l.width, l.height, l.channels], [3, 2, 1]);
});

t.test('colour masks through classes.json: RGB and palette PNGs', async (t) => {
  const list = parseClasses(
    {
      classes: [
        { name: 'bg', rgb: '#000000' },
        { name: 'tumour', rgb: [255, 0, 0] },
        { name: 'stroma', rgb: '#00ff00' },
      ],
    },
    'classes.json',
  );
  const px = [0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 0, 0];
  const rgb = path.join(tmp, 'rgb.png');
  await writeImage(rgb, Uint8Array.from(px), 2, 2, 3);
  t.same(Array.from((await readLabels(rgb, { classes: list })).data), [0, 1, 2, 1]);
  const pal = path.join(tmp, 'palette.png');
  await sharp(Uint8Array.from(px), { raw: { width: 2, height: 2, channels: 3 } })
    .png({ palette: true, colours: 4, dither: 0 })
    .toFile(pal);
  t.equal((await sharp(pal).metadata()).isPalette, true, 'the file is a palette PNG');
  t.same(Array.from((await readLabels(pal, { classes: list })).data), [0, 1, 2, 1], 'palette indices decode to their colours');
});

t.test(
  'a value outside the class list, or a class list that does not fit the masks: one error naming file, value and classes',
  async (t) => {
    const f = path.join(tmp, 'bad.png');
    await writeImage(f, Uint8Array.from([0, 1, 7, 2]), 2, 2, 1);
    await t.rejects(readLabels(f, { classes: abc }), {
      code: 'ERR_PATHO_DATA',
      message: new RegExp(
        `${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: mask value 7 at pixel \\(0, 1\\) is not in the class list \\(background=0, tumour=1, stroma=2 from --classes\\)`,
      ),
    });
    const rgbList = parseClasses(
      {
        classes: [
          { name: 'bg', rgb: '#000000' },
          { name: 'x', rgb: '#ff0000' },
        ],
      },
      '/data/classes.json',
    );
    await t.rejects(readLabels(f, { classes: rgbList }), {
      code: 'ERR_PATHO_DATA',
      message: /a 1-channel mask but the class list gives mask colours \(bg=#000000, x=#ff0000\)/,
    });
    const colour = path.join(tmp, 'colour.png');
    await writeImage(colour, Uint8Array.from([0, 0, 0, 255, 0, 0]), 2, 1, 3);
    await t.rejects(readLabels(colour, { classes: abc }), {
      code: 'ERR_PATHO_DATA',
      message: /a colour mask .* but the class list gives mask values \(background=0, tumour=1, stroma=2\)/,
    });
  },
);

t.test('the scan counts pixels per class and lists every mask that does not fit', async (t) => {
  const good = [path.join(tmp, 's0.png'), path.join(tmp, 's1.png')];
  await writeImage(good[0], Uint8Array.from([0, 0, 1, 2]), 2, 2, 1);
  await writeImage(good[1], Uint8Array.from([2, 2, 2, 0]), 2, 2, 1);
  t.same(Array.from(await scanLabels(good, { classes: abc })), [3, 1, 4]);
  const bad = [path.join(tmp, 'b0.png'), path.join(tmp, 'b1.png')];
  await writeImage(bad[0], Uint8Array.from([0, 3, 0, 0]), 2, 2, 1);
  await writeImage(bad[1], Uint8Array.from([0, 0, 0, 9]), 2, 2, 1);
  const err = await scanLabels([...good, ...bad], { classes: abc }).catch((e: Error) => e);
  t.match(err, { code: 'ERR_PATHO_DATA' });
  const msg = (err as Error).message;
  t.match(
    msg,
    /Expected masks whose values are in the class list \(background=0, tumour=1, stroma=2 from --classes\) but 2 of 4 masks are not/,
  );
  t.match(msg, new RegExp(`${path.basename(bad[0])}: value 3 is not a class`));
  t.match(msg, new RegExp(`${path.basename(bad[1])}: value 9 is not a class`));
});

t.test('instance labels -> background / interior / boundary (hand-worked; rim 1 = find_boundaries inner)', async (t) => {
  const a = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 1, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0];
  t.same(
    Array.from(instancesToBoundaryClasses(a, 7, 5, 1)),
    [0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 0, 0, 2, 1, 2, 2, 2, 0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0],
    'skimage.segmentation.find_boundaries(a, connectivity=1, mode="inner") gives the same',
  );
  // a 7x7 square in a 9x9 image: rim 1 leaves a 5x5 interior, rim 2 a 3x3 one
  const sq = new Uint16Array(81);
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) sq[y * 9 + x] = 5;
  const count = (c: Uint8Array, v: number) => c.filter((x) => x === v).length;
  t.same(
    [1, 2, 3].map((rim) => count(instancesToBoundaryClasses(sq, 9, 9, rim), 1)),
    [25, 9, 1],
  );
  t.same(
    Array.from(instancesToBoundaryClasses(new Uint8Array(9).fill(4), 3, 3, 2)),
    new Array(9).fill(1),
    'the image border is no boundary',
  );
  t.throws(() => instancesToBoundaryClasses(sq, 9, 9, 0), { message: /Expected an integer from 1 to 64 \(pixels\)/ });
});

t.test('instance masks read with fromInstances; a binary or single-valued one is refused', async (t) => {
  const inst = path.join(tmp, 'inst.png');
  const sq = new Uint16Array(81);
  for (let y = 1; y < 8; y++) for (let x = 1; x < 8; x++) sq[y * 9 + x] = 300;
  await writeImage(inst, sq, 9, 9, 1);
  const classes = classesFromNames(['background', 'interior', 'boundary']);
  const l = await readLabels(inst, { classes, fromInstances: { rim: 1 } });
  t.same(Array.from(l.data), Array.from(instancesToBoundaryClasses(sq, 9, 9, 1)));
  const binary = path.join(tmp, 'binary.png');
  await writeImage(binary, Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 1, 1]), 9, 1, 1);
  await t.rejects(readLabels(binary, { classes, fromInstances: { rim: 1 } }), {
    code: 'ERR_PATHO_DATA',
    message: /holds only 0 and 1, in 2 separate regions: a binary mask\?/,
  });
  const flat = path.join(tmp, 'flat.png');
  await writeImage(flat, new Uint8Array(9).fill(3), 3, 3, 1);
  await t.rejects(readLabels(flat, { classes, fromInstances: { rim: 1 } }), {
    code: 'ERR_PATHO_DATA',
    message: /instance ground truth holds the single value 3 in every pixel/,
  });
  const empty = path.join(tmp, 'empty.png');
  await writeImage(empty, new Uint8Array(9), 3, 3, 1);
  t.same(
    Array.from((await readLabels(empty, { classes, fromInstances: { rim: 1 } })).data),
    new Array(9).fill(0),
    'a tile without objects is fine',
  );
});

t.test('crop picking and augmentation keep labels labels', async (t) => {
  t.same(
    Array.from(maskRowCounts(Uint8Array.from([0, 2, 1, 255, 0, 0, 3, 0]), 4)),
    [2, 1],
    'classes > 0 count once each, 255 (ignored) not',
  );
  const m = Uint8Array.from([255, 255, 0, 2]);
  for (let s = 0; s < 20; s++) t.equal(pickForeground(m, 2, new Rng(s)), 3, 'only the labelled pixel is a foreground centre');
  const W = 48,
    H = 48;
  const mask = new Uint8Array(W * H);
  for (let i = 0; i < mask.length; i++) mask[i] = [0, 1, 2, 255][((i % W) >> 3) % 4];
  const image = new Uint8Array(W * H * 3).map((_, i) => (i * 7) & 255);
  const augment = resolveAugment(
    { flip: { p: 1 }, rotate90: { p: 1 }, affine: { p: 1, degrees: 30, scale: 0.2 }, elastic: { p: 1, sigma: 6, spacing: 8 } },
    true,
  )!;
  const seen = new Set<number>();
  for (let seed = 0; seed < 10; seed++) {
    const r = renderSample({ image, mask, width: W, height: H, channels: 3 }, { height: 32, width: 32, seed, foreground: 0.5, augment });
    for (const v of r.mask) seen.add(v);
  }
  t.same(
    [...seen].sort((a, b) => a - b),
    [0, 1, 2, 255],
    'warped crops hold only the source labels (no interpolated values)',
  );
});

t.test('a FolderDataset with labels feeds the DataLoader, and uploadLabels puts float class indices on the device', async (t) => {
  const dir = path.join(tmp, 'set');
  for (let i = 0; i < 3; i++) {
    await writeImage(
      path.join(dir, 'images', `${i}.png`),
      new Uint8Array(32 * 32 * 3).map((_, k) => (k * (i + 3)) & 255),
      32,
      32,
      3,
    );
    await writeImage(
      path.join(dir, 'masks', `${i}.png`),
      new Uint8Array(32 * 32).map((_, k) => (k >> 4) % 3),
      32,
      32,
      1,
    );
  }
  const ds = new FolderDataset(dir, { labels: { classes: abc } });
  const loader = new DataLoader(ds, { batchSize: 3, crop: 16, workers: 0, depth: 2, seed: 4 });
  let batches = 0;
  for await (const b of loader) {
    batches++;
    t.ok(
      b.masks.every((v) => v <= 2),
      'batch masks are class labels 0..2',
    );
    t.ok(new Set(b.masks).size === 3, 'all three classes appear');
    const y = uploadLabels(b, 'cpu');
    t.same(y.shape, [3, 16, 16]);
    t.same(Array.from(await y.read()), Array.from(b.masks), 'float32 labels equal the bytes');
    y.dispose();
  }
  t.equal(batches, 1);
  await loader.close();
});
