// Plots as PNG: vega-lite specs rendered to SVG by vega (headless) and rasterised by sharp.
// Training curves (train/val loss and val Dice per epoch) and Dice-vs-threshold curves.
import sharp from 'sharp';
// vega and vega-lite ship CommonJS builds for Node; their types are loose, so we keep them here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const vega = require('vega') as { View: new (rt: unknown, opts: { renderer: string }) => { toSVG(): Promise<string> }; parse(spec: unknown): unknown };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const vl = require('vega-lite') as { compile(spec: unknown): { spec: unknown } };

async function renderPng(spec: object, file: string): Promise<void> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  await sharp(Buffer.from(svg), { density: 144 }).flatten({ background: '#ffffff' }).png().toFile(file);
}

export interface EpochPoint {
  epoch: number;
  trainLoss?: number | null;
  valLoss?: number | null;
  valDice?: number | null;
}

/** curves.png: loss (train, val) and validation Dice per epoch, one panel each. */
export async function plotTrainingCurves(points: EpochPoint[], file: string, diceLabel = 'val Dice@0.5'): Promise<void> {
  const loss: object[] = [];
  const dice: object[] = [];
  for (const p of points) {
    if (p.trainLoss != null && Number.isFinite(p.trainLoss)) loss.push({ epoch: p.epoch, value: p.trainLoss, series: 'train loss' });
    if (p.valLoss != null && Number.isFinite(p.valLoss)) loss.push({ epoch: p.epoch, value: p.valLoss, series: 'val loss' });
    if (p.valDice != null && Number.isFinite(p.valDice)) dice.push({ epoch: p.epoch, value: p.valDice, series: diceLabel });
  }
  const panel = (title: string, values: object[], yTitle: string, domain?: number[]) => ({
    title,
    width: 420,
    height: 220,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: domain ? { domain } : { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  });
  await renderPng({ $schema: 'https://vega.github.io/schema/vega-lite/v5.json', hconcat: [panel('Loss', loss, 'loss'), panel('Validation Dice', dice, 'Dice', [0, 1])] }, file);
}

/** Dice (mean over images) against the probability threshold. */
export async function plotDiceCurve(curve: { threshold: number; dice: number }[], file: string, title = 'Dice vs threshold'): Promise<void> {
  await renderPng(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title,
      width: 420,
      height: 240,
      data: { values: curve },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'threshold', type: 'quantitative', title: 'threshold', scale: { domain: [0, 1] } },
        y: { field: 'dice', type: 'quantitative', title: 'mean Dice', scale: { domain: [0, 1] } },
      },
    },
    file,
  );
}
