// The fuzzed-checkpoint test: 227 mutants of a real patho checkpoint (seed fixed), random byte-level
// and structured (header length, offsets, dtypes, shapes, metadata keys, values), each loaded in a
// child process as `patho predict` loads a model. Every load must end without a signal or a hang,
// in a coded error or in a correct load (the weights read back are the bytes the file places at
// each tensor's offsets, all finite); a file the format's rules (an oracle written here, apart from
// lib/) call invalid must be refused, and mutants built to be wrong must be refused.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { saveCheckpoint } from '../../lib/nn/checkpoint';
import { UNet } from '../../lib/nn/unet';
import { Rng } from '../../lib/rng';
import { scope, Tensor } from '../../lib/tensor';
import { ensureDist } from '../parallel/fixtures/ensure-dist';

const SEED = 13;
const PER_MUTANT_MS = 20_000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-fuzz-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SIZES: Record<string, number> = { F32: 4, I64: 8, F64: 8, F16: 2, BF16: 2, I32: 4, U8: 1, BOOL: 1, I8: 1, I16: 2 };

/** The safetensors format's rules, written apart from lib/: null when `buf` keeps them, else which one it breaks. */
export function formatViolation(buf: Buffer): string | null {
  if (buf.length < 8) return 'HeaderTooSmall';
  const n = buf.readBigUInt64LE(0);
  if (n > 100_000_000n) return 'HeaderTooLarge';
  if (Number(n) + 8 > buf.length) return 'InvalidHeaderLength';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + Number(n)));
  } catch {
    return 'InvalidHeader';
  }
  if (text[0] !== '{') return 'InvalidHeaderStart';
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return 'InvalidHeaderDeserialization';
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return 'InvalidHeaderDeserialization';
  const spans: [number, number][] = [];
  for (const [k, v] of Object.entries(h)) {
    if (k === '__metadata__') {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v) || Object.values(v as object).some((x) => typeof x !== 'string'))
        return 'metadata not a map of strings';
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !(e.dtype in SIZES)) return 'unknown dtype';
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return 'bad shape';
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every((x) => Number.isSafeInteger(x) && x >= 0) || o[0] > o[1]) return 'InvalidOffset';
    const numel = (e.shape as number[]).reduce((a, d) => a * BigInt(d), 1n) as bigint;
    if (numel * BigInt(SIZES[e.dtype]) !== BigInt(o[1] - o[0])) return 'TensorInvalidInfo';
    spans.push([o[0], o[1]]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [b, e] of spans) {
    if (b !== at) return 'InvalidOffset';
    at = e;
  }
  return at + 8 + Number(n) === buf.length ? null : 'MetadataIncompleteBuffer';
}

interface Mutant {
  name: string;
  bytes: Buffer;
  /** built to be wrong in a way patho must refuse (beyond the format's rules) */
  mustFail?: boolean;
}

function splitFile(buf: Buffer): {
  n: number;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> & { __metadata__: Record<string, string> };
  data: Buffer;
} {
  const n = Number(buf.readBigUInt64LE(0));
  return { n, header: JSON.parse(buf.subarray(8, 8 + n).toString()), data: buf.subarray(8 + n) };
}
function joinFile(header: unknown, data: Buffer, n?: number): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n ?? h.length));
  return Buffer.concat([len, h, data]);
}

