// Crops, tiles and augmentation of one sample: exact crops, reflection padding, each geometric
// transform keeps image and mask aligned (mask derivable from pixels), colour transforms leave the
// mask alone, foreground oversampling, determinism.
import t, { Test } from 'tap';
import { AugmentOptions, resolveAugment } from '../../lib/data/augment';
import { reflectIndex } from '../../lib/data/geometry';
import { maskRowCounts, pickForeground, renderSample, SampleRequest, SampleResult, SampleSource } from '../../lib/data/sample';
import { Rng } from '../../lib/rng';
import { alignedPair } from '../fixtures/data/make';

const W = 97,
  H = 83;
const rgb = alignedPair(W, H, 3, 1),
  grey = alignedPair(W, H, 1, 2);
const SRC: SampleSource = { image: rgb.image, mask: rgb.mask, width: W, height: H, channels: 3 };
const GREY: SampleSource = { image: grey.image, mask: grey.mask, width: W, height: H, channels: 1 };
const KEYS = ['flip', 'rotate90', 'affine', 'brightnessContrast', 'gamma', 'hsv', 'stain', 'elastic'] as const;

function only(name: (typeof KEYS)[number], extra: Record<string, number> = {}): AugmentOptions {
  const o: Record<string, unknown> = {};
  for (const k of KEYS) o[k] = k === name ? { p: 1, ...extra } : false;
  return o as AugmentOptions;
}

function render(
  src: SampleSource,
  seed: number,
  augment: AugmentOptions | null,
  size = 48,
  extra: Partial<SampleRequest> = {},
): SampleResult {
  return renderSample(src, {
    height: size,
    width: size,
    seed,
    foreground: 0,
    augment: augment ? resolveAugment(augment, true) : null,
    ...extra,
  });
}

/** Bright pixels (channel 0 >= 200) must be mask 1, dark ones (<= 55) mask 0; returns the share checked. */
function checkAligned(t: Test, r: SampleResult, channels: number, label: string): number {
  let checked = 0,
    bad = 0;
  for (let i = 0; i < r.mask.length; i++) {
    const v = r.image[i * channels];
    if (r.mask[i] !== 0 && r.mask[i] !== 1) {
      t.fail(`${label}: mask value ${r.mask[i]}`);
      return 0;
    }
    if (v >= 200) {
      checked++;
      if (r.mask[i] !== 1) bad++;
    } else if (v <= 55) {
      checked++;
      if (r.mask[i] !== 0) bad++;
    }
  }
  t.equal(bad, 0, `${label}: ${bad} misaligned pixels`);
  return checked / r.mask.length;
}

t.test('plain crops copy the source region exactly', async (t) => {
  for (let seed = 0; seed < 20; seed++) {
    const r = render(SRC, seed, null);
    t.ok(r.x >= 0 && r.y >= 0 && r.x + 48 <= W && r.y + 48 <= H, 'crop inside the image');
    let same = true;
    for (let y = 0; y < 48 && same; y++)
      for (let x = 0; x < 48; x++) {
        const s = (r.y + y) * W + r.x + x,
          o = y * 48 + x;
        if (r.mask[o] !== SRC.mask[s] || r.image[o * 3] !== SRC.image[s * 3] || r.image[o * 3 + 2] !== SRC.image[s * 3 + 2]) {
          same = false;
          break;
        }
      }
    if (!same) t.fail(`seed ${seed}: crop differs from source region`);
  }
  const xs = new Set(Array.from({ length: 50 }, (_, s) => render(SRC, s, null).x));
  t.ok(xs.size > 20, 'origins vary with the seed');
});

t.test('crops larger than the image are reflection-padded', async (t) => {
  const small: SampleSource = { ...GREY, width: 40, height: 30, image: GREY.image.slice(0, 1200), mask: GREY.mask.slice(0, 1200) };
  const r = render(small, 3, null, 64);
  t.ok(r.x <= 0 && r.x >= 40 - 64 && r.y <= 0 && r.y >= 30 - 64);
  const wrong: string[] = [];
  for (let y = 0; y < 64; y++)
    for (let x = 0; x < 64; x++) {
      const s = reflectIndex(r.y + y, 30) * 40 + reflectIndex(r.x + x, 40);
      if (r.image[y * 64 + x] !== small.image[s] || r.mask[y * 64 + x] !== small.mask[s]) wrong.push(`${x},${y}`);
    }
  t.same(wrong.slice(0, 5), [], `every pixel is the mirrored source pixel (${wrong.length} are not)`);
});

