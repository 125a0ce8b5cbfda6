// PNG plots (lib/plot.ts): the pictures hold the data where the axes say, at 2x density.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { plotDiceCurve, plotTrainingCurves } from '../lib/plot';

const dir = t.testdir({});

async function rgb(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

// rows (in the PNG) of pixels close to a colour, within x range [x0, x1)
function rowsOf(img: { data: Buffer; width: number; height: number }, color: [number, number, number], x0: number, x1: number): number[] {
  const rows = new Set<number>();
  for (let y = 0; y < img.height; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * img.width + x) * 3;
      if (Math.abs(img.data[i] - color[0]) + Math.abs(img.data[i + 1] - color[1]) + Math.abs(img.data[i + 2] - color[2]) < 30) rows.add(y);
    }
  }
  return [...rows].sort((a, b) => a - b);
}

t.test('a flat Dice curve at 0.5 is drawn on the y = 0.5 row', async (t) => {
  const file = path.join(dir, 'dice.png');
  await plotDiceCurve(
    [0.1, 0.3, 0.5, 0.7, 0.9].map((threshold) => ({ threshold, dice: 0.5 })),
    file,
  );
  const img = await rgb(file);
  // 144 dpi = 2x the SVG's 62 + 420 + 16 by 34 + 240 + 46 px
  t.same([img.width, img.height], [996, 640]);
  // plot area x 62..482 (legend at the right end excluded), y 34..274: 0.5 sits at 34 + 120 = 154, 308 in the PNG
  const rows = rowsOf(img, [0x4c, 0x78, 0xa8], 2 * 80, 2 * 300);
  t.ok(rows.length > 0 && rows[0] >= 302 && rows[rows.length - 1] <= 314, `blue rows ${rows[0]}..${rows[rows.length - 1]} around 308`);
  t.notOk(
    fs.readdirSync(dir).some((f) => f.endsWith('.tmp')),
    'written atomically: no temp file left',
  );
});

t.test('training curves: two panels, loss falling left to right, Dice on a 0..1 axis', async (t) => {
  const file = path.join(dir, 'curves.png');
  await plotTrainingCurves(
    [1, 2, 3, 4].map((epoch) => ({ epoch, trainLoss: 1 / epoch, valLoss: null, valDice: 0.25 })),
    file,
  );
  const img = await rgb(file);
  t.same([img.width, img.height], [2 * 2 * (62 + 420 + 16), 2 * (34 + 220 + 46)]);
  // right panel: Dice 0.25 at y = 34 + 0.75 * 220 = 199 (398 in the PNG)
  const right = 2 * (62 + 420 + 16);
  const dice = rowsOf(img, [0x4c, 0x78, 0xa8], right + 2 * 70, right + 2 * 280);
  t.ok(dice.length > 0 && dice[0] >= 392 && dice[dice.length - 1] <= 404, `Dice rows ${dice[0]}..${dice[dice.length - 1]} around 398`);
  // left panel: the train loss line starts high (epoch 1, left edge) and ends low (epoch 4, right edge)
  const leftEdge = rowsOf(img, [0x4c, 0x78, 0xa8], 2 * 62, 2 * 66);
  const rightEdge = rowsOf(img, [0x4c, 0x78, 0xa8], 2 * 478, 2 * 482);
  t.ok(
    leftEdge.length > 0 && rightEdge.length > 0 && leftEdge[0] < rightEdge[0],
    `line at ${leftEdge[0]} on the left, ${rightEdge[0]} on the right`,
  );
});
