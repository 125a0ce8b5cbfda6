// Instance label TIFFs: 16-bit through libvips while the labels fit, else the 32-bit writer; both read
// back by libvips (sharp) with every label and the resolution (pixels per cm from the mpp) intact.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { writeLabelTiff } from '../../lib/predict/label-tiff';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-tiff-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function readBack(file: string): Promise<{ depth: string; values: number[]; density?: number }> {
  const meta = await sharp(file).metadata();
  const { data } = await sharp(file)
    .toColourspace(meta.space)
    .raw({ depth: meta.depth as 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const view =
    meta.depth === 'uint'
      ? new Uint32Array(data.buffer, data.byteOffset, data.length / 4)
      : new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  return { depth: meta.depth ?? '', values: [...view], ...(meta.density !== undefined ? { density: meta.density } : {}) };
}

// 70 rows x 3 columns: more than one 64-row strip, labels past 65535 in the last rows
const W = 3,
  H = 70;
const labels = Int32Array.from({ length: W * H }, (_, i) => (i % 5 === 0 ? 0 : i * 1000 + 7));

t.test('32-bit labels: every value kept, strips and resolution readable by libvips', async (t) => {
  const file = path.join(tmp, 'big.tif');
  t.equal(await writeLabelTiff(file, labels, W, H, 0.25), 32);
  const r = await readBack(file);
  t.equal(r.depth, 'uint');
  t.same(r.values, [...labels]);
  // 0.25 µm per pixel = 40000 pixels per cm = 101600 per inch (sharp reports DPI)
  t.ok(Math.abs(r.density! - 101600) < 1, `density ${r.density}`);
  t.same(
    fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary left',
  );
});

t.test('labels up to 65535: a 16-bit TIFF', async (t) => {
  const small = labels.map((v) => v % 65536);
  small[1] = 65535;
  const file = path.join(tmp, 'small.tif');
  t.equal(await writeLabelTiff(file, small, W, H, 0.5), 16);
  const r = await readBack(file);
  t.equal(r.depth, 'ushort');
  t.same(r.values, [...small]);
  t.ok(Math.abs(r.density! - 50800) < 1, `density ${r.density}`);
});
