// Prediction in bounded memory. Model.predict runs the forward inside one scope: every activation
// lives until the scope ends, and since the JS thread queues the whole forward before the device
// has run its first op, even tensors disposed early are only returned to the allocator after all
// allocations were made. A width-16 UNet then holds ~540 MB per 512x512 tile (2.1 GB for the CLI's
// batch of 4). Here the UNet forward runs op by op: each input is disposed once its consumer is
// queued and the queue is drained before the next allocation, so the caching allocator hands the
// freed block straight to the next op: what stays alive is the skip connections and two or three
// working tensors.
import { native } from '../native';
import { concat, maxPool2d, relu, sigmoid, toFloat32, upsample2x } from '../nn/functional';
import { DoubleConv, UNet } from '../nn/unet';
import { noGrad, scope, Tensor } from '../tensor';
import type { Model } from '../train/model';
import { uploadImages, type ImageBatch } from '../train/upload';

// Runs f without recording gradients, keeps its result, frees its other temporaries and `done`,
// then waits until the device has run it (so the freed memory is reusable by the next op).
async function run(device: string, f: () => Tensor, done: Tensor[] = []): Promise<Tensor> {
  const y = noGrad(() => scope(() => f().keep()));
  for (const d of done) d.dispose();
  await native.synchronize(device);
  return y;
}

async function doubleConv(m: DoubleConv, x: Tensor, device: string, freeInput: boolean): Promise<Tensor> {
  const c1 = await run(device, () => m.conv1.forward(x), freeInput ? [x] : []);
  const b1 = await run(device, () => m.bn1.forward(c1), [c1]);
  const r1 = await run(device, () => relu(b1), [b1]);
  const c2 = await run(device, () => m.conv2.forward(r1), [r1]);
  const b2 = await run(device, () => m.bn2.forward(c2), [c2]);
  return run(device, () => relu(b2), [b2]);
}

/**
 * UNet logits computed layer by layer, the same ops as UNet.forward (so the same values), freeing
 * each activation as soon as the next op has consumed it. Takes ownership of x (disposed).
 * BatchNorm runs in whatever mode the net is in: call net.eval() first for inference.
 */
export async function unetForwardStepwise(net: UNet, x: Tensor): Promise<Tensor> {
  const device = x.device;
  const skips: Tensor[] = [];
  let h = x;
  for (const enc of net.encoder.items) {
    const s = await doubleConv(enc, h, device, true);
    skips.push(s);
    h = await run(device, () => maxPool2d(s));
  }
  let y = await doubleConv(net.bottleneck, h, device, true);
  for (const dec of net.decoder.items) {
    const skip = skips.pop()!;
    const prev = y;
    const up = await run(device, () => upsample2x(prev), [prev]);
    const conv = await run(device, () => dec.upconv.forward(up), [up]);
    const cat = await run(device, () => concat(skip, conv), [skip, conv]);
    y = await doubleConv(dec.block, cat, device, true);
  }
  const last = y;
  return run(device, () => net.head.forward(last), [last]);
}

/**
 * Probabilities like Model.predict (sigmoid of the logits, BatchNorm in eval mode, float32
 * [N, outChannels, H, W]) from uint8 NHWC images, with the peak memory of one activation set per
 * tile instead of all of them. Networks other than UNet go through Model.predict.
 */
export async function predictStepwise(model: Model, input: ImageBatch): Promise<Float32Array> {
  if (!(model.net instanceof UNet)) return model.predict(input);
  await model.ready();
  const net = model.net;
  const norm = input.mean && input.std ? { mean: input.mean, std: input.std }
    : model.normalization ?? { mean: new Array<number>(input.channels).fill(0), std: new Array<number>(input.channels).fill(1) };
  const wasTraining = net.training;
  net.eval();
  try {
    const x = noGrad(() => scope(() => uploadImages(input, model.device, norm.mean, norm.std).keep()));
    const logits = await unetForwardStepwise(net, x);
    const prob = await run(model.device, () => sigmoid(toFloat32(logits)), [logits]);
    try {
      return (await prob.read()) as Float32Array;
    } finally {
      prob.dispose();
    }
  } finally {
    net.train(wasTraining);
  }
}
