// Objects across the seams of overlapping windows (slide tiles): each window's label image is segmented on
// its own, so an object near a seam appears in two to four windows, whole in some and cut in others. The
// merge keeps every object once:
//  1. each window's objects become parts (global bounding box + mask); a part is "cut" when it touches a
//     window edge that is not an edge of the region (the slide or the processed area);
//  2. whole parts are chosen greedily, preferring the part farthest from its window's cut edges (it saw the
//     most context), then the larger; a whole part that shares a pixel with a chosen one is the same object
//     seen again and is dropped;
//  3. cut parts that share a pixel with a chosen whole part are that object's cut copies and are dropped;
//     the remaining cut parts belong to objects larger than the overlap: the ones that share pixels are
//     joined (union of their masks).
// With an overlap larger than the largest object every object is whole in some window and is taken from
// one window's segmentation, never stitched. Memory holds the objects' masks, not the region's pixels.
import { invalidOption } from '../errors';

/** One window's label image (0 background, objects any positive labels) and its place in the region. */
export interface WindowLabels {
  x: number;
  y: number;
  width: number;
  height: number;
  labels: ArrayLike<number>;
}

export interface SeamRegion {
  /** the region the windows tile (window edges on its edges are not cuts); default: the windows' extent */
  x?: number;
  y?: number;
  width?: number;
  height?: number;
}

/** A merged object: its global bounding box and a mask over it. */
export interface MergedObject {
  id: number;
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** 1 inside the object, width x height, row-major */
  mask: Uint8Array;
  area: number;
  /** the window parts it was made of (one when it was whole in a window) */
  sources: { window: number; label: number }[];
}

interface Part {
  window: number;
  label: number;
  x0: number;
  y0: number;
  w: number;
  h: number;
  mask: Uint8Array;
  area: number;
  cut: boolean;
  /** distance in px from the part to the nearest cut-able edge of its window (preference) */
  margin: number;
}

function partsOf(win: WindowLabels, index: number, rx0: number, ry0: number, rx1: number, ry1: number): Part[] {
  const { x, y, width: w, height: h, labels } = win;
  const boxes = new Map<number, { x0: number; y0: number; x1: number; y1: number }>();
  for (let j = 0; j < h; j++)
    for (let i = 0; i < w; i++) {
      const l = labels[j * w + i];
      if (l <= 0) continue;
      const b = boxes.get(l);
      if (!b) boxes.set(l, { x0: i, y0: j, x1: i, y1: j });
      else {
        if (i < b.x0) b.x0 = i;
        if (i > b.x1) b.x1 = i;
        if (j > b.y1) b.y1 = j;
      }
    }
  // which window edges are cuts (inside the region)
  const cutL = x > rx0,
    cutT = y > ry0,
    cutR = x + w < rx1,
    cutB = y + h < ry1;
  const parts: Part[] = [];
  for (const [label, b] of boxes) {
    const pw = b.x1 - b.x0 + 1;
    const ph = b.y1 - b.y0 + 1;
    const mask = new Uint8Array(pw * ph);
    let area = 0;
    for (let j = 0; j < ph; j++)
      for (let i = 0; i < pw; i++)
        if (labels[(j + b.y0) * w + i + b.x0] === label) {
          mask[j * pw + i] = 1;
          area++;
        }
    const gaps = [cutL ? b.x0 : Infinity, cutT ? b.y0 : Infinity, cutR ? w - 1 - b.x1 : Infinity, cutB ? h - 1 - b.y1 : Infinity];
    const margin = Math.min(...gaps);
    parts.push({ window: index, label, x0: x + b.x0, y0: y + b.y0, w: pw, h: ph, mask, area, cut: margin === 0, margin });
  }
  return parts;
}

/** Pixels two parts share (in global coordinates). */
function shared(a: Part, b: Part): number {
  const x0 = Math.max(a.x0, b.x0),
    x1 = Math.min(a.x0 + a.w, b.x0 + b.w);
  const y0 = Math.max(a.y0, b.y0),
    y1 = Math.min(a.y0 + a.h, b.y0 + b.h);
  let n = 0;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) if (a.mask[(y - a.y0) * a.w + x - a.x0] && b.mask[(y - b.y0) * b.w + x - b.x0]) n++;
  return n;
}

/** Pairs of parts from different windows whose boxes intersect, found through a coarse grid. */
function candidatePairs(parts: Part[], cell: number): [number, number][] {
  const grid = new Map<string, number[]>();
  parts.forEach((p, i) => {
    for (let gy = Math.floor(p.y0 / cell); gy <= Math.floor((p.y0 + p.h - 1) / cell); gy++)
      for (let gx = Math.floor(p.x0 / cell); gx <= Math.floor((p.x0 + p.w - 1) / cell); gx++) {
        const k = `${gx},${gy}`;
        const list = grid.get(k);
        if (list) list.push(i);
        else grid.set(k, [i]);
      }
  });
  const seen = new Set<string>();
  const pairs: [number, number][] = [];
  for (const list of grid.values())
    for (let a = 0; a < list.length; a++)
      for (let b = a + 1; b < list.length; b++) {
        const [i, j] = list[a] < list[b] ? [list[a], list[b]] : [list[b], list[a]];
        const P = parts[i],
          Q = parts[j];
        if (P.window === Q.window || P.x0 >= Q.x0 + Q.w || Q.x0 >= P.x0 + P.w || P.y0 >= Q.y0 + Q.h || Q.y0 >= P.y0 + P.h) continue;
        const k = `${i},${j}`;
        if (seen.has(k)) continue;
        seen.add(k);
        pairs.push([i, j]);
      }
  return pairs;
}

