// Data loss, class "predict outputs collide", and the inputs predict accepts: x.png, x.tif and x.jpg
// in one folder get distinct outputs (the extension kept in the stem), each from its own image;
// an output that would overwrite an input is refused before anything is written; only regular
// files are inputs (a FIFO named a.png would block forever); evaluate --plot at a folder is one line.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { readImage } from '../../lib/data/decode';
import { saveCheckpoint } from '../../lib/nn/checkpoint';
import { UNet } from '../../lib/nn/unet';
import { outputStems } from '../../lib/predict/output-names';
import { makeData, patho, root } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-predout-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, 'm.safetensors');
const images = path.join(tmp, 'in');

t.before(async () => {
  const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 3 });
  await saveCheckpoint(model, net, {
    model: { kind: 'unet', ...net.config },
    epoch: 1,
    step: 1,
    normalization: { mean: [0.5], std: [0.2] },
    thresholds: [0.5],
  });
  net.dispose();
  fs.mkdirSync(images);
  // three different images sharing the stem x, in three formats
  const src = (i: number) =>
    sharp(path.join(root, 'data', 'membrane', 'images', `${i}.png`))
      .extract({ left: 0, top: 0, width: 64, height: 64 })
      .toColourspace('b-w');
  await src(0).png().toFile(path.join(images, 'x.png'));
  await src(1).tiff().toFile(path.join(images, 'x.tif'));
  await src(2).jpeg({ quality: 100 }).toFile(path.join(images, 'x.jpg'));
  await src(3).png().toFile(path.join(images, 'y.png'));
});

const predict = (input: string, out: string, more: string[] = []) =>
  patho(['predict', '--model', model, '--input', input, '--out', out, '--tile', '64', ...more]);

t.test('x.png, x.tif and x.jpg get outputs of their own, each from its own image', async (t) => {
  const out = path.join(tmp, 'out');
  const r = predict(images, out, ['--overlay']);
  t.equal(r.code, 0, r.stderr);
  t.same(
    fs.readdirSync(out).sort(),
    ['x.jpg', 'x.png', 'x.tif']
      .flatMap((n) => [`${n}_mask.png`, `${n}_overlay.png`, `${n}_prob.png`])
      .concat(['y_mask.png', 'y_overlay.png', 'y_prob.png'])
      .sort(),
    'nine outputs for x (extension kept), y keeps its stem',
  );
  // each one is what predicting that file alone gives
  for (const name of ['x.png', 'x.tif', 'x.jpg']) {
    const alone = path.join(tmp, `alone-${name}`);
    t.equal(predict(path.join(images, name), alone).code, 0);
    t.same(
      fs.readFileSync(path.join(out, `${name}_prob.png`)),
      fs.readFileSync(path.join(alone, 'x_prob.png')),
      `${name}_prob.png is ${name}'s`,
    );
  }
  const probs = ['x.png', 'x.tif', 'x.jpg'].map((n) => fs.readFileSync(path.join(out, `${n}_prob.png`)).toString('base64'));
  t.equal(new Set(probs).size, 3, 'three different maps');
});

t.test('outputs that would overwrite an input are refused before anything is written', async (t) => {
  const dir = path.join(tmp, 'same');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(images, 'y.png'), path.join(dir, 'y.png'));
  fs.copyFileSync(path.join(images, 'x.png'), path.join(dir, 'y_prob.png')); // an image that happens to be named like an output
  const r = predict(dir, dir);
  t.equal(r.code, 2);
  t.match(r.stderr, `the output ${path.join(dir, 'y_prob.png')} would overwrite an input image; give --out another folder`);
  t.same(fs.readdirSync(dir).sort(), ['y.png', 'y_prob.png'], 'nothing written');
  t.throws(() => outputStems(['/a/X.png', '/b/x.PNG'], '/o'), {
    code: 'ERR_PATHO_USAGE',
    message: /\/a\/X\.png and \/b\/x\.PNG would write the same outputs/,
  });
  t.same(
    outputStems(['/a/Q.png', '/a/q.tif', '/a/r.png'], '/o'),
    ['Q.png', 'q.tif', 'r'],
    'stems that differ only in case collide on some filesystems',
  );
});

t.test('only regular files are inputs: a FIFO named a.png is refused at once', async (t) => {
  const dir = path.join(tmp, 'fifo');
  fs.mkdirSync(dir);
  const fifo = path.join(dir, 'a.png');
  execFileSync('mkfifo', [fifo]);
  fs.copyFileSync(path.join(images, 'y.png'), path.join(dir, 'b.png'));
  const direct = patho(['predict', '--model', model, '--input', fifo, '--out', path.join(tmp, 'f1'), '--tile', '64'], { timeout: 60_000 });
  t.equal(direct.signal, null, 'not killed by the timeout: it did not hang');
  t.equal(direct.code, 2);
  t.match(direct.stderr, `Expected an image file or a folder for --input but '${fifo}' is a FIFO`);
  const inFolder = predict(dir, path.join(tmp, 'f2'));
  t.equal(inFolder.signal, null);
  t.equal(inFolder.code, 2);
  t.match(inFolder.stderr, `Expected regular image files in the folder given by --input but '${dir}' holds a.png (a FIFO)`);
  t.notOk(fs.existsSync(path.join(tmp, 'f2', 'b_prob.png')), 'refused before anything was written');
  // the library's reader too (a FIFO would block sharp forever)
  await t.rejects(readImage(fifo), { code: 'ERR_PATHO_DATA', message: `Expected an image file for ${fifo} but it is a FIFO` });
});

t.test('evaluate --plot at a folder is one line, not libvips noise', async (t) => {
  const data = await makeData(path.join(tmp, 'evaldata'), 2);
  const plotDir = path.join(tmp, 'plot.png');
  fs.mkdirSync(plotDir);
  const r = patho(['evaluate', '--model', model, '--data', data, '--tile', '64', '--plot', plotDir]);
  t.equal(r.code, 2);
  t.equal(r.stderr, `patho evaluate: Expected a file to write for --plot (e.g. dice.png) but '${plotDir}' is a folder\n`);
});