t.test('fixed origins (tiles) are honoured, no augmentation', async (t) => {
  const r = render(SRC, 0, null, 32, { origin: { x: 65, y: 51 } });
  t.same([r.x, r.y], [65, 51]);
  t.equal(r.image[0], SRC.image[(51 * W + 65) * 3]);
  t.equal(r.image[(31 * 32 + 31) * 3], SRC.image[(82 * W + 96) * 3], 'last tile ends at the image corner');
});

t.test('flips: both axes mirrored, mask with the image', async (t) => {
  const plain = render(SRC, 9, null),
    f = render(SRC, 9, only('flip'));
  for (let y = 0; y < 48; y++)
    for (let x = 0; x < 48; x++) {
      const o = y * 48 + x,
        m = (47 - y) * 48 + (47 - x);
      if (f.mask[o] !== plain.mask[m] || f.image[o * 3 + 1] !== plain.image[m * 3 + 1]) {
        t.fail(`flip at ${x},${y}`);
        return;
      }
    }
  t.ok(checkAligned(t, f, 3, 'flip') > 0.9);
});

t.test('90-degree rotations: exactly one of the three turns, all occur across seeds', async (t) => {
  const turns = new Set<number>();
  for (let seed = 0; seed < 12; seed++) {
    const plain = render(SRC, seed, null),
      r = render(SRC, seed, only('rotate90'));
    const rot = (k: number, y: number, x: number): number =>
      k === 1 ? x * 48 + (47 - y) : k === 2 ? (47 - y) * 48 + (47 - x) : (47 - x) * 48 + y;
    const match = [1, 2, 3].filter((k) => {
      for (let y = 0; y < 48; y++)
        for (let x = 0; x < 48; x++) {
          const o = y * 48 + x,
            s = rot(k, y, x);
          if (r.mask[o] !== plain.mask[s] || r.image[o * 3] !== plain.image[s * 3]) return false;
        }
      return true;
    });
    t.equal(match.length, 1, `seed ${seed}: matches turn ${match}`);
    turns.add(match[0]);
    checkAligned(t, r, 3, `rotate90 seed ${seed}`);
  }
  t.same([...turns].sort(), [1, 2, 3]);
});

t.test('affine (rotation + zoom) and elastic deformation keep image and mask aligned', async (t) => {
  for (const [name, extra] of [
    ['affine', { degrees: 30, scale: 0.3 }],
    ['elastic', { sigma: 6, spacing: 16 }],
  ] as const) {
    for (let seed = 0; seed < 6; seed++) {
      for (const src of [SRC, GREY]) {
        const plain = render(src, seed, null),
          r = render(src, seed, only(name, extra));
        let diff = 0;
        for (let i = 0; i < r.mask.length; i++) diff += r.mask[i] !== plain.mask[i] ? 1 : 0;
        t.ok(diff > 10, `${name} seed ${seed}: the transform moved pixels (${diff} mask pixels changed)`);
        const share = checkAligned(t, r, src.channels, `${name} seed ${seed} c${src.channels}`);
        t.ok(share > 0.8, `${name}: ${Math.round(share * 100)}% of pixels checkable`);
      }
    }
  }
});

t.test('every geometric transform at once, and on small images, stays aligned', async (t) => {
  const all: AugmentOptions = {
    ...only('flip'),
    rotate90: { p: 1 },
    affine: { p: 1, degrees: 25, scale: 0.2 },
    elastic: { p: 1, sigma: 5, spacing: 16 },
  };
  for (let seed = 0; seed < 8; seed++) t.ok(checkAligned(t, render(SRC, seed, all, 64), 3, `all seed ${seed}`) > 0.8);
  const small: SampleSource = { ...SRC, width: 40, height: 30, image: SRC.image.slice(0, 3600), mask: SRC.mask.slice(0, 1200) };
  for (let seed = 0; seed < 4; seed++) checkAligned(t, render(small, seed, all, 64), 3, `small seed ${seed}`);
});

