// Augmentation options: defaults on/off, partial overrides merged, bad values named.
import t from 'tap';
import { DEFAULT_AUGMENT, resolveAugment } from '../../lib/data/augment';

t.test('true = defaults, false = off, undefined follows the mode', async (t) => {
  t.same(resolveAugment(true, false), DEFAULT_AUGMENT);
  t.equal(resolveAugment(false, true), null);
  t.same(resolveAugment(undefined, true), DEFAULT_AUGMENT, 'training default: on');
  t.equal(resolveAugment(undefined, false), null, 'validation default: off');
});

t.test('partial overrides merge with the defaults; every p zero means no augmentation', async (t) => {
  const a = resolveAugment({ affine: { degrees: 45 }, elastic: false, hsv: true }, true)!;
  t.same(a.affine, { ...DEFAULT_AUGMENT.affine, degrees: 45 });
  t.equal(a.elastic, false);
  t.same(a.hsv, DEFAULT_AUGMENT.hsv);
  t.same(a.flip, DEFAULT_AUGMENT.flip);
  const zero = Object.fromEntries(Object.keys(DEFAULT_AUGMENT).map((k) => [k, { p: 0 }]));
  t.equal(resolveAugment(zero, true), null);
  t.not(DEFAULT_AUGMENT.affine.degrees, 45, 'defaults are not mutated');
});

t.test('bad values: Expected <what> for <name> but received <value>', async (t) => {
  t.throws(() => resolveAugment({ gamma: { p: -0.1 } }, true), {
    code: 'ERR_PATHO_DATA',
    message: 'Expected a number in [0, 1] for augment.gamma.p but received -0.1',
  });
  t.throws(() => resolveAugment({ elastic: { spacing: 1 } }, true), {
    code: 'ERR_PATHO_DATA',
    message: /augment\.elastic\.spacing but received 1/,
  });
  t.throws(() => resolveAugment({ flip: { strength: 1 } } as never, true), {
    code: 'ERR_PATHO_DATA',
    message: /one of p for augment\.flip\.strength/,
  });
  t.throws(() => resolveAugment({ cutout: true } as never, true), { code: 'ERR_PATHO_DATA', message: /augment\.cutout/ });
  t.throws(() => resolveAugment(3 as never, true), { code: 'ERR_PATHO_DATA', message: /for augment but received 3/ });
});
