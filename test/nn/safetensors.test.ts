// safetensors encoding: layout of the bytes, round trip, and every structural corruption gives an
// ERR_PATHO_CHECKPOINT error naming the file (never a crash).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { StateDict } from '../../lib/nn/state';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../../lib/nn/safetensors';

const sample = (): StateDict =>
  new Map([
    ['b.weight', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['a.count', { dtype: 'I64', shape: [], data: BigInt64Array.of(42n) }],
  ]);

t.test('bytes follow the format: u64 header length, JSON header, data sorted by name', async (t) => {
  const buf = encodeSafetensors(sample(), { note: 'hi' });
  const n = Number(buf.readBigUInt64LE(0));
  t.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: number[] }
  >;
  t.same(header['a.count'], { dtype: 'I64', shape: [], data_offsets: [0, 8] });
  t.same(header['b.weight'], { dtype: 'F32', shape: [2, 3], data_offsets: [8, 32] });
  t.same(header.__metadata__, { note: 'hi' });
  t.equal(buf.length, 8 + n + 32);
  t.equal(buf.readBigInt64LE(8 + n), 42n);
  t.equal(buf.readFloatLE(8 + n + 8 + 20), 6);
  const back = decodeSafetensors(buf);
  t.same(Array.from(back.tensors.get('b.weight')!.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  t.equal((back.tensors.get('a.count')!.data as BigInt64Array)[0], 42n);
  t.same(back.metadata, { note: 'hi' });
});

t.test('atomic write leaves no temporary file and replaces the old file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-st-'));
  const f = path.join(dir, 'x.safetensors');
  writeSafetensors(f, sample());
  writeSafetensors(f, new Map([['only', { dtype: 'F32', shape: [1], data: Float32Array.of(7) }]]));
  t.same(fs.readdirSync(dir), ['x.safetensors']);
  t.same([...readSafetensors(f).tensors.keys()], ['only']);
  fs.rmSync(dir, { recursive: true });
});

t.test('corrupt and truncated files give ERR_PATHO_CHECKPOINT naming the file', async (t) => {
  const good = encodeSafetensors(sample());
  const n = Number(good.readBigUInt64LE(0));
  const withHeader = (h: unknown): Buffer => {
    const j = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([len, j, Buffer.alloc(32)]);
  };
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /Expected at least 8 bytes/],
    ['truncated data', good.subarray(0, good.length - 5), /beyond the 27 data bytes \(truncated\?\)/],
    ['truncated header', good.subarray(0, 8 + n - 10), /header length .* exceeds the file size/],
    ['garbage header', Buffer.concat([good.subarray(0, 8), Buffer.alloc(n, 0x7b)]), /header is not JSON/],
    ['huge length', Buffer.from([255, 255, 255, 255, 255, 255, 255, 255, 0]), /exceeds the format's limit of 100000000 bytes/],
    ['bad dtype', withHeader({ x: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }), /x has an unknown dtype "Q8"/],
    ['size mismatch', withHeader({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), /x spans 8 bytes but F32\[3\] needs 12/],
    [
      'overlap',
      withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }),
      /overlap/,
    ],
    ['array header', withHeader([1, 2]), /header does not start with '\{'/],
    ['bad shape', withHeader({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }), /x has an invalid shape/],
  ];
  for (const [what, buf, msg] of cases) {
    t.throws(() => decodeSafetensors(buf, '/tmp/ck.safetensors'), { code: 'ERR_PATHO_CHECKPOINT', message: msg }, what);
  }
  t.throws(() => readSafetensors('/nonexistent/x.safetensors'), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /Could not read checkpoint \/nonexistent\/x.safetensors: ENOENT/,
  });
});
