// lib/device.ts, the one parser of device strings: the native spelling agrees with what the addon
// itself reports, the CLI's wording and codes, lists of replicas, and the errors for bad names.
import t from 'tap';
import { canonicalDevice, checkDevice, cudaDeviceCount, deviceKind, resolveDevices } from '../lib/device';
import { native } from '../lib/native';

t.test('canonicalDevice spells a device as the addon does', async (t) => {
  for (const d of ['cpu', 'cpu:0', 'cpu:1', 'cpu:07']) {
    const probe = native.empty([1], 'float32', d);
    t.equal(canonicalDevice(d), probe.device, `${d} -> ${probe.device}, the addon's own name`);
    probe.dispose();
  }
  t.equal(canonicalDevice('cuda'), 'cuda:0');
  t.equal(canonicalDevice('cuda:3'), 'cuda:3');
  for (const bad of ['gpu', 'CPU', 'cpu:', 'cpu:-1', 'cpu:1024', 'cpu:0,1', '', 3]) {
    t.throws(
      () => canonicalDevice(bad),
      { code: 'ERR_PATHO_DEVICE', message: /^Expected cpu, cpu:N, cuda or cuda:N for device but received / },
      String(bad),
    );
  }
  // the addon refuses the same names
  t.throws(() => native.empty([1], 'float32', 'gpu'), { code: 'ERR_PATHO_DEVICE' });
  t.equal(deviceKind('cuda:1'), 'cuda');
  t.equal(deviceKind('cpu:1'), 'cpu');
});

t.test('checkDevice: one device, or a list where replicas are allowed; the CLI wording', async (t) => {
  t.equal(checkDevice('cpu'), 'cpu');
  t.equal(checkDevice('cuda'), 'cuda:0');
  t.equal(checkDevice('cuda:1'), 'cuda:1');
  t.equal(checkDevice('cpu:0,1', '--device', { list: true }), 'cpu:0,1');
  const usage = { code: 'ERR_PATHO_USAGE' as const };
  t.throws(() => checkDevice('cpu:0,1', '--device', usage), {
    code: 'ERR_PATHO_USAGE',
    message: "Expected one device (cpu, cuda or cuda:N) for --device but received 'cpu:0,1'",
  });
  t.throws(() => checkDevice('cpu:0,0', '--device', { ...usage, list: true }), {
    code: 'ERR_PATHO_USAGE',
    message: "Expected distinct device indices for --device but received 'cpu:0,0'",
  });
  t.throws(() => checkDevice('tpu:0,1', '--device', { ...usage, list: true }), {
    code: 'ERR_PATHO_USAGE',
    message: "Expected cpu, cuda or cuda:N for --device (or a list such as cuda:0,1 or cpu:0,1) but received 'tpu:0,1'",
  });
  t.throws(() => checkDevice('tpu'), { code: 'ERR_PATHO_DEVICE', message: "Expected cpu, cuda or cuda:N for device but received 'tpu'" });
});

t.test('resolveDevices: lists of replicas', async (t) => {
  t.same(resolveDevices(['cpu', 'cpu', 'cpu']), ['cpu:0', 'cpu:1', 'cpu:2']);
  t.same(resolveDevices('cpu:0,2'), ['cpu:0', 'cpu:2']);
  t.same(resolveDevices(['cuda:1', 'cuda:0']), ['cuda:1', 'cuda:0']);
  t.same(resolveDevices(['cpu:01', 'cpu']), ['cpu:1', 'cpu:0'], 'canonical names');
  t.throws(() => resolveDevices(['cpu:1', 'cpu:01']), {
    code: 'ERR_PATHO_DEVICE',
    message: 'Expected distinct devices for devices but received cpu:1 twice',
  });
  t.throws(() => resolveDevices(['cpu:0', 'cuda:0']), {
    code: 'ERR_PATHO_DEVICE',
    message: 'Expected devices of one kind for devices but received cpu:0, cuda:0',
  });
  t.throws(() => resolveDevices([]), { code: 'ERR_PATHO_DEVICE', message: 'Expected at least one device for devices but received []' });
  t.throws(() => resolveDevices([1] as never), { code: 'ERR_PATHO_DEVICE', message: 'Expected device names for devices but received [1]' });
  const gpus = cudaDeviceCount();
  if (gpus === 0) {
    t.throws(() => resolveDevices('cuda'), {
      code: 'ERR_PATHO_DEVICE',
      message: /Expected a CUDA device for devices 'cuda' but this machine has none/,
    });
  } else {
    t.same(
      resolveDevices('cuda'),
      Array.from({ length: gpus }, (_, i) => `cuda:${i}`),
      `'cuda' is every GPU (${gpus})`,
    );
  }
});
