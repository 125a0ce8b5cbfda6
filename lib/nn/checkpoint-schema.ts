// The schema of a checkpoint's `patho.*` metadata: each key patho reads is checked once, at load,
// so a wrong value is one ERR_PATHO_CHECKPOINT error naming the key and the file instead of a
// crash later (or, worse, a silently different model). Keys this version does not know pass
// unchecked, so a newer patho's checkpoints still load.
import { describeValue, PathoError } from '../errors';

/** The UNet limits of unet.ts (channels and depth) that a checkpoint's model config must respect. */
export const UNET_LIMITS = Object.freeze({ channels: 4096, depth: 8 });

type Check = (v: unknown, meta: Record<string, unknown>) => string | null;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const expected = (what: string, v: unknown): string => `Expected ${what} but received ${describeValue(v)}`;

function numbers(v: unknown, ok: (x: number) => boolean): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && ok(x));
}

function inChannels(meta: Record<string, unknown>): number | null {
  const m = meta.model;
  return isObj(m) && m.kind === 'unet' && Number.isInteger(m.inChannels) ? (m.inChannels as number) : null;
}

const SCHEMA: Record<string, Check> = {
  model: (v) => {
    if (!isObj(v)) return expected('an object such as { kind: "unet", inChannels, outChannels, width, depth }', v);
    if (v.kind !== undefined && typeof v.kind !== 'string') return `kind: ${expected('a string', v.kind)}`;
    if (v.kind !== 'unet') return null;
    for (const k of ['inChannels', 'outChannels', 'width'] as const) {
      if (!Number.isInteger(v[k]) || (v[k] as number) < 1 || (v[k] as number) > UNET_LIMITS.channels) {
        return `${k}: ${expected(`an integer in [1, ${UNET_LIMITS.channels}] (the largest a UNet of patho has)`, v[k])}`;
      }
    }
    if (!Number.isInteger(v.depth) || (v.depth as number) < 1 || (v.depth as number) > UNET_LIMITS.depth) {
      return `depth: ${expected(`an integer in [1, ${UNET_LIMITS.depth}] (the deepest UNet patho builds)`, v.depth)}`;
    }
    return null;
  },
  epoch: (v) => (isCount(v) ? null : expected('a non-negative integer', v)),
  step: (v) => (isCount(v) ? null : expected('a non-negative integer', v)),
  schedule: (v) => (v === null || isObj(v) ? null : expected('an object', v)),
  rng: (v) =>
    Array.isArray(v) && v.length === 4 && v.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) && v.some((w) => w !== 0)
      ? null
      : expected('four uint32 words, not all zero', v),
  normalization: (v, meta) => {
    if (v === null) return null;
    if (!isObj(v)) return expected('{ mean: [...], std: [...] } or null', v);
    if (!numbers(v.mean, () => true)) return `mean: ${expected('a list of finite numbers', v.mean)}`;
    if (!numbers(v.std, (x) => x > 0)) return `std: ${expected('a list of positive numbers', v.std)}`;
    const c = inChannels(meta);
    if (v.mean.length !== v.std.length || (c !== null && v.mean.length !== c)) {
      return `Expected ${c ?? 'as many'} values in mean and std${c !== null ? ` (patho.model's inChannels)` : ''} but received ${v.mean.length} and ${v.std.length}`;
    }
    return null;
  },
  thresholds: (v) => (numbers(v, (x) => x >= 0 && x <= 1) ? null : expected('a list of numbers in [0, 1]', v)),
  optimizer: (v) => (isObj(v) ? null : expected('an object', v)),
  loss: (v) => (typeof v === 'string' ? null : expected('a string', v)),
  bestDice: (v) => (v === null || (typeof v === 'number' && v >= 0 && v <= 1) ? null : expected('null or a number in [0, 1]', v)),
  bestMetric: (v) => (v === null || typeof v === 'string' ? null : expected('null or a string', v)),
  stepsPerEpoch: (v) => (v === null || (Number.isSafeInteger(v) && (v as number) > 0) ? null : expected('null or a positive integer', v)),
  loader: (v) => (v === null || isObj(v) ? null : expected('an object or null', v)),
  run: (v) => (typeof v === 'string' && v.length > 0 ? null : expected('a run id (a non-empty string)', v)),
  pair: (v) => (typeof v === 'string' && v.length > 0 ? null : expected('a non-empty string', v)),
  mpp: (v) =>
    v === null || (typeof v === 'number' && Number.isFinite(v) && v > 0) ? null : expected('null or a positive number (µm per pixel)', v),
  budget: (v) => (v === null || isObj(v) ? null : expected('an object or null', v)),
  selection: (v) => (v === null || isObj(v) ? null : expected('an object or null', v)),
  ema: (v) =>
    isObj(v) && typeof v.decay === 'number' && v.decay >= 0 && v.decay < 1 && isCount(v.updates)
      ? null
      : expected('{ decay in [0, 1), updates: a count }', v),
  weights: (v) => (v === 'ema' || v === 'trained' ? null : expected("'ema' or 'trained'", v)),
};

/**
 * Checks the decoded `patho.*` metadata (keys without the prefix) of `file`; throws one
 * ERR_PATHO_CHECKPOINT error listing every key that is wrong.
 */
export function checkCheckpointMeta(meta: Record<string, unknown>, file: string): void {
  const problems: string[] = [];
  for (const [key, check] of Object.entries(SCHEMA)) {
    if (!(key in meta)) continue;
    const why = check(meta[key], meta);
    if (why) problems.push(`patho.${key}: ${why}`);
  }
  if (problems.length > 0) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file} has invalid metadata (${problems.length} key${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`,
    );
  }
}
