// Checkpoints that lie, class "a header length off by one loads as garbage": the decoder holds files
// to the safetensors format's own rules (huggingface/safetensors, safetensors/src/tensor.rs:
// read_metadata and Metadata::validate), each rule below with a file that breaks it and, where the
// format allows a variation, a file that must still load.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { decodeSafetensors, encodeSafetensors } from '../../lib/nn/safetensors';

const golden = fs.readFileSync(path.join(__dirname, '..', 'golden', 'unet_w4d2.safetensors'));

/** A file from a header object and a data section, with the length field the format wants (or `n`). */
function file(header: unknown, data: Buffer, opts: { n?: number; pad?: string } = {}): Buffer {
  const h = Buffer.from(JSON.stringify(header) + (opts.pad ?? ''), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(opts.n ?? h.length));
  return Buffer.concat([len, h, data]);
}
const f32 = (...v: number[]): Buffer => Buffer.from(Float32Array.from(v).buffer);
const two = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };

const refused = (t: Test, buf: Buffer, why: RegExp, rule: string): void => {
  t.throws(() => decodeSafetensors(buf, 'f.safetensors'), { code: 'ERR_PATHO_CHECKPOINT', message: why }, rule);
};

t.test('the rules of read_metadata: length field, header bytes, JSON object', async (t) => {
  refused(t, Buffer.alloc(7), /Expected at least 8 bytes but received 7/, 'HeaderTooSmall: fewer than 8 bytes');
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(100_000_001n);
  refused(t, big, /header length 100000001 exceeds the format's limit of 100000000 bytes/, 'HeaderTooLarge: N > 100,000,000');
  refused(
    t,
    file(two, f32(1, 2, 3), { n: 10_000 }),
    /header length 10000 exceeds the file size/,
    'InvalidHeaderLength: 8 + N beyond the file',
  );
  const notUtf8 = file(two, f32(1, 2, 3));
  notUtf8[12] = 0xff;
  refused(t, notUtf8, /header is not valid UTF-8/, 'InvalidHeader: not UTF-8');
  refused(
    t,
    file(two, f32(1, 2, 3), { pad: ' ' }).fill(0x20, 8, 9),
    /header does not start with '\{'/,
    "InvalidHeaderStart: the first byte is not '{'",
  );
  refused(t, file([1, 2], Buffer.alloc(0)), /header does not start with '\{'/, 'a JSON array is no header');
  refused(t, file('{"a":', Buffer.alloc(0)), /header does not start|header is not JSON/, 'InvalidHeaderDeserialization');
  // what the format allows: padding spaces after the JSON (the reference pads to 8 bytes), no tensors at all
  t.equal(decodeSafetensors(file(two, f32(1, 2, 3), { pad: '     ' })).tensors.size, 2, 'trailing spaces inside N are padding');
  t.equal(decodeSafetensors(file({}, Buffer.alloc(0))).tensors.size, 0, 'an empty file of tensors');
  t.same(decodeSafetensors(file({ __metadata__: null, ...two }, f32(1, 2, 3))).metadata, {}, '__metadata__ may be null (Option)');
});

t.test('the rules of Metadata::validate: offsets cover the data exactly, sizes match shapes', async (t) => {
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(0, 1, 2)),
    /a gap of 4 bytes before a \(at byte 0 of the data\)/,
    'InvalidOffset: the first tensor must start at 0',
  );
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(0, 1, 2)),
    /a gap of 4 bytes before b \(at byte 4 of the data\)/,
    'InvalidOffset: each tensor starts where the one before ends (a hole)',
  );
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(0, 1, 2)),
    /a and b overlap/,
    'InvalidOffset: overlap',
  );
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, f32(0, 1)),
    /a has invalid data_offsets \[8,0\]/,
    'InvalidOffset: end before begin',
  );
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(0, 1)),
    /a spans 8 bytes but F32\[3\] needs 12/,
    'TensorInvalidInfo: end - begin = numel * dtype size',
  );
  for (const [dtype, size] of [
    ['F64', 8],
    ['I64', 8],
    ['F16', 2],
    ['BF16', 2],
    ['I32', 4],
    ['U8', 1],
    ['BOOL', 1],
    ['I8', 1],
    ['I16', 2],
  ] as const) {
    refused(
      t,
      file({ a: { dtype, shape: [3], data_offsets: [0, 3 * size + 1] } }, Buffer.alloc(3 * size + 1)),
      new RegExp(`needs ${3 * size}$`),
      `TensorInvalidInfo for ${dtype}`,
    );
    t.equal(
      decodeSafetensors(file({ a: { dtype, shape: [3], data_offsets: [0, 3 * size] } }, Buffer.alloc(3 * size))).tensors.get('a')!.shape[0],
      3,
      `${dtype}[3] in ${3 * size} bytes`,
    );
  }
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, f32(0)),
    /needs more bytes than the 4 of the data section/,
    'ValidationOverflow: a shape whose size overflows',
  );
  refused(
    t,
    file({ a: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)),
    /a has an unknown dtype "Q4"/,
    'an unknown dtype',
  );
  refused(
    t,
    file({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32(0)),
    /a has an invalid shape/,
    'a shape of non-integers',
  );
  refused(
    t,
    file(two, Buffer.concat([f32(1, 2, 3), Buffer.alloc(1)])),
    /1 bytes after the last tensor's data \(the file must end where the data ends/,
    'MetadataIncompleteBuffer: trailing bytes',
  );
  refused(
    t,
    file({ __metadata__: ['a', 'b'], ...two }, f32(1, 2, 3)),
    /__metadata__ is not an object of strings \(received an array\)/,
    '__metadata__ is a map',
  );
  refused(t, file({ __metadata__: { k: 1 }, ...two }, f32(1, 2, 3)), /metadata k is not a string/, '__metadata__ values are strings');
  // allowed: tensors listed in any order, zero-size tensors anywhere in the sequence
  const shuffled = { b: two.b, z: { dtype: 'F32', shape: [0, 3], data_offsets: [8, 8] }, a: two.a };
  const back = decodeSafetensors(file(shuffled, f32(1, 2, 3)));
  t.same(Array.from(back.tensors.get('b')!.data as Float32Array), [3]);
  t.equal(back.tensors.get('z')!.data.length, 0);
});