/** 227 mutants: 110 byte-level at random places, 117 structured (each kind several times, at random tensors/keys). */
function mutants(base: Buffer, rng: Rng): Mutant[] {
  const out: Mutant[] = [];
  const { n, header, data } = splitFile(base);
  const names = Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort();
  const f32 = names.filter((k) => header[k].dtype === 'F32');
  const pick = <T>(a: T[]): T => a[rng.int(a.length)];
  const clone = () => JSON.parse(JSON.stringify(header)) as typeof header;
  const withMeta = (key: string, value: string | undefined, mustFail = true): Mutant => {
    const h = clone();
    if (value === undefined) delete h.__metadata__[key];
    else h.__metadata__[key] = value;
    return { name: `meta ${key}=${value}`, bytes: joinFile(h, data), mustFail };
  };
  // byte level
  for (let i = 0; i < 40; i++) {
    const b = Buffer.from(base);
    const k = 1 + rng.int(8);
    for (let j = 0; j < k; j++) b[rng.int(b.length)] = rng.int(256);
    out.push({ name: `flip ${k} bytes anywhere`, bytes: b });
  }
  for (let i = 0; i < 25; i++) {
    const b = Buffer.from(base);
    b[8 + rng.int(n)] = rng.int(256);
    out.push({ name: 'flip a header byte', bytes: b });
  }
  for (let i = 0; i < 15; i++) out.push({ name: 'truncate', bytes: base.subarray(0, rng.int(base.length)) });
  for (let i = 0; i < 10; i++) {
    const at = rng.int(base.length);
    out.push({
      name: 'insert bytes',
      bytes: Buffer.concat([
        base.subarray(0, at),
        Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.int(256))),
        base.subarray(at),
      ]),
    });
  }
  for (let i = 0; i < 10; i++) {
    const at = rng.int(base.length - 16);
    out.push({ name: 'delete bytes', bytes: Buffer.concat([base.subarray(0, at), base.subarray(at + 1 + rng.int(16))]) });
  }
  for (let i = 0; i < 10; i++)
    out.push({ name: 'append junk', bytes: Buffer.concat([base, Buffer.alloc(1 + rng.int(64), rng.int(256))]), mustFail: true });
  // structured: the length field
  for (const d of [-8, -2, -1, 1, 2, 8]) {
    const b = Buffer.from(base);
    b.writeBigUInt64LE(BigInt(n + d));
    out.push({ name: `header length ${d > 0 ? '+' : ''}${d}`, bytes: b, mustFail: true });
  }
  for (const v of [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_001n]) {
    const b = Buffer.from(base);
    b.writeBigUInt64LE(v);
    out.push({ name: `header length ${v}`, bytes: b, mustFail: true });
  }
  // structured: tensor entries
  for (let i = 0; i < 8; i++) {
    const h = clone();
    const k = pick(names);
    h[k].data_offsets = h[k].data_offsets.map((o) => o + 1 + rng.int(8));
    out.push({ name: `shift offsets of ${k}`, bytes: joinFile(h, data), mustFail: true });
  }
  for (let i = 0; i < 8; i++) {
    const h = clone();
    const [a, b] = [pick(names), pick(names)];
    [h[a].data_offsets, h[b].data_offsets] = [h[b].data_offsets, h[a].data_offsets];
    out.push({ name: `swap offsets of ${a} and ${b}`, bytes: joinFile(h, data) }); // valid format when the sizes agree
  }
  for (let i = 0; i < 8; i++) {
    const h = clone();
    const k = pick(names);
    h[k].dtype = pick(['F16', 'BF16', 'F64', 'I32', 'U8', 'I64', 'Q8', 'f32', '']);
    out.push({ name: `dtype of ${k} -> ${h[k].dtype}`, bytes: joinFile(h, data), mustFail: true });
  }
  for (let i = 0; i < 8; i++) {
    const h = clone();
    const k = pick(f32);
    const s = [...h[k].shape];
    s[rng.int(Math.max(1, s.length))] = pick([0, -1, 2 ** 31, 2 ** 53, 1.5, 7]);
    h[k].shape = s;
    out.push({ name: `shape of ${k} -> [${s}]`, bytes: joinFile(h, data), mustFail: true });
  }
  for (let i = 0; i < 5; i++) {
    const h = clone();
    const k = pick(names);
    delete (h as Record<string, unknown>)[k];
    out.push({ name: `tensor ${k} removed from the header`, bytes: joinFile(h, data), mustFail: true });
  }
  const conv = f32.filter((k) => header[k].shape.length > 1);
  for (let i = 0; i < 4; i++) {
    const h = clone();
    const k = pick(conv);
    const [b, e] = h[k].data_offsets;
    h[k].shape = [(e - b) / 4];
    out.push({ name: `shape of ${k} flattened`, bytes: joinFile(h, data), mustFail: true });
  }
  // structured: values
  const value = (k: string, v: number, mustFail = true): Mutant => {
    const d = Buffer.from(data);
    const [b, e] = header[k].data_offsets;
    d.writeFloatLE(v, b + 4 * rng.int((e - b) / 4));
    return { name: `${v} in ${k}`, bytes: joinFile(header, d, n), mustFail };
  };
  for (let i = 0; i < 6; i++) out.push(value(pick(f32), NaN), value(pick(f32), pick([Infinity, -Infinity])));
  const vars = f32.filter((k) => k.endsWith('running_var'));
  for (let i = 0; i < 6; i++) out.push(value(pick(vars), -0.25), value(pick(f32), 1e-3, false));
  // structured: metadata
  const model = JSON.parse(header.__metadata__['patho.model']) as Record<string, unknown>;
  for (const v of [
    '[1,2]',
    '"unet"',
    'null',
    '{}',
    JSON.stringify({ ...model, width: 100000 }),
    JSON.stringify({ ...model, depth: 0 }),
    JSON.stringify({ ...model, depth: 3 }),
    JSON.stringify({ ...model, width: 8 }),
    JSON.stringify({ ...model, inChannels: 3 }),
    JSON.stringify({ ...model, outChannels: 2.5 }),
  ]) {
    out.push(withMeta('patho.model', v, v !== '{}')); // {}: no kind, so the config comes from the tensors
  }
  for (const v of [
    '[0.5]',
    '{"mean":[0.5,0.5],"std":[0.2,0.2]}',
    '{"mean":0.5,"std":0.2}',
    '{"mean":[0.5],"std":[-1]}',
    '{"mean":["a"],"std":[1]}',
    '"none"',
  ]) {
    out.push(withMeta('patho.normalization', v));
  }
  for (const v of ['"0.5"', '{"a":0.5}', '[]', '[1.5]', '[null]', '0.5']) out.push(withMeta('patho.thresholds', v));
  for (const [k, v] of [
    ['patho.epoch', '-1'],
    ['patho.step', '1.5'],
    ['patho.rng', '[0,0,0,0]'],
    ['patho.rng', '[1,2,3]'],
    ['patho.bestDice', '7'],
    ['patho.loader', '[1]'],
    ['patho.format', 'patho-checkpoint-0'],
    ['patho.optimizer', '"adam"'],
    ['patho.schedule', '3'],
    ['patho.run', '""'],
    ['patho.stepsPerEpoch', '0'],
    ['patho.loss', '{}'],
    ['patho.step', 'not json'],
  ] as const) {
    out.push(withMeta(k, v));
  }
  out.push(withMeta('patho.somethingNew', '{"fine":true}', false), withMeta('patho.loss', undefined, false));
  for (const meta of [['patho.model'], [1, 2], 'text', 7]) {
    const h = clone() as unknown as Record<string, unknown>;
    h.__metadata__ = meta;
    out.push({ name: `__metadata__ = ${JSON.stringify(meta)}`, bytes: joinFile(h, data), mustFail: true });
  }
  return out;
}

