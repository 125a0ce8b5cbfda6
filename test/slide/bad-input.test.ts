// Slides that cannot be read give one error naming the file and what was expected: truncated,
// not a TIFF, empty, JPEG 2000 tiles without OpenSlide (the message says OpenSlide reads them),
// vendor formats without OpenSlide. OpenSlide is switched off in a child process by pointing
// PATHO_OPENSLIDE_PATH at a file that does not exist.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { openSlide } from '../../lib/slide/open';
import { openSlideInfo } from '../../lib/slide/openslide';
import { readTiffInfo } from '../../lib/slide/tiff';
import { patchShortTag, writeSlide } from './fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-slide-bad-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const root = path.resolve(__dirname, '../..');

/** Runs openSlide(file) in a child process with the given environment; returns its error or 'ok'. */
function openInChild(
  file: string,
  env: Record<string, string>,
): { out: string; info: { available: boolean; error: string | null; tried: string[] } } {
  const code = `
    const { openSlide } = require(${JSON.stringify(path.join(root, 'lib/slide/open'))});
    const { openSlideInfo } = require(${JSON.stringify(path.join(root, 'lib/slide/openslide'))});
    openSlide(${JSON.stringify(file)}).then((s) => { s.close(); return 'ok'; }, (e) => e.code + ' ' + e.message)
      .then((out) => process.stdout.write(JSON.stringify({ out, info: openSlideInfo() })));`;
  // the child loads TypeScript the way this test process does (tap's import hook)
  const r = spawnSync(process.execPath, [...process.execArgv.filter((a) => a.includes('typescript')), '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ReturnType<typeof openInChild>;
}

t.test('truncated, corrupt and empty files', async (t) => {
  const good = path.join(tmp, 'good.tif');
  await writeSlide(good, { width: 600, height: 500, compression: 'deflate' });
  const bytes = fs.readFileSync(good);
  const cut = path.join(tmp, 'cut.tif');
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  await t.rejects(openSlide(cut), {
    code: 'ERR_PATHO_SLIDE',
    message: /cut.tif: Expected (a readable TIFF|a complete slide) but .*truncated/,
  });
  const junk = path.join(tmp, 'junk.svs');
  fs.writeFileSync(junk, Buffer.alloc(4096, 7));
  await t.rejects(openSlide(junk), {
    code: 'ERR_PATHO_SLIDE',
    message: /junk.svs: Expected a TIFF-based slide \(.svs\) but the file does not start like a TIFF/,
  });
  const empty = path.join(tmp, 'empty.svs');
  fs.writeFileSync(empty, '');
  await t.rejects(openSlide(empty), /empty.svs: Expected a slide but the file is empty/);
  await t.rejects(openSlide(path.join(tmp, 'nope.svs')), /Expected a slide file but '.*nope.svs' does not exist/);
  const badMagic = path.join(tmp, 'magic.tif');
  fs.writeFileSync(badMagic, Buffer.concat([Buffer.from('II'), Buffer.from([99, 0]), Buffer.alloc(100)]));
  t.throws(() => readTiffInfo(badMagic), /magic.tif: Expected a readable TIFF but its version number is 99/);
});

t.test('JPEG 2000 tiles: sharp cannot decode them and the error says OpenSlide reads them', async (t) => {
  const j2k = path.join(tmp, 'j2k.svs');
  await writeSlide(j2k, { width: 600, height: 500, compression: 'jpeg' });
  patchShortTag(j2k, 0, 259, 33003); // Aperio's JPEG 2000 YCbCr
  await t.rejects(openSlide(j2k, { reader: 'sharp' }), {
    code: 'ERR_PATHO_SLIDE',
    message:
      /j2k.svs: Expected a TIFF compression sharp\/libvips decodes but its tiles use JPEG 2000 \(Aperio YCbCr\) \(TIFF compression 33003\)\. OpenSlide reads it/,
  });
  const off = openInChild(j2k, { PATHO_OPENSLIDE_PATH: path.join(tmp, 'no-such-libopenslide.so') });
  t.equal(off.info.available, false);
  t.match(off.info.tried[0], /no-such-libopenslide.so: /, 'doctor can show where it looked');
  t.match(
    off.out,
    /^ERR_PATHO_SLIDE .*j2k.svs: .*JPEG 2000.*OpenSlide reads it: install it \(Debian\/Ubuntu: apt-get install libopenslide0/,
  );
  if (openSlideInfo().available) {
    // with OpenSlide present the file goes to it; the fake JPEG 2000 data then fails inside OpenSlide, still one clear error
    const r = await openSlide(j2k).then(
      async (s) => {
        try {
          await s.readRegion({ x: 0, y: 0, width: 64, height: 64 });
          return 'read';
        } finally {
          s.close();
        }
      },
      (e: Error) => e.message,
    );
    t.ok(typeof r === 'string', `with OpenSlide: ${r.slice(0, 120)}`);
  }
});

t.test('vendor formats need OpenSlide', async (t) => {
  const ndpi = path.join(tmp, 'scan.ndpi');
  fs.writeFileSync(ndpi, Buffer.alloc(64, 1));
  const off = openInChild(ndpi, { PATHO_OPENSLIDE_PATH: '/nonexistent/libopenslide.so.1' });
  t.match(
    off.out,
    /^ERR_PATHO_SLIDE .*scan.ndpi: a .ndpi slide is read by OpenSlide, which is not available \(PATHO_OPENSLIDE_PATH=\/nonexistent\/libopenslide.so.1 does not hold a loadable OpenSlide library\)\. Install it/,
  );
  if (openSlideInfo().available) {
    await t.rejects(openSlide(ndpi), {
      code: 'ERR_PATHO_SLIDE',
      message: /scan.ndpi: (Expected a slide format OpenSlide .* recognises|OpenSlide could not open it)/,
    });
  }
  await t.rejects(openSlide(ndpi, { reader: 'sharp' }), /Expected a format sharp reads but .ndpi slides are read by OpenSlide only/);
});
