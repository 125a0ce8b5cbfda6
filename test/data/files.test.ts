// Pairing by file stem: extensions may differ, numeric-aware order, strays and duplicates reported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { pairFolders } from '../../lib/data/files';

const touch = (dir: string, names: string[]): void => {
  for (const n of names) {
    fs.mkdirSync(path.dirname(path.join(dir, n)), { recursive: true });
    fs.writeFileSync(path.join(dir, n), '');
  }
};

t.test('pairs by stem across extensions, ignores hidden/other files, sorts 2 before 10', async (t) => {
  const dir = t.testdir();
  touch(dir, [
    'images/10.tif',
    'images/2.png',
    'images/a.JPG',
    'images/.hidden.png',
    'images/notes.txt',
    'masks/10.png',
    'masks/2.png',
    'masks/a.png',
    'masks/Thumbs.db',
  ]);
  fs.mkdirSync(path.join(dir, 'images/sub.png'));
  const { pairs, problems } = pairFolders(path.join(dir, 'images'), path.join(dir, 'masks'));
  t.same(problems, []);
  t.same(
    pairs.map((p) => p.stem),
    ['2', '10', 'a'],
  );
  t.same(
    pairs.map((p) => path.basename(p.image)),
    ['2.png', '10.tif', 'a.JPG'],
  );
  t.same(
    pairs.map((p) => path.basename(p.mask)),
    ['2.png', '10.png', 'a.png'],
  );
});

t.test('image without mask, mask without image, duplicate stems: every one listed', async (t) => {
  const dir = t.testdir();
  touch(dir, ['images/a.png', 'images/b.png', 'images/c.png', 'images/c.tif', 'masks/a.png', 'masks/c.png', 'masks/z.png']);
  const { pairs, problems } = pairFolders(path.join(dir, 'images'), path.join(dir, 'masks'));
  t.same(
    pairs.map((p) => p.stem),
    ['a'],
  );
  const byReason = problems.map((p) => [p.files.map((f) => path.relative(dir, f)), p.reason.split(' (')[0]]);
  t.same(
    byReason.sort(),
    [
      [['images/b.png'], 'image without a mask'],
      [['images/c.png', 'images/c.tif'], "several images share the stem 'c'"],
      [['masks/z.png'], 'mask without an image'],
    ].sort(),
  );
});

t.test('empty and missing folders', async (t) => {
  const dir = t.testdir({ images: { 'x.txt': '' }, masks: { 'a.png': '' } });
  t.throws(() => pairFolders(path.join(dir, 'images'), path.join(dir, 'masks')), { code: 'ERR_PATHO_DATA', message: /found none/ });
  t.throws(() => pairFolders(path.join(dir, 'nope'), path.join(dir, 'masks')), { code: 'ERR_PATHO_DATA', message: /nope/ });
});
