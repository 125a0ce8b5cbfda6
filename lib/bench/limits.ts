// The largest training-step benchmark a machine can run, stated before anything is allocated: the
// synthetic uint8 batch is one typed array (V8 caps those at 4 GiB), and on a CPU the step's peak
// memory, about 280 bytes per pixel per unit of UNet width in float32 (measured with `patho bench
// --json` at widths 8 and 16: 230-270), must fit in the machine's RAM.
import * as os from 'node:os';

/** V8's (Node 20's) largest typed array, in elements */
export const MAX_TYPED_ARRAY = 2 ** 32;
/** peak bytes of a float32 training step per image pixel and unit of width (see above) */
export const STEP_BYTES_PER_PIXEL_WIDTH = 280;

export interface BenchShape {
  size: number;
  batch: number;
  width: number;
  depth: number;
  channels: number;
  device: string;
}

/** A step's estimated peak memory in bytes (float32; bf16 needs less). */
export function estimatedStepBytes(o: BenchShape): number {
  return STEP_BYTES_PER_PIXEL_WIDTH * o.width * o.batch * o.size * o.size;
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** Why --size is too large for this shape on this machine (naming the largest that fits), or null. */
export function benchSizeProblem(o: BenchShape, totalMemory = os.totalmem()): string | null {
  const m = 2 ** o.depth;
  const largest = (perPixelArea: number, budget: number): number => Math.floor(Math.sqrt(budget / perPixelArea) / m) * m;
  const batchBytes = o.batch * o.channels * o.size * o.size;
  if (batchBytes > MAX_TYPED_ARRAY) {
    return (
      `Expected --size at most ${largest(o.batch * o.channels, MAX_TYPED_ARRAY)} for --batch ${o.batch} with ${o.channels} channels ` +
      `(the synthetic batch of ${gib(batchBytes)} must fit one buffer of at most 4 GiB) but received ${o.size}`
    );
  }
  const need = estimatedStepBytes(o);
  if (o.device.startsWith('cpu') && need > totalMemory) {
    return (
      `Expected --size at most ${largest(STEP_BYTES_PER_PIXEL_WIDTH * o.width * o.batch, totalMemory)} for --batch ${o.batch} --width ${o.width} ` +
      `on this machine (a training step needs about ${gib(need)} at --size ${o.size}, ${STEP_BYTES_PER_PIXEL_WIDTH} bytes per pixel per unit of width; ` +
      `it has ${gib(totalMemory)}) but received ${o.size}`
    );
  }
  return null;
}
