// Where the demo data shipped in the package lives (data/membrane: ISBI 2012 membrane images and
// masks, attribution in data/README.md), for `patho demo` and for library users' first experiments.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PathoError } from './errors';

/** The folder holding images/ and masks/ of the bundled ISBI 2012 membrane set (30 pairs, 512x512, grey). */
export function demoDataDir(): string {
  // from lib/ (ts-node) or dist/lib/ (compiled, installed): the package root is one or two levels up
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'data', 'membrane');
    if (fs.existsSync(path.join(p, 'images'))) return p;
  }
  throw new PathoError('ERR_PATHO_DATA', 'the bundled demo data (data/membrane) was not found next to the patho package: reinstall patho');
}
