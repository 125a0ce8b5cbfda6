// Label decoding of index and colour masks through a class list, with the errors the issue asks for.
import t from 'tap';
import { classesFromNames, parseClasses } from '../../lib/classes/classes';
import { colorizeLabels, decodeLabels } from '../../lib/classes/labels';

t.test('8- and 16-bit index masks', async (t) => {
  const classes = parseClasses(
    {
      classes: [
        { name: 'bg', value: 0 },
        { name: 'a', value: 100 },
        { name: 'b', value: 1000 },
      ],
      ignore: { value: 7 },
    },
    'c.json',
  );
  const m16 = { data: Uint16Array.from([0, 100, 1000, 7]), width: 2, height: 2, channels: 1 };
  t.same(Array.from(decodeLabels(m16, classes, 'm.png')), [0, 1, 2, 255], 'values mapped, ignore -> 255');
  const grey = { data: Uint8Array.from([1, 1, 0, 0, 2, 2]), width: 3, height: 1, channels: 2 };
  t.same(Array.from(decodeLabels(grey, classesFromNames(['bg', 'x', 'y']), 'g.png')), [1, 0, 2], 'grey + alpha: channel 0');
  const asRgb = { data: Uint8Array.from([1, 1, 1, 2, 2, 2]), width: 2, height: 1, channels: 3 };
  t.same(Array.from(decodeLabels(asRgb, classesFromNames(['bg', 'x', 'y']), 'g.png')), [1, 2], 'grey saved as RGB');
});

t.test('a value outside the class list names the file, the value, the pixel and the list', async (t) => {
  const m = { data: Uint8Array.from([0, 1, 2, 3]), width: 2, height: 2, channels: 1 };
  t.throws(() => decodeLabels(m, classesFromNames(['bg', 'nucleus', 'boundary']), 'masks/7.png'), {
    code: 'ERR_PATHO_DATA',
    message: /^masks\/7\.png: mask value 3 at pixel \(1, 1\) is not in the class list \(bg=0, nucleus=1, boundary=2 from --classes\)/,
  });
  const colour = { data: Uint8Array.from([255, 0, 0]), width: 1, height: 1, channels: 3 };
  t.throws(() => decodeLabels(colour, classesFromNames(['bg', 'x']), 'c.png'), {
    code: 'ERR_PATHO_DATA',
    message: /c\.png: a colour mask .*#ff0000.*give the classes "rgb" colours/,
  });
});

t.test('colour masks through classes.json', async (t) => {
  const classes = parseClasses(
    {
      classes: [
        { name: 'bg', rgb: '#000000' },
        { name: 'tumour', rgb: '#ff0000' },
        { name: 'stroma', rgb: [0, 255, 0] },
      ],
      ignore: { rgb: '#ffffff' },
    },
    'd/classes.json',
  );
  const rgba = { data: Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 0, 255, 255, 255, 9, 0, 0, 0, 255]), width: 4, height: 1, channels: 4 };
  t.same(Array.from(decodeLabels(rgba, classes, 'm.png')), [1, 2, 255, 0], 'alpha ignored, ignore colour -> 255');
  const odd = { data: Uint8Array.from([0, 0, 0, 1, 2, 3]), width: 2, height: 1, channels: 3 };
  t.throws(() => decodeLabels(odd, classes, 'm.png'), {
    code: 'ERR_PATHO_DATA',
    message:
      /m\.png: mask colour #010203 at pixel \(1, 0\) is not in the class list \(bg=#000000, tumour=#ff0000, stroma=#00ff00 from d\/classes\.json\)/,
  });
  t.throws(() => decodeLabels({ data: new Uint8Array(2), width: 2, height: 1, channels: 1 }, classes, 'g.png'), {
    code: 'ERR_PATHO_DATA',
    message: /1-channel mask but the class list gives mask colours/,
  });
  t.same(
    Array.from(colorizeLabels([1, 255], parseClasses([{ name: 'bg' }, { name: 'a', color: '#102030' }], 'c'))),
    [16, 32, 48, 128, 128, 128],
  );
});
