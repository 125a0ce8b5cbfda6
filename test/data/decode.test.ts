// Decoding through sharp: 8/16-bit, grey/RGB/RGBA, alpha dropped, masks binarised (0/255, 0/1,
// threshold), real data from ../shared/data, and one clear error for unsupported or corrupt files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import sharp from 'sharp';
import { probeImage, readImage, readMask } from '../../lib/data/decode';
import { noise, SHARED_DATA, writeImage } from '../fixtures/data/make';

t.test('8-bit grey, RGB and RGBA decode to the written pixels; alpha is dropped', async (t) => {
  const dir = t.testdir();
  const w = 7,
    h = 5;
  const grey = noise(w * h, 1),
    rgb = noise(w * h * 3, 2),
    rgba = noise(w * h * 4, 3),
    ga = noise(w * h * 2, 4);
  await writeImage(path.join(dir, 'g.png'), grey, w, h, 1);
  await writeImage(path.join(dir, 'c.tif'), rgb, w, h, 3);
  await writeImage(path.join(dir, 'a.png'), rgba, w, h, 4);
  await writeImage(path.join(dir, 'ga.png'), ga, w, h, 2);
  const g = await readImage(path.join(dir, 'g.png'));
  t.same([g.width, g.height, g.channels], [w, h, 1]);
  t.same(Array.from(g.data), Array.from(grey));
  const c = await readImage(path.join(dir, 'c.tif'));
  t.same([c.channels, c.data.length], [3, w * h * 3]);
  t.same(Array.from(c.data), Array.from(rgb));
  const a = await readImage(path.join(dir, 'a.png'));
  t.equal(a.channels, 3, 'RGBA -> RGB');
  t.same(
    Array.from(a.data),
    Array.from(rgba).filter((_, i) => i % 4 !== 3),
  );
  const gg = await readImage(path.join(dir, 'ga.png'));
  t.equal(gg.channels, 1, 'grey+alpha -> grey');
  t.same(
    Array.from(gg.data),
    Array.from(ga).filter((_, i) => i % 2 === 0),
  );
  t.same(await probeImage(path.join(dir, 'a.png')), { width: w, height: h, channels: 3, bitDepth: 8, hasAlpha: true, space: 'srgb' });
});

t.test('16-bit grey and RGB are scaled to 8 bits (v * 255 / 65535, rounded)', async (t) => {
  const dir = t.testdir();
  const w = 6,
    h = 4;
  const g16 = Uint16Array.from({ length: w * h }, (_, i) => i * 2731);
  const c16 = Uint16Array.from({ length: w * h * 3 }, (_, i) => (i * 911) % 65536);
  await writeImage(path.join(dir, 'g16.png'), g16, w, h, 1);
  await writeImage(path.join(dir, 'c16.tif'), c16, w, h, 3);
  t.equal((await probeImage(path.join(dir, 'g16.png'))).bitDepth, 16);
  const g = await readImage(path.join(dir, 'g16.png'));
  t.same(
    Array.from(g.data),
    Array.from(g16, (v) => Math.round((v * 255) / 65535)),
  );
  const c = await readImage(path.join(dir, 'c16.tif'));
  t.equal(c.channels, 3);
  t.same(
    Array.from(c.data),
    Array.from(c16, (v) => Math.round((v * 255) / 65535)),
  );
});

