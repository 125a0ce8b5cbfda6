// Op calls only queue work on the device's execution thread: while a large convolution computes,
// the JavaScript event loop keeps running timers and immediates (DESIGN.md decision 4).
import t from 'tap';
import { native } from '../../lib/native';

t.test('the event loop runs while a large convolution computes', async (t) => {
  const [N, C, H, W] = [4, 64, 256, 256];
  const x = native.empty([N, C, H, W]),
    w = native.empty([C, C, 3, 3]),
    y = native.empty([N, C, H, W]);
  native.fill(x, 0.5);
  native.fill(w, 0.01);
  await native.synchronize('cpu');

  let immediates = 0,
    timers = 0,
    done = false;
  const spin = () => {
    if (done) return;
    immediates++;
    setImmediate(spin);
  };
  const tick = () => {
    if (done) return;
    timers++;
    setTimeout(tick, 0);
  };

  const t0 = process.hrtime.bigint();
  native.conv2dForward(x, w, null, y); // ~19 GFLOP: tens to hundreds of milliseconds on 2 cores
  const callNs = process.hrtime.bigint() - t0;
  setImmediate(spin);
  setTimeout(tick, 0);
  const values = await y.read();
  const totalNs = process.hrtime.bigint() - t0;
  done = true;

  // Had the call computed the convolution itself, it would take nearly all of the total time.
  t.ok(callNs * 4n < totalNs, `the op call returned (${Number(callNs) / 1e6} ms) long before the result (${Number(totalNs) / 1e6} ms)`);
  t.ok(immediates >= 20, `setImmediate callbacks ran while the convolution computed (${immediates})`);
  t.ok(timers >= 1, `setTimeout callbacks ran while the convolution computed (${timers})`);
  // interior outputs: 64 channels * 9 taps * 0.5 * 0.01
  t.ok(Math.abs(values[(0 * C + 5) * H * W + 100 * W + 100] - 2.88) < 1e-4, 'and the result is right');
  for (const z of [x, w, y]) z.dispose();
});