function unionMask(group: Part[]): Omit<MergedObject, 'id'> {
  const x0 = Math.min(...group.map((p) => p.x0)),
    y0 = Math.min(...group.map((p) => p.y0));
  const x1 = Math.max(...group.map((p) => p.x0 + p.w)),
    y1 = Math.max(...group.map((p) => p.y0 + p.h));
  const width = x1 - x0,
    height = y1 - y0;
  const mask = new Uint8Array(width * height);
  for (const p of group)
    for (let j = 0; j < p.h; j++) for (let i = 0; i < p.w; i++) if (p.mask[j * p.w + i]) mask[(j + p.y0 - y0) * width + i + p.x0 - x0] = 1;
  let area = 0;
  for (const v of mask) area += v;
  return { x0, y0, width, height, mask, area, sources: group.map((p) => ({ window: p.window, label: p.label })) };
}

/** The objects of overlapping windows, each counted once (see the file comment), numbered in raster order. */
export function mergeWindowObjects(windows: WindowLabels[], region: SeamRegion = {}): MergedObject[] {
  windows.forEach((w, i) => {
    if (![w.x, w.y, w.width, w.height].every(Number.isInteger) || w.width < 1 || w.height < 1) {
      throw invalidOption(`mergeWindowObjects windows[${i}]`, 'integer x, y and a positive integer width and height', {
        x: w.x,
        y: w.y,
        width: w.width,
        height: w.height,
      });
    }
    if (w.labels.length !== w.width * w.height) {
      throw invalidOption(
        `mergeWindowObjects windows[${i}].labels`,
        `${w.width * w.height} values`,
        `${w.labels.length} values`,
        'ERR_PATHO_SHAPE',
      );
    }
  });
  if (windows.length === 0) return [];
  const rx0 = region.x ?? Math.min(...windows.map((w) => w.x));
  const ry0 = region.y ?? Math.min(...windows.map((w) => w.y));
  const rx1 = region.width !== undefined ? rx0 + region.width : Math.max(...windows.map((w) => w.x + w.width));
  const ry1 = region.height !== undefined ? ry0 + region.height : Math.max(...windows.map((w) => w.y + w.height));
  const parts = windows.flatMap((w, i) => partsOf(w, i, rx0, ry0, rx1, ry1));
  const cell = Math.max(64, ...windows.map((w) => Math.max(w.width, w.height)));
  const neighbours: number[][] = parts.map(() => []);
  for (const [i, j] of candidatePairs(parts, cell)) {
    if (shared(parts[i], parts[j]) > 0) {
      neighbours[i].push(j);
      neighbours[j].push(i);
    }
  }
  const chosen = new Uint8Array(parts.length);
  const dropped = new Uint8Array(parts.length);
  const whole = parts.map((_, i) => i).filter((i) => !parts[i].cut);
  whole.sort((a, b) => parts[b].margin - parts[a].margin || parts[b].area - parts[a].area || a - b);
  const out: Omit<MergedObject, 'id'>[] = [];
  for (const i of whole) {
    if (dropped[i]) continue;
    chosen[i] = 1;
    out.push(unionMask([parts[i]]));
    for (const j of neighbours[i]) if (!chosen[j]) dropped[j] = 1;
  }
  // cut parts left: pieces of objects larger than the overlap, joined through shared pixels
  const visited = new Uint8Array(parts.length);
  for (let i = 0; i < parts.length; i++) {
    if (!parts[i].cut || dropped[i] || visited[i]) continue;
    const group: Part[] = [];
    const stack = [i];
    visited[i] = 1;
    while (stack.length) {
      const k = stack.pop()!;
      group.push(parts[k]);
      for (const j of neighbours[k])
        if (parts[j].cut && !dropped[j] && !visited[j]) {
          visited[j] = 1;
          stack.push(j);
        }
    }
    out.push(unionMask(group));
  }
  out.sort((a, b) => a.y0 - b.y0 || a.x0 - b.x0 || b.area - a.area);
  return out.map((o, k) => ({ id: k + 1, ...o }));
}

/** Paints merged objects into a label image of the area (x, y, width, height) of the region. */
export function paintObjects(objects: MergedObject[], x: number, y: number, width: number, height: number): Int32Array {
  const out = new Int32Array(width * height);
  for (const o of objects)
    for (let j = 0; j < o.height; j++)
      for (let i = 0; i < o.width; i++) {
        const gx = o.x0 + i - x,
          gy = o.y0 + j - y;
        if (o.mask[j * o.width + i] && gx >= 0 && gy >= 0 && gx < width && gy < height && out[gy * width + gx] === 0)
          out[gy * width + gx] = o.id;
      }
  return out;
}
