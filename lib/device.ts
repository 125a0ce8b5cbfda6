// The one place device strings are parsed: one device ('cpu', 'cpu:N', 'cuda', 'cuda:N') and lists
// of data-parallel replicas ('cpu:0,1', ['cuda:0', 'cuda:1'], 'cuda' for every GPU). The native side
// spells a device 'kind:index' (native/core/device.h); canonicalDevice gives that spelling.
import { invalidOption, PathoError, type ErrorCode } from './errors';
import { native } from './native';

export type DeviceKind = 'cpu' | 'cuda';

const ONE = /^(cpu|cuda)(?::(\d+))?$/;
const LIST = /^(cpu|cuda):(\d+(?:,\d+)+)$/;
/** native/core/device.h accepts indices below this */
const MAX_INDEX = 1024;

function parseOne(value: unknown): { kind: DeviceKind; index: number | null } | null {
  const m = typeof value === 'string' ? ONE.exec(value) : null;
  if (!m) return null;
  const index = m[2] === undefined ? null : Number(m[2]);
  return index !== null && index >= MAX_INDEX ? null : { kind: m[1] as DeviceKind, index };
}

/** 'cpu' or 'cuda' */
export function deviceKind(device: string): DeviceKind {
  return device.startsWith('cuda') ? 'cuda' : 'cpu';
}

/** The native spelling of one device: 'cpu' -> 'cpu:0', 'cuda' -> 'cuda:0', 'cpu:01' -> 'cpu:1'. */
export function canonicalDevice(value: unknown, name = 'device', code: ErrorCode = 'ERR_PATHO_DEVICE'): string {
  const d = parseOne(value);
  if (!d) throw invalidOption(name, 'cpu, cpu:N, cuda or cuda:N', value, code);
  return `${d.kind}:${d.index ?? 0}`;
}

/**
 * Checks a device option as a user wrote it and returns it with 'cuda' as 'cuda:0': one device, or
 * with `list` also 'cpu:0,1' / 'cuda:0,1' (data-parallel replicas, distinct indices). The CLI passes
 * its flag as `name` and code ERR_PATHO_USAGE.
 */
export function checkDevice(value: unknown, name = 'device', opts: { list?: boolean; code?: ErrorCode } = {}): string {
  const code = opts.code ?? 'ERR_PATHO_DEVICE';
  const list = typeof value === 'string' ? LIST.exec(value) : null;
  if (list) {
    if (!opts.list) throw invalidOption(name, 'one device (cpu, cuda or cuda:N)', value, code);
    const idx = list[2].split(',').map(Number);
    if (new Set(idx).size !== idx.length) throw invalidOption(name, 'distinct device indices', value, code);
    return value as string;
  }
  const d = parseOne(value);
  if (!d) throw invalidOption(`${name}${opts.list ? ' (or a list such as cuda:0,1 or cpu:0,1)' : ''}`, 'cpu, cuda or cuda:N', value, code);
  return d.kind === 'cuda' && d.index === null ? 'cuda:0' : (value as string);
}

/** The number of CUDA devices the plugin sees (0 without a GPU or plugin). */
export function cudaDeviceCount(): number {
  try {
    const raw = JSON.parse(native.cudaInfo()) as { devices?: unknown[] };
    return raw.devices?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * The devices of data-parallel replicas, canonical: 'cuda' alone means every GPU; 'cpu:0,1' /
 * 'cuda:0,1' list indices; repeated bare kinds ['cpu', 'cpu'] mean cpu:0, cpu:1. One kind, no
 * duplicates.
 */
export function resolveDevices(spec: string | string[], name = 'devices', code: ErrorCode = 'ERR_PATHO_DEVICE'): string[] {
  const items = (Array.isArray(spec) ? spec : [spec]).flatMap((s: unknown) => {
    if (typeof s !== 'string') throw invalidOption(name, 'device names', spec, code);
    const m = LIST.exec(s);
    return m ? m[2].split(',').map((i) => `${m[1]}:${i}`) : [s];
  });
  if (items.length === 0) throw invalidOption(name, 'at least one device', spec, code);
  if (items.length === 1 && items[0] === 'cuda') {
    const n = cudaDeviceCount();
    if (n === 0) throw new PathoError(code, `Expected a CUDA device for ${name} 'cuda' but this machine has none (see \`patho doctor\`)`);
    return Array.from({ length: n }, (_, i) => `cuda:${i}`);
  }
  const next: Record<DeviceKind, number> = { cpu: 0, cuda: 0 };
  const out = items.map((s) => {
    const d = parseOne(s);
    if (!d) throw invalidOption(name, 'cpu, cpu:N, cuda or cuda:N', s, code);
    return `${d.kind}:${d.index ?? next[d.kind]++}`;
  });
  if (new Set(out.map(deviceKind)).size > 1)
    throw new PathoError(code, `Expected devices of one kind for ${name} but received ${out.join(', ')}`);
  const dup = out.find((d, i) => out.indexOf(d) !== i);
  if (dup) throw new PathoError(code, `Expected distinct devices for ${name} but received ${dup} twice`);
  return out;
}
