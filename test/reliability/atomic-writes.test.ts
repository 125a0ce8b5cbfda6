// Data loss, class "output files left truncated": every file patho writes goes through one atomic
// writer (temp name in the same folder, fsync, rename), a failed write leaves the old file and no
// temporary, temporaries of killed writers are cleaned at the next start, and lib/ has no other
// way of writing an output file.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { AtomicStream, cleanStaleTemps, tempPathFor, writeAtomic, writeFileAtomic } from '../../lib/atomic-write';
import { writeGrey } from '../../lib/predict/image';
import { plotDiceCurve } from '../../lib/plot';
import { root } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-atomic-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A pid that certainly ran and is gone: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

t.test('writeFileAtomic replaces the file whole and leaves nothing else', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
  const f = path.join(dir, 'a.json');
  writeFileAtomic(f, '{"v":1}\n');
  writeFileAtomic(f, Buffer.from('{"v":2}\n'));
  t.equal(fs.readFileSync(f, 'utf8'), '{"v":2}\n');
  t.same(fs.readdirSync(dir), ['a.json'], 'no temporary left');
  const nested = path.join(dir, 'sub', 'deeper', 'b.txt');
  writeFileAtomic(nested, 'x');
  t.equal(fs.readFileSync(nested, 'utf8'), 'x', 'missing folders are created');
});

t.test('AtomicStream: pieces under a temporary name, the final name only on commit; discard leaves the old file', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'stream-'));
  const file = path.join(dir, 'objects.csv');
  fs.writeFileSync(file, 'old\n');
  const s = new AtomicStream(file);
  s.write('id,area\n');
  s.write('1,12\n');
  t.equal(fs.readFileSync(file, 'utf8'), 'old\n', 'the old file until commit');
  t.equal(fs.readdirSync(dir).length, 2, 'the temporary beside it');
  s.commit();
  t.equal(fs.readFileSync(file, 'utf8'), 'id,area\n1,12\n');
  t.same(fs.readdirSync(dir), ['objects.csv'], 'no temporary left');
  t.throws(() => s.write('2,3\n'), { code: 'ERR_PATHO_OUTPUT', message: /objects\.csv: it was already closed/ });
  const d = new AtomicStream(file);
  d.write('half');
  d.discard();
  t.equal(fs.readFileSync(file, 'utf8'), 'id,area\n1,12\n', 'a discarded stream leaves the file as it was');
  t.same(fs.readdirSync(dir), ['objects.csv']);
  t.throws(() => new AtomicStream(dir), { code: 'ERR_PATHO_OUTPUT', message: /it is a folder/ });
});

t.test('a write that fails half-way leaves the old file as it was and no temporary', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'fail-'));
  const f = path.join(dir, 'x_overlay.png');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#204080' } })
    .png()
    .toFile(f);
  const before = fs.readFileSync(f);
  // the writer gets as far as half a file, then the disk is full
  await t.rejects(
    writeAtomic(f, (tmpFile) => {
      fs.writeFileSync(tmpFile, before.subarray(0, before.length >> 1));
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    }),
    { code: 'ERR_PATHO_OUTPUT', message: `Could not write ${f}: ENOSPC` },
  );
  t.same(fs.readFileSync(f), before, 'the old PNG is intact');
  t.same(fs.readdirSync(dir), ['x_overlay.png'], 'the half-written temporary is gone');
  await sharp(f).stats(); // still decodes
  // libvips failing inside sharp: one line, not its multi-line report
  await t.rejects(writeGrey(new Uint8Array(3), 8, 8, f), {
    code: 'ERR_PATHO_OUTPUT',
    message: /^Could not write .*x_overlay\.png: [^\n]*$/,
  });
  t.same(fs.readFileSync(f), before);
  t.same(fs.readdirSync(dir), ['x_overlay.png']);
});

t.test('a folder in the way of an output is one clear error', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'dir-'));
  fs.mkdirSync(path.join(dir, 'curve.png'));
  t.throws(() => writeFileAtomic(path.join(dir, 'curve.png'), 'x'), {
    code: 'ERR_PATHO_OUTPUT',
    message: `Could not write ${path.join(dir, 'curve.png')}: it is a folder`,
  });
  await t.rejects(plotDiceCurve([{ threshold: 0.5, dice: 0.5 }], path.join(dir, 'curve.png')), {
    code: 'ERR_PATHO_OUTPUT',
    message: /it is a folder$/,
  });
  t.same(fs.readdirSync(dir), ['curve.png']);
});

t.test("temporaries of a dead writer are removed; a live writer's and other files are not", async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'stale-'));
  const dead = deadPid();
  const names = {
    dead: `.last.safetensors.${dead}.lq2x0.tmp`,
    deadPng: `.x_prob.png.${dead}.abc1.tmp`,
    live: path.basename(tempPathFor(path.join(dir, 'best.safetensors'))), // this process: alive
    foreign: '.something.tmp',
    user: 'notes.123.456.tmp',
    data: 'last.safetensors',
  };
  for (const n of Object.values(names)) fs.writeFileSync(path.join(dir, n), 'x');
  t.match(
    names.live,
    new RegExp(`^\\.best\\.safetensors\\.${process.pid}\\.[0-9a-z]+\\.tmp$`),
    'the temporary names the final file and the pid',
  );
  const removed = cleanStaleTemps(dir);
  t.same(removed.sort(), [names.dead, names.deadPng].sort());
  t.same(fs.readdirSync(dir).sort(), [names.live, names.foreign, names.user, names.data].sort());
  t.same(cleanStaleTemps(path.join(dir, 'missing')), [], 'a missing folder is not an error');
});

// Every way lib/ could write a file, and the few that are allowed not to go through atomic-write.ts.
const ALLOWED: Record<string, RegExp[]> = {
  'atomic-write.ts': [/.*/], // the writer itself
  'train/trainer.ts': [/appendFileSync\(metricsFile/], // one line per epoch; a torn line is repaired on resume (metrics-log.ts)
  'cli/args.ts': [/writeFileSync\(probe, ''\)/], // the writability probe, removed at once
  'addon-loader.ts': [/writeFileSync\(tmp, JSON/, /renameSync\(tmp, f\)/], // a cache entry, renamed into place (not an output)
};
// a writer handed to writeAtomic(file, (tmp) => ...) writes the temporary it is given
const INTO_TEMP = /\.toFile\(tmp\)\)?[;,]?$/;

t.test('lib/ writes output files only through atomic-write.ts', async (t) => {
  const lib = path.join(root, 'lib');
  const files = (fs.readdirSync(lib, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const found: string[] = [];
  for (const f of files) {
    const rel = f.split(path.sep).join('/');
    const src = fs.readFileSync(path.join(lib, f), 'utf8');
    for (const m of src.matchAll(
      /^.*\b(writeFileSync|writeFile|appendFileSync|appendFile|createWriteStream|toFile|renameSync|copyFileSync)\s*\(.*$/gm,
    )) {
      if ((ALLOWED[rel] ?? []).some((re) => re.test(m[0])) || INTO_TEMP.test(m[0].trim())) continue;
      found.push(`${rel}: ${m[0].trim()}`);
    }
  }
  // the rename that completes a checkpoint pair (checkpoint.ts) renames a file written atomically
  t.same(
    found.filter((l) => !/^nn\/checkpoint\.ts: +fs\.renameSync\(pending, optimizerSidecar\(file\)\);$/.test(l)),
    [],
    'no raw write outside atomic-write.ts',
  );
  t.ok(files.length > 50, `${files.length} files scanned`);
});
