// Augmentation configuration: each transform has a probability p and a strength; defaults follow
// common nnU-Net / HistoQC-style ranges, mild enough for H&E and EM.
import { invalidOption } from '../errors';

export interface FlipConfig {
  p: number;
} // each axis flipped with probability p
export interface Rotate90Config {
  p: number;
} // rotate by 90/180/270 degrees with probability p
export interface AffineConfig {
  p: number;
  degrees: number;
  scale: number;
} // angle in [-degrees, degrees], zoom in [1/(1+scale), 1+scale]
export interface BrightnessContrastConfig {
  p: number;
  brightness: number;
  contrast: number;
} // factors in [1-x, 1+x]
export interface GammaConfig {
  p: number;
  gamma: number;
} // gamma in [exp(-gamma), exp(gamma)]
export interface HsvConfig {
  p: number;
  hue: number;
  saturation: number;
  value: number;
} // hue shift in turns; factors in [1-x, 1+x]
export interface StainConfig {
  p: number;
  sigma: number;
  bias: number;
} // HED concentration * U[1-sigma,1+sigma] + U[-bias,bias]
export interface ElasticConfig {
  p: number;
  sigma: number;
  spacing: number;
} // displacement std (px) on a grid of `spacing` px

export interface AugmentConfig {
  flip: FlipConfig | false;
  rotate90: Rotate90Config | false;
  affine: AffineConfig | false;
  brightnessContrast: BrightnessContrastConfig | false;
  gamma: GammaConfig | false;
  hsv: HsvConfig | false; // RGB images only
  stain: StainConfig | false; // RGB images only (H&E)
  elastic: ElasticConfig | false;
}

/** User form: `true` = defaults, `false` = off; per transform `true`, `false` or a partial override. */
export type AugmentOptions = { [K in keyof AugmentConfig]?: boolean | Partial<Exclude<AugmentConfig[K], false>> };

export const DEFAULT_AUGMENT: Readonly<{ [K in keyof AugmentConfig]: Exclude<AugmentConfig[K], false> }> = Object.freeze({
  flip: { p: 0.5 },
  rotate90: { p: 0.5 },
  affine: { p: 0.3, degrees: 15, scale: 0.1 },
  brightnessContrast: { p: 0.3, brightness: 0.15, contrast: 0.15 },
  gamma: { p: 0.3, gamma: 0.2 },
  hsv: { p: 0.3, hue: 0.02, saturation: 0.1, value: 0.1 },
  stain: { p: 0.3, sigma: 0.05, bias: 0.05 },
  elastic: { p: 0.2, sigma: 4, spacing: 32 },
});

const KEYS = Object.keys(DEFAULT_AUGMENT) as (keyof AugmentConfig)[];
const LIMITS: Record<string, [number, number]> = {
  p: [0, 1],
  degrees: [0, 180],
  scale: [0, 1],
  brightness: [0, 1],
  contrast: [0, 1],
  gamma: [0, 2],
  hue: [0, 0.5],
  saturation: [0, 1],
  value: [0, 1],
  sigma: [0, 64],
  bias: [0, 1],
  spacing: [4, 4096],
};

/** No augmentation: every transform off. */
export const NO_AUGMENT: Readonly<AugmentConfig> = Object.freeze(
  Object.fromEntries(KEYS.map((k) => [k, false])) as unknown as AugmentConfig,
);

/** Validate and complete user options; null when everything is off. */
export function resolveAugment(options: boolean | AugmentOptions | undefined, fallback: boolean): AugmentConfig | null {
  const opt = options === undefined ? fallback : options;
  if (opt === false) return null;
  if (opt === true) return structuredClone(DEFAULT_AUGMENT) as AugmentConfig;
  if (typeof opt !== 'object' || opt === null)
    throw invalidOption('augment', 'true, false or an object of transforms', opt, 'ERR_PATHO_DATA');
  for (const k of Object.keys(opt))
    if (!KEYS.includes(k as keyof AugmentConfig)) throw invalidOption(`augment.${k}`, `one of ${KEYS.join(', ')}`, k, 'ERR_PATHO_DATA');
  const out: Record<string, unknown> = {};
  for (const k of KEYS) {
    const v = opt[k];
    if (v === false) {
      out[k] = false;
      continue;
    }
    if (v === undefined || v === true) {
      out[k] = { ...DEFAULT_AUGMENT[k] };
      continue;
    }
    if (typeof v !== 'object' || v === null) throw invalidOption(`augment.${k}`, 'true, false or an object', v, 'ERR_PATHO_DATA');
    const merged: Record<string, number> = { ...DEFAULT_AUGMENT[k] };
    for (const [f, x] of Object.entries(v)) {
      if (!(f in merged)) throw invalidOption(`augment.${k}.${f}`, `one of ${Object.keys(merged).join(', ')}`, f, 'ERR_PATHO_DATA');
      const [lo, hi] = LIMITS[f];
      if (typeof x !== 'number' || !Number.isFinite(x) || x < lo || x > hi)
        throw invalidOption(`augment.${k}.${f}`, `a number in [${lo}, ${hi}]`, x, 'ERR_PATHO_DATA');
      merged[f] = x;
    }
    out[k] = merged;
  }
  const cfg = out as unknown as AugmentConfig;
  return KEYS.every((k) => cfg[k] === false || (cfg[k] as { p: number }).p === 0) ? null : cfg;
}
