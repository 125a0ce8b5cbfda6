// Label decoding of masks for multi-class models: an 8- or 16-bit index mask (values mapped through the
// class list) or an RGB / palette mask (colours mapped through classes.json) becomes a uint8 class-index
// image, ignore pixels set to the ignore index. A value or colour outside the class list is one error that
// names the file, the value, where it is and the class list. Also the colour rendering of class indices.
import { DataError, invalidOption } from '../errors';
import { describeClasses, hexColor, type ClassList, type Rgb } from './classes';

/** Raw decoded mask pixels (sharp's raw output: interleaved channels; 16-bit masks as Uint16Array). */
export interface MaskPixels {
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  channels: number;
}

/** The label the device ignores (labelsU8ToFloat keeps it; the losses skip it): no class may have it. */
export const IGNORE_LABEL = 255;

const rgbKey = (r: number, g: number, b: number) => (r << 16) | (g << 8) | b;

/**
 * Class indices (uint8) of a mask. Index masks: channel 0 is the value (grey+alpha and grey saved as RGB
 * are accepted; a colour RGB mask is refused); colour masks: the RGB of each pixel (alpha ignored).
 */
export function decodeLabels(mask: MaskPixels, classes: ClassList, file: string, ignoreIndex = IGNORE_LABEL): Uint8Array {
  const { data, width, height, channels } = mask;
  const n = width * height;
  if (data.length !== n * channels)
    throw invalidOption(`decodeLabels ${file}`, `${n * channels} values (${width}x${height}x${channels})`, data.length, 'ERR_PATHO_SHAPE');
  if (!Number.isInteger(ignoreIndex) || ignoreIndex < classes.classes.length || ignoreIndex > 255) {
    throw invalidOption('ignoreIndex', `an integer from ${classes.classes.length} to 255 (not a class index)`, ignoreIndex);
  }
  const out = new Uint8Array(n);
  const bad = (what: string, i: number): DataError => {
    const x = i % width,
      y = Math.floor(i / width);
    return new DataError(
      `${file}: mask ${what} at pixel (${x}, ${y}) is not in the class list (${describeClasses(classes)}${classes.source ? ` from ${classes.source}` : ''})`,
      [{ files: [file], reason: `${what} is not a class` }],
    );
  };
  if (classes.kind === 'index') {
    const lut = new Int16Array(65536).fill(-1);
    classes.classes.forEach((c, k) => (lut[c.value!] = k));
    if (classes.ignore?.value !== undefined) lut[classes.ignore.value] = ignoreIndex;
    for (let i = 0; i < n; i++) {
      const o = i * channels;
      const v = data[o];
      if (channels >= 3 && (data[o + 1] !== v || data[o + 2] !== v)) {
        throw new DataError(
          `${file}: a colour mask (pixel (${i % width}, ${Math.floor(i / width)}) is ${hexColor([data[o], data[o + 1], data[o + 2]] as Rgb)}) but the class list gives mask values (${describeClasses(classes)}): give the classes "rgb" colours in classes.json`,
          [{ files: [file], reason: 'colour mask with value classes' }],
        );
      }
      const k = lut[v];
      if (k < 0) throw bad(`value ${v}`, i);
      out[i] = k;
    }
    return out;
  }
  if (channels < 3) {
    throw new DataError(
      `${file}: a ${channels}-channel mask but the class list gives mask colours (${describeClasses(classes)}): colour masks must be RGB or palette images`,
      [{ files: [file], reason: 'grey mask with colour classes' }],
    );
  }
  const map = new Map<number, number>();
  classes.classes.forEach((c, k) => map.set(rgbKey(...c.rgb!), k));
  if (classes.ignore?.rgb) map.set(rgbKey(...classes.ignore.rgb), ignoreIndex);
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    const k = map.get(rgbKey(data[o], data[o + 1], data[o + 2]));
    if (k === undefined) throw bad(`colour ${hexColor([data[o], data[o + 1], data[o + 2]])}`, i);
    out[i] = k;
  }
  return out;
}

/** RGB (3 channels) rendering of class indices with the display colours; ignore pixels grey. */
export function colorizeLabels(labels: ArrayLike<number>, classes: ClassList, ignoreColor: Rgb = [128, 128, 128]): Uint8Array {
  const out = new Uint8Array(labels.length * 3);
  for (let i = 0; i < labels.length; i++) {
    const c = classes.classes[labels[i]]?.color ?? ignoreColor;
    out[3 * i] = c[0];
    out[3 * i + 1] = c[1];
    out[3 * i + 2] = c[2];
  }
  return out;
}
