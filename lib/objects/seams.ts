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
// The choice only ever looks at parts that share pixels, so it is made cluster by cluster (the parts
// linked through shared pixels) with the same result as over all windows at once; SeamMerger streams
// it: windows are added in rows, and a cluster that no later window can reach is merged and handed out.
import { invalidOption } from '../errors';

/** One window's label image (0 background, objects any positive labels) and its place in the region. */
export interface WindowLabels {
  x: number;
  y: number;
  width: number;
  height: number;
  labels: ArrayLike<number>;
  /** per-pixel values carried into the merged objects (e.g. probability, stain), each width x height */
  values?: ArrayLike<number>[];
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
  /** the windows' values over the box (width x height), one array per WindowLabels.values entry */
  values: Float32Array[];
}

interface Part {
  window: number;
  label: number;
  x0: number;
  y0: number;
  w: number;
  h: number;
  mask: Uint8Array;
  values: Float32Array[];
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
    const values = (win.values ?? []).map(() => new Float32Array(pw * ph));
    let area = 0;
    for (let j = 0; j < ph; j++)
      for (let i = 0; i < pw; i++) {
        const at = (j + b.y0) * w + i + b.x0;
        if (labels[at] !== label) continue;
        mask[j * pw + i] = 1;
        for (let v = 0; v < values.length; v++) values[v][j * pw + i] = win.values![v][at];
        area++;
      }
    const gaps = [cutL ? b.x0 : Infinity, cutT ? b.y0 : Infinity, cutR ? w - 1 - b.x1 : Infinity, cutB ? h - 1 - b.y1 : Infinity];
    const margin = Math.min(...gaps);
    parts.push({ window: index, label, x0: x + b.x0, y0: y + b.y0, w: pw, h: ph, mask, values, area, cut: margin === 0, margin });
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

function unionMask(group: Part[]): Omit<MergedObject, 'id'> {
  const x0 = Math.min(...group.map((p) => p.x0)),
    y0 = Math.min(...group.map((p) => p.y0));
  const x1 = Math.max(...group.map((p) => p.x0 + p.w)),
    y1 = Math.max(...group.map((p) => p.y0 + p.h));
  const width = x1 - x0,
    height = y1 - y0;
  const mask = new Uint8Array(width * height);
  const values = group[0].values.map(() => new Float32Array(width * height));
  for (const p of group)
    for (let j = 0; j < p.h; j++)
      for (let i = 0; i < p.w; i++) {
        if (!p.mask[j * p.w + i]) continue;
        const at = (j + p.y0 - y0) * width + i + p.x0 - x0;
        if (!mask[at]) for (let v = 0; v < values.length; v++) values[v][at] = p.values[v][j * p.w + i];
        mask[at] = 1;
      }
  let area = 0;
  for (const v of mask) area += v;
  return { x0, y0, width, height, mask, area, sources: group.map((p) => ({ window: p.window, label: p.label })), values };
}

function checkWindow(w: WindowLabels, i: number, op: string): void {
  if (![w.x, w.y, w.width, w.height].every(Number.isInteger) || w.width < 1 || w.height < 1) {
    throw invalidOption(`${op} windows[${i}]`, 'integer x, y and a positive integer width and height', {
      x: w.x,
      y: w.y,
      width: w.width,
      height: w.height,
    });
  }
  if (w.labels.length !== w.width * w.height)
    throw invalidOption(`${op} windows[${i}].labels`, `${w.width * w.height} values`, `${w.labels.length} values`, 'ERR_PATHO_SHAPE');
  for (const [v, a] of (w.values ?? []).entries())
    if (a.length !== w.width * w.height)
      throw invalidOption(`${op} windows[${i}].values[${v}]`, `${w.width * w.height} values`, `${a.length} values`, 'ERR_PATHO_SHAPE');
}

/** The merge of one cluster of parts linked through shared pixels (see the file comment). */
function mergeCluster(parts: Part[], neighbours: Map<Part, Part[]>): Omit<MergedObject, 'id'>[] {
  const chosen = new Set<Part>();
  const dropped = new Set<Part>();
  const order = new Map(parts.map((p, i) => [p, i]));
  const whole = parts.filter((p) => !p.cut);
  whole.sort((a, b) => b.margin - a.margin || b.area - a.area || a.window - b.window || a.label - b.label);
  const out: Omit<MergedObject, 'id'>[] = [];
  for (const p of whole) {
    if (dropped.has(p)) continue;
    chosen.add(p);
    out.push(unionMask([p]));
    for (const q of neighbours.get(p) ?? []) if (!chosen.has(q)) dropped.add(q);
  }
  // cut parts left: pieces of objects larger than the overlap, joined through shared pixels
  const visited = new Set<Part>();
  for (const p of parts) {
    if (!p.cut || dropped.has(p) || visited.has(p)) continue;
    const group: Part[] = [];
    const stack = [p];
    visited.add(p);
    while (stack.length) {
      const k = stack.pop()!;
      group.push(k);
      for (const q of neighbours.get(k) ?? [])
        if (q.cut && !dropped.has(q) && !visited.has(q)) {
          visited.add(q);
          stack.push(q);
        }
    }
    group.sort((a, b) => order.get(a)! - order.get(b)!);
    out.push(unionMask(group));
  }
  return out;
}

/**
 * The streaming merge: add() windows in any order within a row of windows, then flush(y) once every
 * later window starts at y or below; flush hands out the objects no later window can touch (every
 * part of their cluster ends above y). Memory holds the parts of the open rows only.
 */
export class SeamMerger {
  private readonly rx0: number;
  private readonly ry0: number;
  private readonly rx1: number;
  private readonly ry1: number;
  private readonly cell: number;
  private readonly grid = new Map<string, Set<Part>>();
  private readonly open = new Set<Part>();
  private readonly neighbours = new Map<Part, Part[]>();
  private windows = 0;
  private nextId = 1;

