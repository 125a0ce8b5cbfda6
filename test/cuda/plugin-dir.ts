// Finds a folder holding both patho.node and libpatho_cuda.so (the loader looks for the plugin
// next to the addon): build/Release when the main build has PATHO_CUDA=ON (CI), else
// build-cuda/Release (plugin developers). Importing this before lib/native points PATHO_ADDON there.
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');

export function findPluginDir(): string | null {
  for (const dir of ['build/Release', 'build-cuda/Release']) {
    const d = path.join(root, dir);
    if (fs.existsSync(path.join(d, 'patho.node')) && fs.existsSync(path.join(d, 'libpatho_cuda.so'))) return d;
  }
  return null;
}

export const pluginDir = findPluginDir();
if (!process.env.PATHO_ADDON && pluginDir) process.env.PATHO_ADDON = path.join(pluginDir, 'patho.node');