interface Result {
  file: string;
  i: number;
  ok: boolean;
  code?: string;
  message?: string;
  wrong?: string[];
  nonFinite?: number;
  tensors?: number;
}

/** Loads files in child processes, many per child; a child that dies or stalls is replaced, naming the file. */
async function loadAll(files: string[]): Promise<{ results: Map<string, Result>; crashes: string[]; hangs: string[] }> {
  const results = new Map<string, Result>();
  const crashes: string[] = [];
  const hangs: string[] = [];
  let next = 0;
  while (next < files.length) {
    const batch = files.slice(next);
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'fuzz-child.js'), ...batch], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hangs.push(batch[results.size - next] ?? '?');
        child.kill('SIGKILL');
      }, PER_MUTANT_MS);
    };
    arm();
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(buf.slice(0, nl)) as Result;
        buf = buf.slice(nl + 1);
        results.set(r.file, r);
        arm();
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.on('close', (c, s) => res({ code: c, signal: s })),
    );
    clearTimeout(timer!);
    const done = results.size;
    if (done < files.length) {
      const culprit = files[done];
      if (signal !== 'SIGKILL' || !hangs.includes(culprit))
        crashes.push(`${path.basename(culprit)}: code ${code} signal ${signal} ${stderr.slice(0, 300)}`);
      results.set(path.basename(culprit), { file: path.basename(culprit), i: -1, ok: false, code: signal ?? `exit ${code}` });
      next = done + 1;
    } else {
      next = done;
    }
  }
  return { results, crashes, hangs };
}

