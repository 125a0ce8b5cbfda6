// openSlide on synthetic pyramids (deflate: exact pixels; JPEG: within codec error), the real
// Aperio SVS, and OpenSlide when it is installed: levels, µm per pixel, regions in level-0
// coordinates, edges padded white, tile-by-tile reading, resampled reads and thumbnails.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { openSlide } from '../../lib/slide/open';
import { openSlideInfo } from '../../lib/slide/openslide';
import { readTiffInfo } from '../../lib/slide/tiff';
import { NUCLEUS, scribble, tileLocations, writeSlide, type SlideSpec } from './fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-slide-open-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const svs = path.resolve(__dirname, '../../../shared/data/wsi/CMU-1-Small-Region.svs');
const haveOpenSlide = openSlideInfo().available;

const spec: SlideSpec = {
  width: 1500,
  height: 1100,
  mpp: 0.25,
  tile: 256,
  tissue: [{ cx: 700, cy: 550, rx: 600, ry: 420 }],
  disks: [
    { x: 300, y: 300, r: 60 },
    { x: 1000, y: 700, r: 120 },
    { x: 1400, y: 1000, r: 50 },
  ],
};

function crop(rgb: Uint8Array, W: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let j = 0; j < h; j++) out.set(rgb.subarray(((y + j) * W + x) * 3, ((y + j) * W + x + w) * 3), j * w * 3);
  return out;
}
const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

t.test('deflate pyramid: levels, mpp, exact level-0 regions, white outside', async (t) => {
  const file = path.join(tmp, 'deflate.tif');
  const { rgb } = await writeSlide(file, { ...spec, compression: 'deflate' });
  using slide = await openSlide(file);
  t.equal(slide.reader, 'sharp');
  t.equal(slide.vendor, 'generic-tiff');
  t.equal(slide.width, 1500);
  t.equal(slide.height, 1100);
  t.ok(slide.levels.length >= 3, `${slide.levels.length} levels`);
  t.same(
    slide.levels.slice(0, 3).map((l) => Math.round(l.downsample)),
    [1, 2, 4],
  );
  t.equal(slide.levels[0].tileWidth, 256);
  t.ok(Math.abs(slide.mpp! - 0.25) < 1e-6, `mpp ${slide.mpp}`);
  t.match(slide.mppSource, /TIFF XResolution \(cm\)/);
  t.equal(slide.properties['tiff.ResolutionUnit'], 'centimeter');
  const r = await slide.readRegion({ x: 230, y: 250, width: 300, height: 200 });
  t.equal(r.data.length, 300 * 200 * 3);
  t.equal(meanAbsDiff(r.data, crop(rgb, 1500, 230, 250, 300, 200)), 0, 'lossless tiles read back exactly');
  // a region over the bottom-right corner: the part outside the slide is white
  const edge = await slide.readRegion({ x: 1400, y: 1000, width: 200, height: 150 });
  t.equal(meanAbsDiff(crop(edge.data, 200, 0, 0, 100, 100), crop(rgb, 1500, 1400, 1000, 100, 100)), 0);
  t.ok(
    edge.data.subarray((120 * 200 + 150) * 3, (120 * 200 + 150) * 3 + 3).every((v) => v === 255),
    'outside is white',
  );
  // level 1 at a level-0 position: the disk at (1000, 700) sits at level-1 pixel (500, 350)
  const l1 = await slide.readRegion({ level: 1, x: 1000 - 20, y: 700 - 20, width: 20, height: 20 });
  const c = l1.data.subarray((10 * 20 + 10) * 3, (10 * 20 + 10) * 3 + 3);
  t.ok(Math.abs(c[0] - NUCLEUS[0]) < 12 && Math.abs(c[2] - NUCLEUS[2]) < 12, `level 1 disk colour ${[...c]}`);
  await t.rejects(
    slide.readRegion({ level: 9, x: 0, y: 0, width: 4, height: 4 }),
    /Expected a level from 0 to \d+ for .*deflate.tif but received 9/,
  );
  await t.rejects(slide.readRegion({ x: 0, y: 0, width: 0, height: 4 }), /positive integer for width/);
});