t.test('a real checkpoint with its header length off by one, a hole or bytes appended is refused', async (t) => {
  t.ok(decodeSafetensors(golden, 'golden'), 'the golden file itself loads');
  const n = Number(golden.readBigUInt64LE(0));
  for (const delta of [-1, 1, -8, 8]) {
    const off = Buffer.from(golden);
    off.writeBigUInt64LE(BigInt(n + delta));
    t.throws(() => decodeSafetensors(off, 'off'), { code: 'ERR_PATHO_CHECKPOINT' }, `header length ${delta > 0 ? '+' : ''}${delta}`);
  }
  // header length one short where the header ends in a padding space, so the JSON still parses:
  // every weight would be read 1 byte off (the case that loaded as a garbage model)
  const g = decodeSafetensors(golden);
  let padded: Buffer = golden;
  for (
    let k = 0;
    !padded
      .subarray(8, 8 + Number(padded.readBigUInt64LE(0)))
      .toString()
      .endsWith(' ');
    k++
  ) {
    padded = encodeSafetensors(g.tensors, { ...g.metadata, note: 'x'.repeat(k) });
  }
  const short = Buffer.from(padded);
  short.writeBigUInt64LE(padded.readBigUInt64LE(0) - 1n);
  t.doesNotThrow(() => JSON.parse(short.subarray(8, 8 + Number(short.readBigUInt64LE(0))).toString()), 'the shortened header still parses');
  t.throws(() => decodeSafetensors(short, 'short'), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /short is not a valid safetensors file: 1 bytes after the last tensor's data/,
  });
  const header = golden.subarray(8, 8 + n).toString();
  const appended = Buffer.concat([golden, Buffer.from([0])]);
  t.throws(() => decodeSafetensors(appended, 'appended'), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /1 bytes after the last tensor's data/,
  });
  const h = JSON.parse(header) as Record<string, { data_offsets: number[] }>;
  const first = Object.entries(h)
    .filter(([k]) => k !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  for (const [, e] of first) e.data_offsets = e.data_offsets.map((o) => o + 4);
  const holed = Buffer.concat([file(h, Buffer.alloc(0)), Buffer.alloc(4), golden.subarray(8 + n)]);
  t.throws(
    () => decodeSafetensors(holed, 'holed'),
    { code: 'ERR_PATHO_CHECKPOINT', message: /a gap of 4 bytes before/ },
    'a hole before the data',
  );
});
