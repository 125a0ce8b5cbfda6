// bfloat16 on every x86-64 CPU: native.info() says whether the CPU has native bf16 kernels, and
// where oneDNN has none (forced here with DNNL_MAX_CPU_ISA=AVX2, which is also what CPUs without
// AVX-512 get), bf16 convolutions and activations still run, as the float32 op rounded once.
import * as path from 'node:path';
import t from 'tap';
import { native } from '../../lib/native';
import { lastJson, runFixture } from './fixtures/child';

interface Report {
  info: { cpuIsa: string; cpuBf16: boolean; cpuBf16Kernels: boolean };
  results: { name: string; n: number; notRoundedOnce: number; outsideTolerance: number }[];
  error?: string;
}

const fixture = path.join(__dirname, 'fixtures', 'bf16-ops.ts');

t.test('info() reports the CPU bf16 support consistently with the ISA oneDNN uses', async (t) => {
  const info = native.info();
  t.type(info.cpuBf16, 'boolean');
  t.type(info.cpuBf16Kernels, 'boolean');
  t.equal(
    info.cpuBf16,
    info.cpuIsa === 'avx512_core_bf16' || info.cpuIsa === 'avx512_core_amx',
    `cpuBf16 is true exactly on AVX512_BF16/AMX (cpuIsa ${info.cpuIsa})`,
  );
  if (info.cpuBf16) t.ok(info.cpuBf16Kernels, 'native bf16 instructions come with bf16 kernels');
  if (info.oneDnn.startsWith('2.') && !info.cpuIsa.startsWith('avx512')) {
    t.notOk(info.cpuBf16Kernels, 'oneDNN 2.x has no bf16 convolution below AVX-512');
  }
});

t.test('without bf16 kernels (DNNL_MAX_CPU_ISA=AVX2) every bf16 conv and activation is the float32 op rounded once', async (t) => {
  const r = runFixture(fixture, [], { DNNL_MAX_CPU_ISA: 'AVX2' });
  t.equal(r.signal, null, 'no crash');
  const rep = lastJson<Report>(r);
  t.ok(rep && !rep.error, `the child ran${rep && !rep.error ? '' : `: ${rep?.error ?? r.stderr.slice(-400)}`}`);
  if (!rep || rep.error) return;
  t.notOk(rep.info.cpuBf16Kernels, `no bf16 kernels at ${rep.info.cpuIsa}`);
  t.equal(rep.results.length, 24, 'every case in both layouts');
  for (const c of rep.results) t.equal(c.notRoundedOnce, 0, `${c.name}: all ${c.n} outputs equal the float32 result rounded once`);
});

t.test('with the default ISA every bf16 conv and activation is within bf16 tolerance of float32', async (t) => {
  const r = runFixture(fixture);
  t.equal(r.signal, null, 'no crash');
  const rep = lastJson<Report>(r);
  t.ok(rep && !rep.error, `the child ran${rep && !rep.error ? '' : `: ${rep?.error ?? r.stderr.slice(-400)}`}`);
  if (!rep || rep.error) return;
  t.equal(rep.info.cpuBf16Kernels, native.info().cpuBf16Kernels, 'the child sees the same CPU');
  for (const c of rep.results) {
    // staged (no kernels): exact; native kernels accumulate in another order: 2^-8|r| + 1e-5 max|r|
    if (rep.info.cpuBf16Kernels) t.equal(c.outsideTolerance, 0, `${c.name}: within 2^-8|r| + 1e-5 M`);
    else t.equal(c.notRoundedOnce, 0, `${c.name}: the float32 result rounded once`);
  }
});