t.test(`${SEED}-seeded mutants of a real checkpoint: coded errors or correct loads, never a crash or hang`, async (t) => {
  ensureDist();
  // a real checkpoint: a width-4 depth-2 UNet after two Adam steps, saved as `patho train` saves
  const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 5 });
  const x = Tensor.fromArray(
    Float32Array.from({ length: 2 * 256 }, (_, i) => Math.sin(i * 0.7)),
    [2, 1, 16, 16],
    'cpu',
    { keep: true },
  );
  const y = Tensor.fromArray(
    Float32Array.from({ length: 2 * 256 }, (_, i) => (i % 3 ? 0 : 1)),
    [2, 1, 16, 16],
    'cpu',
    { keep: true },
  );
  for (let i = 0; i < 2; i++)
    await scope(() => {
      const l = bceJaccardLoss(net.forward(x), y);
      l.backward();
      return l.read();
    });
  const basePath = path.join(tmp, 'base.safetensors');
  await saveCheckpoint(basePath, net, {
    model: { kind: 'unet', ...net.config },
    epoch: 1,
    step: 2,
    normalization: { mean: [0.5], std: [0.25] },
    thresholds: [0.5, 0.7],
    rng: [1, 2, 3, 4],
    loss: 'bce-jaccard(1)',
  });
  net.dispose();
  x.dispose();
  y.dispose();
  const base = fs.readFileSync(basePath);
  t.equal(formatViolation(base), null, 'the oracle accepts the real checkpoint');

  const list = mutants(base, new Rng(SEED));
  t.ok(list.length >= 200, `${list.length} mutants`);
  const files = list.map((m, i) => {
    const f = path.join(tmp, `m${String(i).padStart(3, '0')}.safetensors`);
    fs.writeFileSync(f, m.bytes);
    return f;
  });
  const { results, crashes, hangs } = await loadAll([basePath, ...files]);
  t.same(crashes, [], 'no child died of a signal or exited on its own');
  t.same(hangs, [], `no load took longer than ${PER_MUTANT_MS} ms`);
  const baseResult = results.get('base.safetensors');
  t.match(baseResult, { ok: true, wrong: [], nonFinite: 0, tensors: 66 }, 'the unmutated checkpoint loads exactly');

  const problems: string[] = [];
  let loads = 0;
  let refused = 0;
  for (const [i, m] of list.entries()) {
    const r = results.get(path.basename(files[i]));
    const tag = `m${String(i).padStart(3, '0')} (${m.name})`;
    if (!r) {
      problems.push(`${tag}: no result`);
      continue;
    }
    const broken = formatViolation(m.bytes);
    if (r.ok) {
      loads++;
      if (r.wrong!.length > 0) problems.push(`${tag}: loaded other bytes than the file holds for ${r.wrong!.join(', ')}`);
      if (r.nonFinite! > 0) problems.push(`${tag}: loaded ${r.nonFinite} non-finite values`);
      if (broken) problems.push(`${tag}: loaded although the format says ${broken}`);
      if (m.mustFail) problems.push(`${tag}: loaded although built to be refused`);
    } else {
      refused++;
      if (typeof r.code !== 'string' || !r.code.startsWith('ERR_PATHO_'))
        problems.push(`${tag}: failed without a code (${r.code}: ${r.message})`);
      if (broken && r.code !== 'ERR_PATHO_CHECKPOINT') problems.push(`${tag}: format broken (${broken}) but ${r.code}: ${r.message}`);
    }
  }
  t.same(problems, [], 'every mutant: a coded error, or a load of exactly what the file holds');
  t.ok(loads > 5 && refused > 150, `${loads} loaded, ${refused} refused`);
});
