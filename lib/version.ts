// The package's own version, read from its package.json (works from lib/ under ts-node and from
// dist/lib/ when compiled or installed).
import * as fs from 'node:fs';
import * as path from 'node:path';

export function packageVersion(): string {
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) {
      const pkg = JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'patho' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}
