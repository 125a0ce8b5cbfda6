// Checkpoints and files that lie: NaN/Inf weights and negative running variances are refused at load
// naming the tensor; every patho.* metadata key is checked by a schema that names the key and the
// file (array __metadata__, normalization of the wrong shape, thresholds that are no list, absurd
// width/depth with the real limit, a config the tensors contradict); a torn last line of
// metrics.jsonl is cut on resume with a warning.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { readCheckpoint, saveCheckpoint } from '../../lib/nn/checkpoint';
import { encodeSafetensors, readSafetensors } from '../../lib/nn/safetensors';
import type { StateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { loadInferenceModel } from '../../lib/predict/load';
import { repairMetricsLog } from '../../lib/train/metrics-log';
import { Model } from '../../lib/train/model';
import { makeData, patho, root, tinyTrain } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-lies-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const good = path.join(tmp, 'good.safetensors');

t.before(async () => {
  const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 4 });
  await saveCheckpoint(good, net, {
    model: { kind: 'unet', ...net.config },
    epoch: 2,
    step: 10,
    normalization: { mean: [0.4], std: [0.2] },
    thresholds: [0.5, 0.7],
  });
  net.dispose();
});

/** The good checkpoint with its tensors and/or metadata changed, written as `name`. */
function variant(
  name: string,
  change: { tensors?: (s: StateDict) => void; meta?: Record<string, string | undefined>; rawMeta?: unknown },
): string {
  const f = readSafetensors(good);
  change.tensors?.(f.tensors);
  const md: Record<string, string> = { ...f.metadata };
  for (const [k, v] of Object.entries(change.meta ?? {})) {
    if (v === undefined) delete md[k];
    else md[k] = v;
  }
  let buf = encodeSafetensors(f.tensors, md);
  if (change.rawMeta !== undefined) {
    // rewrite the header with a __metadata__ that encodeSafetensors would not produce
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, unknown>;
    header.__metadata__ = change.rawMeta;
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    buf = Buffer.concat([len, h, buf.subarray(8 + n)]);
  }
  const file = path.join(tmp, name);
  fs.writeFileSync(file, buf);
  return file;
}
const setValue = (name: string, i: number, v: number) => (s: StateDict) => {
  (s.get(name)!.data as Float32Array)[i] = v;
};

t.test('NaN or Inf weights and a negative running variance are refused at load, naming the tensor', async (t) => {
  const cases: [string, (s: StateDict) => void, RegExp][] = [
    [
      'nan',
      setValue('encoder.0.conv1.weight', 5, NaN),
      /encoder\.0\.conv1\.weight: 1 of 36 values are not finite \(the first, at index 5, is NaN\)/,
    ],
    ['inf', setValue('head.bias', 0, -Infinity), /head\.bias: 1 of 1 values are not finite \(the first, at index 0, is -Infinity\)/],
    [
      'var',
      setValue('encoder.1.bn2.running_var', 3, -0.5),
      /encoder\.1\.bn2\.running_var: 1 of 8 values are negative \(a variance cannot be\)/,
    ],
  ];
  for (const [name, change, msg] of cases) {
    const file = variant(`${name}.safetensors`, { tensors: change });
    await t.rejects(
      loadInferenceModel(file),
      {
        code: 'ERR_PATHO_CHECKPOINT',
        message: new RegExp(`^${file} holds values no trained network has \\(1 problem\\):\\n  ${msg.source}$`),
      },
      `${name}: loadInferenceModel`,
    );
    const m = new Model(new UNet({ inChannels: 1, width: 4, depth: 2 }), { loadModel: file, checkpoint: false });
    await t.rejects(m.ready(), { code: 'ERR_PATHO_CHECKPOINT', message: msg }, `${name}: Model loadModel`);
    m.dispose();
  }
  const r = patho([
    'predict',
    '--model',
    path.join(tmp, 'var.safetensors'),
    '--input',
    path.join(root, 'data', 'membrane', 'images', '0.png'),
    '--out',
    path.join(tmp, 'p'),
  ]);
  t.equal(r.code, 1);
  t.match(r.stderr, /encoder\.1\.bn2\.running_var: 1 of 8 values are negative/);
  t.notOk(fs.existsSync(path.join(tmp, 'p', '0_prob.png')), 'no constant map written');
});