t.test('masks: 0/255 and 0/1 both binarise to 0/1 with > 0; threshold; 16-bit 0/1 mask; RGB mask', async (t) => {
  const dir = t.testdir();
  const w = 8,
    h = 3;
  const bits = noise(w * h, 9, 0, 1);
  await writeImage(
    path.join(dir, 'm255.png'),
    bits.map((v) => v * 255),
    w,
    h,
    1,
  );
  await writeImage(path.join(dir, 'm01.png'), bits, w, h, 1);
  await writeImage(path.join(dir, 'm16.png'), Uint16Array.from(bits), w, h, 1);
  const rgb = new Uint8Array(w * h * 3);
  bits.forEach((v, i) => {
    if (v) rgb[i * 3 + (i % 3)] = 200;
  });
  await writeImage(path.join(dir, 'mrgb.png'), rgb, w, h, 3);
  for (const f of ['m255.png', 'm01.png', 'm16.png', 'mrgb.png']) {
    const m = await readMask(path.join(dir, f));
    t.same(Array.from(m.data), Array.from(bits), f);
  }
  const levels = Uint8Array.from({ length: w * h }, (_, i) => i * 10);
  await writeImage(path.join(dir, 'levels.png'), levels, w, h, 1);
  const m = await readMask(path.join(dir, 'levels.png'), 127);
  t.same(
    Array.from(m.data),
    Array.from(levels, (v) => (v > 127 ? 1 : 0)),
  );
});

t.test(
  'real data: membrane (grey PNG, 0/255 masks) and MoNuSeg (RGB TIFF, 0/1 masks)',
  { skip: !fs.existsSync(SHARED_DATA) && 'no ../shared/data' },
  async (t) => {
    const mi = await readImage(path.join(SHARED_DATA, 'membrane/train/images/0.png'));
    t.same([mi.width, mi.height, mi.channels], [512, 512, 1]);
    const mm = await readMask(path.join(SHARED_DATA, 'membrane/train/masks/0.png'));
    const frac = mm.data.reduce((s, v) => s + v, 0) / mm.data.length;
    t.ok(mm.data.every((v) => v === 0 || v === 1));
    t.ok(frac > 0.6 && frac < 0.9, `membrane foreground ${frac} (README: ~78%)`);
    const stem = 'TCGA-18-5592-01Z-00-DX1';
    const ti = await readImage(path.join(SHARED_DATA, `monuseg2018/train/images/${stem}.tif`));
    t.same([ti.width, ti.height, ti.channels], [1000, 1000, 3]);
    const tm = await readMask(path.join(SHARED_DATA, `monuseg2018/train/masks/${stem}.png`));
    const f2 = tm.data.reduce((s, v) => s + v, 0) / tm.data.length;
    t.ok(f2 > 0.05 && f2 < 0.5, `MoNuSeg foreground ${f2} (README: ~22%): 0/1 masks are not lost`);
    // Independent check of the raw mask bytes: sharp's own greyscale raw output, > 0.
    const raw = await sharp(path.join(SHARED_DATA, `monuseg2018/train/masks/${stem}.png`))
      .toColourspace('b-w')
      .raw()
      .toBuffer();
    t.same(Buffer.from(tm.data).equals(Buffer.from(raw.map((v) => (v > 0 ? 1 : 0)))), true);
  },
);

t.test('unsupported and corrupt files give ERR_PATHO_DATA naming the file', async (t) => {
  const dir = t.testdir({ 'garbage.png': 'this is not a png' });
  const cmyk = path.join(dir, 'cmyk.jpg');
  await sharp(noise(8 * 8 * 3, 1), { raw: { width: 8, height: 8, channels: 3 } })
    .toColourspace('cmyk')
    .jpeg()
    .toFile(cmyk);
  await t.rejects(readImage(cmyk), { code: 'ERR_PATHO_DATA', message: /cmyk\.jpg.*4 channels/s, files: [cmyk] });
  const garbage = path.join(dir, 'garbage.png');
  await t.rejects(readImage(garbage), { code: 'ERR_PATHO_DATA', files: [garbage] });
  const good = path.join(dir, 'good.png');
  await writeImage(good, noise(64 * 64 * 3, 2), 64, 64, 3);
  const trunc = path.join(dir, 'trunc.png');
  fs.writeFileSync(trunc, fs.readFileSync(good).subarray(0, 200));
  await t.rejects(readImage(trunc), { code: 'ERR_PATHO_DATA', message: /trunc\.png/, files: [trunc] });
  await t.rejects(readMask(path.join(dir, 'missing.png')), { code: 'ERR_PATHO_DATA', message: /missing\.png/ });
});
