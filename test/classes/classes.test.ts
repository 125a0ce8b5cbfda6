// classes.json parsing and validation, --classes names, and the class-count check.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { checkClassCount, classesFromNames, describeClasses, parseClasses, readClassesFile } from '../../lib/classes/classes';

t.test('index and colour class lists', async (t) => {
  const idx = parseClasses(
    {
      classes: [
        { name: 'background', value: 0 },
        { name: 'tumour', value: 2, color: '#ff0000' },
      ],
      ignore: { value: 255 },
    },
    'c.json',
  );
  t.equal(idx.kind, 'index');
  t.same(idx.classes[1], { name: 'tumour', value: 2, color: [255, 0, 0] });
  t.same(idx.classes[0].color, [0, 0, 0], 'palette colour when none given');
  t.same(idx.ignore, { value: 255 });
  const rgb = parseClasses(
    [
      { name: 'bg', rgb: '#000000' },
      { name: 'stroma', rgb: [0, 255, 0], color: '#00aa00' },
    ],
    'c.json',
  );
  t.equal(rgb.kind, 'rgb');
  t.same(rgb.classes[1].rgb, [0, 255, 0]);
  t.equal(describeClasses(rgb), 'bg=#000000, stroma=#00ff00');
  const def = parseClasses({ classes: [{ name: 'a' }, { name: 'b' }] }, 'c.json');
  t.same(
    def.classes.map((c) => c.value),
    [0, 1],
    'values default to the position',
  );
});

t.test('each mistake is one error naming the file and the entry', async (t) => {
  const bad: [unknown, RegExp][] = [
    [{ classes: [{ name: 'a', value: 0 }] }, /Expected 2 to 255 classes .* for "classes" in c\.json but received '1 classes'/],
    [
      {
        classes: [
          { name: 'a', value: 0 },
          { name: 'a', value: 1 },
        ],
      },
      /classes\[1\]\.name in c\.json/,
    ],
    [
      {
        classes: [
          { name: 'a', value: 0 },
          { name: 'b', rgb: '#ff0000' },
        ],
      },
      /classes\[1\] in c\.json.*not both|like the classes before it/,
    ],
    [
      {
        classes: [
          { name: 'a', value: 0 },
          { name: 'b', value: 0 },
        ],
      },
      /no other class has/,
    ],
    [
      {
        classes: [
          { name: 'a', value: 0 },
          { name: 'b', value: 1.5 },
        ],
      },
      /classes\[1\]\.value in c\.json/,
    ],
    [
      {
        classes: [
          { name: 'a', rgb: '#00000' },
          { name: 'b', rgb: '#ffffff' },
        ],
      },
      /classes\[0\]\.rgb in c\.json/,
    ],
    [
      {
        classes: [
          { name: 'a', value: 0 },
          { name: 'b', value: 1 },
        ],
        ignore: { value: 1 },
      },
      /not a class for ignore in c\.json/,
    ],
    [{ nope: 1 }, /"classes" array/],
  ];
  for (const [json, re] of bad) t.throws(() => parseClasses(json, 'c.json'), { code: 'ERR_PATHO_DATA', message: re }, String(re));
});

t.test('reading a file: missing, invalid JSON, valid', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-classes-'));
  const f = path.join(dir, 'classes.json');
  t.throws(() => readClassesFile(f), { code: 'ERR_PATHO_DATA', message: /Cannot read the class list .*classes\.json/ });
  fs.writeFileSync(f, '{ "classes": [ }');
  t.throws(() => readClassesFile(f), { code: 'ERR_PATHO_DATA', message: /classes\.json is not valid JSON/ });
  fs.writeFileSync(
    f,
    JSON.stringify({
      classes: [
        { name: 'bg', value: 0 },
        { name: 'n', value: 1 },
      ],
    }),
  );
  t.equal(readClassesFile(f).classes.length, 2);
  fs.rmSync(dir, { recursive: true });
});

t.test('--classes names and the class-count check', async (t) => {
  const l = classesFromNames(['background', 'interior', 'boundary']);
  t.same(
    l.classes.map((c) => [c.name, c.value]),
    [
      ['background', 0],
      ['interior', 1],
      ['boundary', 2],
    ],
  );
  t.throws(() => classesFromNames(['only']), { code: 'ERR_PATHO_USAGE', message: /--classes/ });
  t.throws(() => classesFromNames(['a', 'a']), { code: 'ERR_PATHO_USAGE' });
  t.throws(() => checkClassCount(l, 4, 'the checkpoint run/best.safetensors'), {
    code: 'ERR_PATHO_USAGE',
    message:
      /Expected 4 classes to match the checkpoint run\/best\.safetensors for the class list \(--classes: background, interior, boundary\) but received '3 classes'/,
  });
  checkClassCount(l, 3, 'the checkpoint');
});