t.test('every patho.* key is checked, and the error names the key and the file', async (t) => {
  const cases: [string, Parameters<typeof variant>[1], RegExp][] = [
    ['array-meta', { rawMeta: ['{"kind":"unet"}'] }, /__metadata__ is not an object of strings \(received an array\)/],
    [
      'norm-shape',
      { meta: { 'patho.normalization': '{"mean":[0.4,0.4,0.4],"std":[0.2,0.2,0.2]}' } },
      /patho\.normalization: Expected 1 values in mean and std \(patho\.model's inChannels\) but received 3 and 3/,
    ],
    [
      'norm-scalar',
      { meta: { 'patho.normalization': '{"mean":0.4,"std":0.2}' } },
      /patho\.normalization: mean: Expected a list of finite numbers but received 0\.4/,
    ],
    [
      'norm-zero-std',
      { meta: { 'patho.normalization': '{"mean":[0.4],"std":[0]}' } },
      /patho\.normalization: std: Expected a list of positive numbers but received \[0\]/,
    ],
    [
      'thresholds-string',
      { meta: { 'patho.thresholds': '"0.5"' } },
      /patho\.thresholds: Expected a list of numbers in \[0, 1\] but received '0\.5'/,
    ],
    ['thresholds-object', { meta: { 'patho.thresholds': '{"0":0.5}' } }, /patho\.thresholds: Expected a list of numbers in \[0, 1\]/],
    [
      'width',
      { meta: { 'patho.model': '{"kind":"unet","inChannels":1,"outChannels":1,"width":100000,"depth":2}' } },
      /patho\.model: width: Expected an integer in \[1, 4096\] \(the largest a UNet of patho has\) but received 100000/,
    ],
    [
      'depth',
      { meta: { 'patho.model': '{"kind":"unet","inChannels":1,"outChannels":1,"width":4,"depth":40}' } },
      /patho\.model: depth: Expected an integer in \[1, 8\] \(the deepest UNet patho builds\) but received 40/,
    ],
    ['epoch', { meta: { 'patho.epoch': '-3' } }, /patho\.epoch: Expected a non-negative integer but received -3/],
    ['rng', { meta: { 'patho.rng': '[0,0,0,0]' } }, /patho\.rng: Expected four uint32 words, not all zero/],
    [
      'format',
      { meta: { 'patho.format': 'patho-checkpoint-9' } },
      /Expected patho\.format 'patho-checkpoint-1' \(what this patho reads\) but received 'patho-checkpoint-9'/,
    ],
    ['not-json', { meta: { 'patho.step': '{oops' } }, /metadata patho\.step is not valid JSON/],
  ];
  for (const [name, change, msg] of cases) {
    const file = variant(`${name}.safetensors`, change);
    t.throws(
      () => readCheckpoint(file),
      { code: 'ERR_PATHO_CHECKPOINT', message: new RegExp(`${file.replace(/[.]/g, '\\.')}[: ].*|${msg.source}`) },
      name,
    );
    t.throws(() => readCheckpoint(file), { message: msg }, `${name}: names the key`);
  }
  // the config the metadata states must be the one the tensors have, before a network is built from it
  const wider = variant('config.safetensors', {
    meta: { 'patho.model': '{"kind":"unet","inChannels":1,"outChannels":1,"width":4000,"depth":2}' },
  });
  await t.rejects(loadInferenceModel(wider), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: `${wider}: patho.model says width 4000 but its tensors are those of a UNet with width 4`,
  });
  // keys of a newer patho pass; the good file loads
  const newer = variant('newer.safetensors', { meta: { 'patho.somethingNew': '{"x":1}' } });
  const loaded = await loadInferenceModel(newer);
  t.same(loaded.normalization, { mean: [0.4], std: [0.2] });
  loaded.model.dispose();
});

t.test("repairMetricsLog keeps whole lines of the checkpoint's steps (hand-made logs)", async (t) => {
  const f = path.join(tmp, 'metrics.jsonl');
  const line = (epoch: number, step: number) => JSON.stringify({ epoch, step, trainLoss: 1 });
  const warned: string[] = [];
  fs.writeFileSync(f, `${line(1, 4)}\n${line(2, 8)}\n{"epoch":3,"st`);
  t.match(
    repairMetricsLog(f, 8, (m) => warned.push(m)),
    /dropped a torn last line \(14 bytes, cut off when a run was killed\)$/,
  );
  t.equal(fs.readFileSync(f, 'utf8'), `${line(1, 4)}\n${line(2, 8)}\n`);
  fs.writeFileSync(f, `${line(1, 4)}\n${line(2, 8)}\n${line(3, 12)}\n`);
  t.match(
    repairMetricsLog(f, 8, (m) => warned.push(m)),
    /dropped 1 line of steps after the checkpoint's step 8 \(they will be trained again\)$/,
  );
  t.equal(fs.readFileSync(f, 'utf8'), `${line(1, 4)}\n${line(2, 8)}\n`);
  t.equal(
    repairMetricsLog(f, 8, (m) => warned.push(m)),
    null,
    'a clean log is left alone',
  );
  t.equal(warned.length, 2);
  t.equal(
    repairMetricsLog(path.join(tmp, 'none.jsonl'), 0, () => t.fail('no warning')),
    null,
    'no log, nothing to do',
  );
});

t.test('patho train --resume cuts a torn last line of metrics.jsonl, with a warning', async (t) => {
  const data = await makeData(path.join(tmp, 'data'));
  const out = path.join(tmp, 'run');
  t.equal(patho(tinyTrain(data, out, ['--epochs', '1'])).code, 0);
  const log = path.join(out, 'metrics.jsonl');
  fs.appendFileSync(log, '{"epoch":2,"step":4,"trainLo'); // killed mid-append
  const r = patho(tinyTrain(data, out, ['--resume', path.join(out, 'last.safetensors')]));
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, `patho: warning: ${log}: dropped a torn last line (28 bytes, cut off when a run was killed)`);
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  t.equal(lines.pop(), '', 'ends with a newline');
  t.same(
    lines.map((l) => (JSON.parse(l) as { epoch: number }).epoch),
    [1, 2],
    'every line parses: epoch 1, then the resumed epoch 2',
  );
});
