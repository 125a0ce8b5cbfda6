// Plots as PNG: line charts drawn as SVG (lib/line-chart.ts: d3-scale and d3-shape) and rasterised
// by sharp, written atomically. Training curves (train/val loss and val Dice per epoch) and
// Dice-vs-threshold curves.
import sharp from 'sharp';
import { writeFileAtomic } from './atomic-write';
import { lineChartSvg, type Panel } from './line-chart';

async function renderPng(panels: Panel[], file: string): Promise<void> {
  const { svg } = lineChartSvg(panels);
  const png = await sharp(Buffer.from(svg), { density: 144 }).flatten({ background: '#ffffff' }).png().toBuffer();
  writeFileAtomic(file, png);
}

export interface EpochPoint {
  epoch: number;
  trainLoss?: number | null;
  valLoss?: number | null;
  valDice?: number | null;
}

const finite = (v: number | null | undefined): number => (v != null && Number.isFinite(v) ? v : NaN);

/** curves.png: loss (train, val) and validation Dice per epoch, one panel each. */
export async function plotTrainingCurves(points: EpochPoint[], file: string, diceLabel = 'val Dice@0.5'): Promise<void> {
  const series = (name: string, pick: (p: EpochPoint) => number | null | undefined) => ({
    name,
    points: points.map((p): [number, number] => [p.epoch, finite(pick(p))]).filter(([, v]) => Number.isFinite(v)),
  });
  const loss = [series('train loss', (p) => p.trainLoss), series('val loss', (p) => p.valLoss)].filter((s) => s.points.length > 0);
  const dice = [series(diceLabel, (p) => p.valDice)].filter((s) => s.points.length > 0);
  await renderPng(
    [
      { title: 'Loss', xTitle: 'epoch', yTitle: 'loss', series: loss, xIntegers: true },
      { title: 'Validation Dice', xTitle: 'epoch', yTitle: 'Dice', series: dice, yDomain: [0, 1], xIntegers: true },
    ],
    file,
  );
}

/** Dice (mean over images) against the probability threshold. */
export async function plotDiceCurve(
  curve: { threshold: number; dice: number }[],
  file: string,
  title = 'Dice vs threshold',
): Promise<void> {
  await renderPng(
    [
      {
        title,
        xTitle: 'threshold',
        yTitle: 'mean Dice',
        width: 420,
        height: 240,
        xDomain: [0, 1],
        yDomain: [0, 1],
        series: [{ name: 'mean Dice', points: curve.map((c): [number, number] => [c.threshold, c.dice]) }],
      },
    ],
    file,
  );
}
