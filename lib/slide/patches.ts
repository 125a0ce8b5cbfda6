// Training patches from slides, as a Dataset the existing DataLoader streams (worker threads,
// prefetch, augmentation): each item is one crop x crop patch read at the training mpp with its
// mask rasterised from the slide's annotations. 'random' items are centred on a positive point
// (a share positiveFraction of them) or on a random tissue pixel, drawn once from the seed; a
// loader with samplesPerEpoch below the item count takes a fresh random subset every epoch.
// 'grid' items tile the tissue without overlap, for validation by slide.
import { computeStats, type ChannelStats, type Dataset, type DatasetEntry, type DecodedPair } from '../data/dataset';
import { DataError } from '../errors';
import { mixSeed, Rng } from '../rng';
import type { SlideLabels } from './annotations';
import type { Slide } from './slide';
import type { TissueMask } from './tissue';

export interface SlideSource {
  slide: Slide;
  labels: SlideLabels;
  tissue: TissueMask;
  /** name in batch item names and per-slide reports */
  stem: string;
}

export interface SlidePatchOptions {
  /** µm per patch pixel; null reads level 0 (slides that state no mpp) */
  mpp: number | null;
  /** patch side in pixels */
  crop: number;
  mode: 'random' | 'grid';
  /** share of random patches centred on a positive point (default 0.5) */
  positiveFraction?: number;
  /** random: patches drawn per slide (default 512); grid: at most this many tiles per slide (default 64) */
  patchesPerSlide?: number;
  seed?: number;
  /** grid tiles need at least this share of tissue (default 0.25) */
  minTissue?: number;
}

interface Item {
  source: number;
  x: number;
  y: number;
}

export class SlidePatchDataset implements Dataset {
  readonly channels = 3;
  private items: Item[] = [];
  private readonly scales: number[];
  private statsPromise: Promise<ChannelStats> | null = null;
  private readied: Promise<this> | null = null;

  constructor(
    readonly sources: SlideSource[],
    readonly options: SlidePatchOptions,
  ) {
    if (sources.length === 0) throw new DataError('Expected at least one slide for patches but received none');
    this.scales = sources.map((s) => {
      if (options.mpp === null) return 1;
      if (s.slide.mpp === null) {
        throw new DataError(
          `${s.slide.path}: --mpp ${options.mpp} needs the slide's µm per pixel, which the file does not state; train at level 0 by leaving out --mpp`,
        );
      }
      return options.mpp / s.slide.mpp;
    });
  }

  get length(): number {
    return this.items.length;
  }

  ready(): Promise<this> {
    this.readied ??= Promise.resolve().then(() => {
      this.items = this.sources.flatMap((_, k) => (this.options.mode === 'grid' ? this.gridItems(k) : this.randomItems(k)));
      if (this.items.length === 0) {
        throw new DataError(
          `Expected tissue to take patches from but none was found in ${this.sources.map((s) => s.slide.path).join(', ')}`,
        );
      }
      return this;
    });
    return this.readied;
  }

  /** level-0 side of a patch of slide k */
  private side(k: number): number {
    return this.options.crop * this.scales[k];
  }

  private clampOrigin(k: number, cx: number, cy: number): { x: number; y: number } {
    const s = this.sources[k].slide,
      side = this.side(k);
    const clamp = (c: number, n: number) => (side >= n ? (n - side) / 2 : Math.min(n - side, Math.max(0, c - side / 2)));
    return { x: Math.round(clamp(cx, s.width)), y: Math.round(clamp(cy, s.height)) };
  }

  private randomItems(k: number): Item[] {
    const { labels, tissue } = this.sources[k];
    const n = this.options.patchesPerSlide ?? 512;
    const p = this.options.positiveFraction ?? 0.5;
    const rng = new Rng(mixSeed(this.options.seed ?? 0, k, 0x51de));
    const tissuePx: number[] = [];
    for (let i = 0; i < tissue.data.length; i++) if (tissue.data[i]) tissuePx.push(i);
    const out: Item[] = [];
    const nPos = labels.positiveArea > 0 ? Math.round(p * n) : 0;
    for (let i = 0; i < n; i++) {
      let c: { x: number; y: number } | null = i < nPos ? labels.randomPositive(rng) : null;
      if (!c) {
        const s = this.sources[k].slide;
        if (tissuePx.length === 0) c = { x: rng.uniform(0, s.width), y: rng.uniform(0, s.height) };
        else {
          const q = tissuePx[rng.int(tissuePx.length)];
          c = { x: ((q % tissue.width) + rng.float()) * tissue.scaleX, y: (Math.floor(q / tissue.width) + rng.float()) * tissue.scaleY };
        }
      }
      out.push({ source: k, ...this.clampOrigin(k, c.x, c.y) });
    }
    return out;
  }

  private gridItems(k: number): Item[] {
    const { slide, tissue } = this.sources[k];
    const side = this.side(k),
      min = this.options.minTissue ?? 0.25;
    const all: Item[] = [];
    for (let y = 0; y + side <= slide.height + 1e-6 || (y === 0 && side > slide.height); y += side) {
      for (let x = 0; x + side <= slide.width + 1e-6 || (x === 0 && side > slide.width); x += side) {
        if (tissue.fractionIn(x, y, side, side) >= min) all.push({ source: k, x: Math.round(x), y: Math.round(y) });
      }
    }
    const max = this.options.patchesPerSlide ?? 64;
    if (all.length <= max) return all;
    // evenly spread, deterministic
    return Array.from({ length: max }, (_, i) => all[Math.floor((i * all.length) / max)]);
  }

  /** indices of the items of source k (after ready()) */
  itemsOf(k: number): number[] {
    return this.items.flatMap((it, i) => (it.source === k ? [i] : []));
  }

  entry(i: number): DatasetEntry {
    const it = this.items[i];
    if (!it) throw new DataError(`Expected a patch index in [0, ${this.items.length}) but received ${i}`);
    const s = this.sources[it.source];
    return {
      stem: s.stem,
      image: `${s.slide.path}#${it.x},${it.y}`,
      mask: s.labels.source,
      width: this.options.crop,
      height: this.options.crop,
      channels: 3,
    };
  }

  async read(i: number): Promise<DecodedPair> {
    const it = this.items[i];
    if (!it) throw new DataError(`Expected a patch index in [0, ${this.items.length}) but received ${i}`);
    const s = this.sources[it.source],
      c = this.options.crop,
      scale = this.scales[it.source],
      side = this.side(it.source);
    const img = await s.slide.readScaled({ x: it.x, y: it.y, width: side, height: side, outWidth: c, outHeight: c });
    const mask = s.labels.mask({ x: it.x, y: it.y, scale, width: c, height: c });
    return { image: { data: img.data, width: c, height: c, channels: 3 }, mask: { data: mask, width: c, height: c, channels: 1 } };
  }

  stats(): Promise<ChannelStats> {
    this.statsPromise ??= this.ready().then(async () => {
      const n = Math.min(16, this.items.length);
      const picks = Array.from({ length: n }, (_, j) => Math.floor((j * this.items.length) / n));
      const images = [];
      for (const i of picks) images.push((await this.read(i)).image);
      return computeStats(images);
    });
    return this.statsPromise;
  }

  checkChannels(inChannels: number): void {
    if (inChannels !== 3) throw new DataError(`Expected a model with 3 input channels for RGB slides but it has ${inChannels}`);
  }
}
