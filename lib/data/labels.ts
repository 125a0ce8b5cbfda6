// Masks of multi-class models: class-index images (8/16-bit values mapped through the class list,
// RGB/palette colours through classes.json) decoded to uint8 class labels (ignored pixels 255), or
// instance label images turned into the boundary recipe's background/interior/boundary classes. Also
// the scan of every mask before training: one error listing the masks that do not fit the class list,
// and the pixel count of each class (for --class-weights auto).
import { describeClasses, type ClassList } from '../classes/classes';
import { decodeLabels, IGNORE_LABEL } from '../classes/labels';
import { DataError, type DataProblem } from '../errors';
import { labelComponents } from '../geometry/trace';
import { instancesToBoundaryClasses } from '../objects/boundary';
import { checkInstanceTruth } from '../objects/metrics';
import { decodeRaw, type DecodedImage, type ReadOptions } from './decode';

export interface LabelSpec {
  /** the classes; labels are their indices 0..K-1 */
  classes: ClassList;
  /**
   * the masks are instance label images (0 background, one value per object): their labels become the
   * boundary recipe's classes 0 background, 1 interior, 2 boundary, with a rim `rim` pixels wide
   */
  fromInstances?: { rim: number };
}

/** Instance labels read as 8/16-bit single-channel values (0 background). */
export async function readInstanceLabels(
  file: string,
  options: ReadOptions = {},
): Promise<{ data: Uint8Array | Uint16Array; width: number; height: number }> {
  const { data, info } = await decodeRaw(file, options);
  if (info.channels !== 1) {
    throw new DataError(
      `${file}: Expected an instance label image with one channel (0 background, one value per object) but it has ${info.channels} channels`,
      [{ files: [file], reason: `${info.channels}-channel instance labels` }],
    );
  }
  checkInstanceTruth(data, file, { allowEmpty: true });
  return { data, width: info.width, height: info.height };
}

/**
 * A binary mask handed over as instance labels: values 0 and one other, whose pixels form several
 * separate regions (one value per object would give them different values).
 */
export function checkNotBinary(data: ArrayLike<number>, width: number, height: number, file: string): void {
  let other = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v === 0 || v === other) continue;
    if (other >= 0) return; // two object values: instance labels
    other = v;
  }
  if (other < 0) return;
  const { count } = labelComponents(data, width, height, 8);
  if (count > 1) {
    throw new DataError(
      `${file}: Expected instance labels (one value per object) but it holds only 0 and ${other}, in ${count} separate regions: a binary mask? ` +
        'Give masks with one value per object, or train without --from-instances',
      [{ files: [file], reason: `binary mask (0 and ${other}, ${count} regions)` }],
    );
  }
}

/** The uint8 class labels of one mask (ignored pixels IGNORE_LABEL = 255). */
export async function readLabels(file: string, spec: LabelSpec, options: ReadOptions = {}): Promise<DecodedImage> {
  if (spec.fromInstances) {
    const inst = await readInstanceLabels(file, options);
    checkNotBinary(inst.data, inst.width, inst.height, file);
    return {
      data: instancesToBoundaryClasses(inst.data, inst.width, inst.height, spec.fromInstances.rim),
      width: inst.width,
      height: inst.height,
      channels: 1,
    };
  }
  const { data, info } = await decodeRaw(file, options);
  const labels = decodeLabels({ data, width: info.width, height: info.height, channels: info.channels }, spec.classes, file, IGNORE_LABEL);
  return { data: labels, width: info.width, height: info.height, channels: 1 };
}

/**
 * Reads every mask once: pixels per class (ignored pixels not counted) or one DataError naming each mask
 * that does not fit the class list (the first one's own message when only one is wrong).
 */
export async function scanLabels(files: readonly string[], spec: LabelSpec, options: ReadOptions = {}): Promise<Float64Array> {
  const K = spec.classes.classes.length;
  const counts = new Float64Array(K);
  const failed: DataError[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++];
      try {
        const { data } = await readLabels(file, spec, options);
        for (let i = 0; i < data.length; i++) if (data[i] < K) counts[data[i]]++;
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        failed.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, files.length) }, worker));
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) {
    const problems: DataProblem[] = failed.flatMap((e) => e.problems);
    const what = spec.fromInstances
      ? 'instance label images (one value per object)'
      : `masks whose values are in the class list (${describeClasses(spec.classes)}${spec.classes.source ? ` from ${spec.classes.source}` : ''})`;
    throw new DataError(
      `Expected ${what} but ${failed.length} of ${files.length} masks are not; the first: ${failed[0].message.split('\n')[0]}`,
      problems,
    );
  }
  return counts;
}
