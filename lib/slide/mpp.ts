// µm per pixel and objective power from what slide files state: Aperio's `MPP = ` and `AppMag = `
// in ImageDescription, OME-XML's PhysicalSizeX/Y (with units), TIFF X/YResolution with
// ResolutionUnit (inch or cm), and OpenSlide's openslide.mpp-x / openslide.objective-power.

export interface Resolution {
  mppX: number;
  mppY: number;
  /** where it came from, for doctor-style reports and summaries */
  source: string;
}

// A resolution tag outside this range is a screen/print default (72 dpi = 353 µm), not a microscope.
const MIN_MPP = 0.01;
const MAX_MPP = 40;
const plausible = (v: number): boolean => Number.isFinite(v) && v >= MIN_MPP && v <= MAX_MPP;

/** Aperio ImageDescription: a first line, then `key = value` pairs separated by '|'. */
export function parseAperioDescription(desc: string): Record<string, string> {
  const out: Record<string, string> = {};
  const parts = desc.split('|');
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const k = p.slice(0, eq).trim(),
      v = p.slice(eq + 1).trim();
    if (k && !(k in out)) out[k] = v;
  }
  return out;
}

const UNIT_TO_UM: Record<string, number> = {
  µm: 1,
  μm: 1,
  um: 1,
  micron: 1,
  microns: 1,
  nm: 1e-3,
  Å: 1e-4,
  pm: 1e-6,
  mm: 1e3,
  cm: 1e4,
  m: 1e6,
  in: 25400,
  inch: 25400,
};

/** PhysicalSizeX/Y of the first <Pixels> element of an OME-XML document, in µm. */
export function omeResolution(xml: string): Resolution | null {
  const px = /<(?:\w+:)?Pixels\b([^>]*)>/.exec(xml);
  if (!px) return null;
  const attr = (name: string): string | null => new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`).exec(px[1])?.[1] ?? null;
  const size = (axis: 'X' | 'Y'): number | null => {
    const v = Number(attr(`PhysicalSize${axis}`));
    if (!attr(`PhysicalSize${axis}`) || !Number.isFinite(v) || v <= 0) return null;
    const unit = attr(`PhysicalSize${axis}Unit`) ?? 'µm';
    const f = UNIT_TO_UM[unit];
    return f === undefined ? null : v * f;
  };
  const x = size('X');
  if (x === null || !plausible(x)) return null;
  const y = size('Y') ?? x;
  return { mppX: x, mppY: plausible(y) ? y : x, source: 'OME PhysicalSizeX/Y' };
}

/** TIFF resolution tags (pixels per inch or per cm) as µm per pixel, when they look like a microscope's. */
export function tiffTagResolution(xRes: number | null, yRes: number | null, unit: number): Resolution | null {
  if (!xRes || xRes <= 0 || (unit !== 2 && unit !== 3)) return null;
  const perUnit = unit === 3 ? 1e4 : 25400;
  const x = perUnit / xRes;
  const y = yRes && yRes > 0 ? perUnit / yRes : x;
  if (!plausible(x)) return null;
  return { mppX: x, mppY: plausible(y) ? y : x, source: `TIFF XResolution (${unit === 3 ? 'cm' : 'inch'})` };
}

export function aperioResolution(props: Record<string, string>): Resolution | null {
  const v = Number(props.MPP);
  return props.MPP !== undefined && plausible(v) ? { mppX: v, mppY: v, source: 'Aperio MPP' } : null;
}

export function openSlideResolution(props: Record<string, string>): Resolution | null {
  const x = Number(props['openslide.mpp-x']);
  if (props['openslide.mpp-x'] === undefined || !plausible(x)) return null;
  const yv = Number(props['openslide.mpp-y']);
  return { mppX: x, mppY: plausible(yv) ? yv : x, source: 'openslide.mpp-x' };
}

/** Objective power (e.g. 20 for a 20x scan) from Aperio AppMag or openslide.objective-power. */
export function objectivePower(props: Record<string, string>): number | null {
  for (const k of ['openslide.objective-power', 'aperio.AppMag']) {
    const v = Number(props[k]);
    if (props[k] !== undefined && Number.isFinite(v) && v > 0) return v;
  }
  return null;
}