t.test('resampled reads pick the nearest finer level; thumbnails fit', async (t) => {
  const file = path.join(tmp, 'jpeg.tif');
  const { rgb } = await writeSlide(file, { ...spec, compression: 'jpeg' });
  using slide = await openSlide(file);
  const r0 = await slide.readRegion({ x: 600, y: 300, width: 256, height: 256 });
  t.ok(meanAbsDiff(r0.data, crop(rgb, 1500, 600, 300, 256, 256)) < 3, 'JPEG tiles within codec error');
  t.equal(slide.levelFor(3), 1, 'downsample 3 reads level 1 (2x)');
  t.equal(slide.levelFor(4), 2);
  t.equal(slide.levelFor(0.5), 0);
  const s = await slide.readScaled({ x: 900, y: 600, width: 300, height: 300, outWidth: 100, outHeight: 100 });
  t.equal(s.width, 100);
  // centre of the 3x-downsampled window lies inside the r=120 disk at (1000, 700) -> purple
  const p = s.data.subarray((33 * 100 + 33) * 3, (33 * 100 + 33) * 3 + 3);
  t.ok(Math.abs(p[0] - NUCLEUS[0]) < 15 && Math.abs(p[1] - NUCLEUS[1]) < 15, `scaled pixel ${[...p]}`);
  const th = await slide.thumbnail(300);
  t.same([th.width, th.height], [300, 220]);
  t.ok(
    th.data.some((v) => v < 120),
    'the disks show in the thumbnail',
  );
});

t.test('only the tiles a region needs are decoded', async (t) => {
  const file = path.join(tmp, 'broken-tile.tif');
  await writeSlide(file, { ...spec, compression: 'deflate' });
  const tiles = tileLocations(file, 0);
  const last = tiles[tiles.length - 1]; // bottom-right tile of level 0
  scribble(file, last.offset, last.bytes);
  using slide = await openSlide(file);
  const ok = await slide.readRegion({ x: 0, y: 0, width: 300, height: 300 });
  t.equal(ok.width, 300, 'a region far from the damaged tile reads');
  await t.rejects(slide.readRegion({ x: 1400, y: 1000, width: 50, height: 50 }), {
    code: 'ERR_PATHO_SLIDE',
    message: /broken-tile.tif: Expected to read level 0 at \(1400, 1000\)/,
  });
});

t.test(
  'the real Aperio SVS (one level, JPEG tiles, MPP 0.499, 20x)',
  { skip: !fs.existsSync(svs) && 'shared/data/wsi is missing' },
  async (t) => {
    using slide = await openSlide(svs);
    t.equal(slide.vendor, 'aperio');
    t.equal(slide.levels.length, 1, 'the thumbnail, label and macro pages are not levels');
    t.same([slide.width, slide.height], [2220, 2967]);
    t.equal(slide.levels[0].tileWidth, 240);
    t.equal(slide.mpp, 0.499);
    t.equal(slide.mppSource, 'Aperio MPP');
    t.equal(slide.objectivePower, 20);
    t.equal(slide.properties['aperio.AppMag'], '20');
    const r = await slide.readRegion({ x: 1000, y: 1500, width: 256, height: 256 });
    const mean = r.data.reduce((a, b) => a + b, 0) / r.data.length;
    t.ok(mean > 60 && mean < 240, `H&E pixels (mean ${mean.toFixed(1)})`);
    if (haveOpenSlide) {
      using os2 = await openSlide(svs, { reader: 'openslide' });
      t.equal(os2.vendor, 'aperio');
      t.equal(os2.mpp, 0.499);
      const o = await os2.readRegion({ x: 1000, y: 1500, width: 256, height: 256 });
      t.ok(
        meanAbsDiff(o.data, r.data) < 2.5,
        `sharp and OpenSlide decode the same tiles (mean |diff| ${meanAbsDiff(o.data, r.data).toFixed(2)})`,
      );
    }
  },
);

t.test('OpenSlide reads the synthetic pyramid like sharp does', { skip: !haveOpenSlide && 'OpenSlide is not installed' }, async (t) => {
  const file = path.join(tmp, 'deflate-os.tif');
  const { rgb } = await writeSlide(file, { ...spec, compression: 'deflate' });
  using slide = await openSlide(file, { reader: 'openslide' });
  t.equal(slide.reader, 'openslide');
  t.equal(slide.vendor, 'generic-tiff');
  t.same(
    slide.levels.map((l) => [l.width, l.height]),
    readTiffInfo(file).pages.map((p) => [p.width, p.height]),
  );
  t.ok(Math.abs(slide.mpp! - 0.25) < 1e-6, `mpp from the resolution tags (${slide.mpp}, ${slide.mppSource})`);
  const r = await slide.readRegion({ x: 230, y: 250, width: 300, height: 200 });
  t.equal(meanAbsDiff(r.data, crop(rgb, 1500, 230, 250, 300, 200)), 0);
  const edge = await slide.readRegion({ x: 1450, y: 1050, width: 100, height: 100 });
  t.ok(
    edge.data.subarray((90 * 100 + 90) * 3, (90 * 100 + 90) * 3 + 3).every((v) => v === 255),
    'outside is white',
  );
  slide.close();
  slide.close();
  await t.rejects(slide.readRegion({ x: 0, y: 0, width: 4, height: 4 }), { code: 'ERR_PATHO_DISPOSED' });
});
