// The batch contract between the data pipeline and the Trainer: uint8 NHWC pixels and 0/1 masks,
// plus the per-channel normalisation the model applies on the device.

/** Model input = (pixel/255 - mean[c]) / std[c], per channel, in [0,1] units. */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** Images only (prediction): uint8 NHWC; mean/std default to the model's own normalisation. */
export interface ImageBatch {
  images: Uint8Array; // N*H*W*C bytes, NHWC, 8-bit
  n: number;
  height: number;
  width: number;
  channels: number;
  mean?: number[];
  std?: number[];
}

export interface Batch extends ImageBatch {
  masks: Uint8Array; // N*H*W bytes, values 0 or 1
  mean: number[];
  std: number[]; // per channel, in [0,1] units: the model input is (pixel/255 - mean[c]) / std[c]
  names: string[]; // per item: source file stem (+ '@x,y' for crops/tiles)
  /** Per item: dataset index, top-left (x, y) in the source image and the part of the
   *  crop/tile that lies inside the image (smaller than the crop where it was reflection-padded). */
  regions?: BatchRegion[];
  /** Epoch this batch belongs to and its position in this shard's epoch. */
  epoch?: number;
  index?: number;
}

export interface BatchRegion {
  item: number;
  x: number;
  y: number;
  width: number;
  height: number;
}