  /** region: the area the windows tile (its edges are not cuts); cell: the spatial index's cell side (about a window's) */
  constructor(region: { x: number; y: number; width: number; height: number }, cell = 256) {
    this.rx0 = region.x;
    this.ry0 = region.y;
    this.rx1 = region.x + region.width;
    this.ry1 = region.y + region.height;
    this.cell = Math.max(16, Math.round(cell));
  }

  private cells(p: Part): string[] {
    const c = this.cell;
    const keys: string[] = [];
    for (let gy = Math.floor(p.y0 / c); gy <= Math.floor((p.y0 + p.h - 1) / c); gy++)
      for (let gx = Math.floor(p.x0 / c); gx <= Math.floor((p.x0 + p.w - 1) / c); gx++) keys.push(`${gx},${gy}`);
    return keys;
  }

  /** Adds one window's objects; returns its index (the `window` of MergedObject.sources). */
  add(win: WindowLabels): number {
    const index = this.windows;
    checkWindow(win, index, 'SeamMerger.add');
    this.windows++;
    for (const p of partsOf(win, index, this.rx0, this.ry0, this.rx1, this.ry1)) {
      const links: Part[] = [];
      const seen = new Set<Part>();
      for (const k of this.cells(p))
        for (const q of this.grid.get(k) ?? []) {
          if (seen.has(q)) continue;
          seen.add(q);
          if (q.window === p.window || p.x0 >= q.x0 + q.w || q.x0 >= p.x0 + p.w || p.y0 >= q.y0 + q.h || q.y0 >= p.y0 + p.h) continue;
          if (shared(p, q) > 0) links.push(q);
        }
      this.neighbours.set(p, links);
      for (const q of links) this.neighbours.get(q)!.push(p);
      this.open.add(p);
      for (const k of this.cells(p)) {
        const set = this.grid.get(k);
        if (set) set.add(p);
        else this.grid.set(k, new Set([p]));
      }
    }
    return index;
  }

  /** Parts still held (open clusters). */
  get pending(): number {
    return this.open.size;
  }

  /**
   * The objects of every cluster whose parts all end above y (no window added later reaches them),
   * numbered on from the previous flush in raster order of their boxes. flush(Infinity) ends the merge.
   */
  flush(y = Infinity): MergedObject[] {
    const done: Omit<MergedObject, 'id'>[] = [];
    const visited = new Set<Part>();
    for (const start of this.open) {
      if (visited.has(start)) continue;
      const cluster: Part[] = [];
      const stack = [start];
      visited.add(start);
      let bottom = 0;
      while (stack.length) {
        const p = stack.pop()!;
        cluster.push(p);
        bottom = Math.max(bottom, p.y0 + p.h);
        for (const q of this.neighbours.get(p)!)
          if (!visited.has(q)) {
            visited.add(q);
            stack.push(q);
          }
      }
      if (bottom > y) continue;
      cluster.sort((a, b) => a.window - b.window || a.label - b.label);
      done.push(...mergeCluster(cluster, this.neighbours));
      for (const p of cluster) {
        this.open.delete(p);
        this.neighbours.delete(p);
        for (const k of this.cells(p)) {
          const set = this.grid.get(k)!;
          set.delete(p);
          if (set.size === 0) this.grid.delete(k);
        }
      }
    }
    done.sort((a, b) => a.y0 - b.y0 || a.x0 - b.x0 || b.area - a.area);
    return done.map((o) => ({ id: this.nextId++, ...o }));
  }
}

/** The objects of overlapping windows, each counted once (see the file comment), numbered in raster order. */
export function mergeWindowObjects(windows: WindowLabels[], region: SeamRegion = {}): MergedObject[] {
  windows.forEach((w, i) => checkWindow(w, i, 'mergeWindowObjects'));
  if (windows.length === 0) return [];
  const rx0 = region.x ?? Math.min(...windows.map((w) => w.x));
  const ry0 = region.y ?? Math.min(...windows.map((w) => w.y));
  const rx1 = region.width !== undefined ? rx0 + region.width : Math.max(...windows.map((w) => w.x + w.width));
  const ry1 = region.height !== undefined ? ry0 + region.height : Math.max(...windows.map((w) => w.y + w.height));
  const merger = new SeamMerger(
    { x: rx0, y: ry0, width: rx1 - rx0, height: ry1 - ry0 },
    Math.max(64, ...windows.map((w) => Math.max(w.width, w.height))),
  );
  for (const w of windows) merger.add(w);
  return merger.flush(Infinity);
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