t.test('colour transforms change the image only; HSV and stain leave grey images alone', async (t) => {
  const cases: [(typeof KEYS)[number], Record<string, number>][] = [
    ['brightnessContrast', { brightness: 0.3, contrast: 0.3 }],
    ['gamma', { gamma: 0.5 }],
    ['hsv', { hue: 0.1, saturation: 0.3, value: 0.3 }],
    ['stain', { sigma: 0.2, bias: 0.2 }],
  ];
  for (const [name, extra] of cases) {
    const plain = render(SRC, 4, null),
      r = render(SRC, 4, only(name, extra));
    t.same(r.mask, plain.mask, `${name}: mask untouched`);
    t.same([r.x, r.y], [plain.x, plain.y]);
    let changed = 0;
    for (let i = 0; i < r.image.length; i++) changed += r.image[i] !== plain.image[i] ? 1 : 0;
    t.ok(changed > r.image.length / 4, `${name}: ${changed} values changed`);
    if (name === 'hsv' || name === 'stain')
      t.same(render(GREY, 4, only(name, extra)).image, render(GREY, 4, null).image, `${name}: grey untouched`);
  }
});

t.test('foreground oversampling: foreground 1 always centres on a nucleus-like blob', async (t) => {
  const w = 200,
    h = 200,
    mask = new Uint8Array(w * h);
  for (let y = 150; y < 160; y++) for (let x = 20; x < 30; x++) mask[y * w + x] = 1; // 0.25% foreground
  const src: SampleSource = { image: mask.map((v) => v * 250), mask, width: w, height: h, channels: 1 };
  let hitAlways = 0,
    hitNever = 0;
  for (let seed = 0; seed < 100; seed++) {
    hitAlways += render(src, seed, null, 32, { foreground: 1 }).mask.some((v) => v === 1) ? 1 : 0;
    hitNever += render(src, seed, null, 32, { foreground: 0 }).mask.some((v) => v === 1) ? 1 : 0;
  }
  t.equal(hitAlways, 100, 'every foreground-centred crop holds foreground');
  t.ok(hitNever < 25, `uniform crops rarely do (${hitNever}/100; expected about 5)`);
  const empty: SampleSource = { ...src, mask: new Uint8Array(w * h) };
  t.doesNotThrow(() => render(empty, 1, null, 32, { foreground: 1 }), 'empty masks fall back to uniform crops');
});

t.test('pickForeground picks the r-th foreground pixel (naive scan reference), row counts or not', async (t) => {
  for (let seed = 0; seed < 30; seed++) {
    const m = SRC.mask;
    const naive = (): number => {
      const rng = new Rng(seed);
      let count = 0;
      for (const v of m) count += v;
      let r = rng.int(count);
      for (let i = 0; i < m.length; i++) if (m[i] && r-- === 0) return i;
      return -1;
    };
    const want = naive();
    t.equal(pickForeground(m, W, new Rng(seed)), want);
    t.equal(pickForeground(m, W, new Rng(seed), maskRowCounts(m, W)), want);
  }
  t.equal(pickForeground(new Uint8Array(12), 4, new Rng(1)), -1);
  const withCounts = render({ ...SRC, rowCounts: maskRowCounts(SRC.mask, W) }, 5, {}, 48, { foreground: 1 });
  t.same(withCounts, render(SRC, 5, {}, 48, { foreground: 1 }));
});

t.test('deterministic for a seed, different across seeds, with default augmentation', async (t) => {
  const a = render(SRC, 123, {}),
    b = render(SRC, 123, {}),
    c = render(SRC, 124, {});
  t.same(a, b);
  t.not(Buffer.from(a.image).toString('hex'), Buffer.from(c.image).toString('hex'));
});
