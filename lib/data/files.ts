// Folder scanning and image/mask pairing by file stem (extensions may differ).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError, type DataProblem } from '../errors';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

export interface Pair {
  stem: string;
  image: string; // absolute path
  mask: string; // absolute path
}

const collator = new Intl.Collator('en', { numeric: true });

/** Image files of a folder by stem; hidden files, sub-folders and other extensions are ignored. */
function listImages(dir: string, role: string): { byStem: Map<string, string[]>; problems: DataProblem[] } {
  let names: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a directory');
    names = fs.readdirSync(dir);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new DataError(`Expected a folder of ${role} for ${dir} but it cannot be read: ${msg}`, [
      { files: [dir], reason: `missing or unreadable ${role} folder` },
    ]);
  }
  const byStem = new Map<string, string[]>();
  for (const name of names) {
    const ext = path.extname(name).toLowerCase();
    if (name.startsWith('.') || !IMAGE_EXTENSIONS.includes(ext)) continue;
    const full = path.join(dir, name);
    if (!fs.statSync(full).isFile()) continue;
    const stem = name.slice(0, name.length - ext.length);
    const list = byStem.get(stem) ?? [];
    list.push(full);
    byStem.set(stem, list);
  }
  const problems: DataProblem[] = [];
  for (const [stem, files] of byStem) {
    if (files.length > 1) problems.push({ files: files.sort(), reason: `several ${role} share the stem '${stem}'` });
  }
  return { byStem, problems };
}

/** Pairs sorted by stem (numeric-aware: 2 before 10) and every pairing problem found. */
export function pairFolders(imagesDir: string, masksDir: string): { pairs: Pair[]; problems: DataProblem[] } {
  const images = listImages(imagesDir, 'images');
  const masks = listImages(masksDir, 'masks');
  if (images.byStem.size === 0) {
    throw new DataError(`Expected image files (${IMAGE_EXTENSIONS.join(', ')}) in ${imagesDir} but found none`, [
      { files: [imagesDir], reason: 'empty images folder' },
    ]);
  }
  if (masks.byStem.size === 0) {
    throw new DataError(`Expected mask files (${IMAGE_EXTENSIONS.join(', ')}) in ${masksDir} but found none`, [
      { files: [masksDir], reason: 'empty masks folder' },
    ]);
  }
  const problems = [...images.problems, ...masks.problems];
  const pairs: Pair[] = [];
  for (const [stem, files] of images.byStem) {
    const m = masks.byStem.get(stem);
    if (!m) problems.push({ files, reason: `image without a mask (no ${stem}.* in ${masksDir})` });
    else if (files.length === 1 && m.length === 1) pairs.push({ stem, image: files[0], mask: m[0] });
  }
  for (const [stem, files] of masks.byStem) {
    if (!images.byStem.has(stem)) problems.push({ files, reason: `mask without an image (no ${stem}.* in ${imagesDir})` });
  }
  pairs.sort((a, b) => collator.compare(a.stem, b.stem));
  return { pairs, problems };
}
