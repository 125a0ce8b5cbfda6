// The layer rule of lib/ (DESIGN.md "Layers"): imports point down only, cli -> train -> (predict,
// data, nn, parallel, slide, objects, geometry) -> tensor -> native, with errors.ts, defaults.ts,
// disposable.ts and version.ts as leaves anyone may import; no import cycle between files, nor
// between the directories of one layer. Type-only imports count: they tie the files together too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

const LIB = path.resolve(__dirname, '..', 'lib');

/** Higher layers may import lower ones; a file's layer comes from the first pattern it matches. */
const LAYERS: [RegExp, number, string][] = [
  [/^(errors|defaults|disposable|version)\.ts$/, 0, 'leaf'],
  [/^(demo-data|line-chart)\.ts$/, 1, 'support'],
  [/^(native|addon-loader)\.ts$/, 1, 'native'],
  [/^atomic-write\.ts$/, 1, 'files'],
  [/^(tensor|rng|device)\.ts$/, 2, 'tensor'],
  [/^(nn|data|classes|parallel|predict|slide|objects|geometry)\//, 3, 'nn/data/classes/parallel/predict/slide/objects'],
  [/^train\//, 4, 'train'],
  [/^(cli|bench)\/|^(doctor|plot)\.ts$/, 5, 'cli'],
  [/^index\.ts$/, 6, 'package entry'],
];

function layerOf(file: string): { rank: number; name: string } | null {
  for (const [re, rank, name] of LAYERS) if (re.test(file)) return { rank, name };
  return null;
}

function libFiles(dir = LIB): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return libFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path.relative(LIB, p).split(path.sep).join('/')] : [];
  });
}

// Static imports and re-exports (`import x from`, `import type`, `export * from`, `import './x'`),
// dynamic import() and require() of relative paths; comments are dropped first.
const SPEC =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  return [...code.matchAll(SPEC)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** lib-relative path of a relative import from `file`, or null when it leaves lib/ or is a package. */
function resolve(file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const abs = path.resolve(LIB, path.dirname(file), spec);
  for (const cand of [`${abs}.ts`, path.join(abs, 'index.ts'), abs]) {
    if (cand.endsWith('.ts') && fs.existsSync(cand)) return path.relative(LIB, cand).split(path.sep).join('/');
  }
  return path.relative(LIB, abs).startsWith('..') ? null : `${path.relative(LIB, abs)} (missing)`;
}

const dirOf = (f: string): string => (f.includes('/') ? f.slice(0, f.indexOf('/')) : f);

/** Every cycle's members, by Tarjan's strongly connected components (size > 1, or a self-import). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

t.test('the import parser sees every form of import', async (t) => {
  const src = [
    "import * as fs from 'node:fs';",
    "import { a, type B } from './a';",
    "import type { C } from '../c';",
    "import './side-effect';",
    "export * from './d';",
    "export { e } from './e';",
    "const f = require('./f');",
    "// import { g } from './commented';",
    "/* import { h } from './block'; */",
    'const s = \'import { i } from "./in-a-string-is-not-an-import-of-ours"\';',
    'import {\n  j,\n  k,\n} from "./multi-line";',
  ].join('\n');
  const found = importsOf(src);
  t.same(
    found.filter((s) => !s.includes('in-a-string')),
    ['node:fs', './a', '../c', './side-effect', './d', './e', './f', './multi-line'],
  );
});

t.test('cycle detection finds a cycle and only that', async (t) => {
  const g = new Map<string, Set<string>>([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a'])],
    ['d', new Set(['a'])],
    ['e', new Set(['e'])],
  ]);
  t.same(cycles(g), [['a', 'b', 'c'], ['e']]);
  t.same(
    cycles(
      new Map([
        ['a', new Set(['b'])],
        ['b', new Set<string>()],
      ]),
    ),
    [],
  );
});

t.test('lib/ imports point down the layers and form no cycle', async (t) => {
  const files = libFiles();
  t.ok(files.length > 40, `${files.length} files under lib/`);
  const unknown = files.filter((f) => !layerOf(f));
  t.same(unknown, [], 'every file of lib/ has a layer (add new folders or root files to LAYERS)');
  const graph = new Map<string, Set<string>>();
  const upward: string[] = [];
  const missing: string[] = [];
  for (const f of files) {
    const from = layerOf(f);
    const deps = new Set<string>();
    for (const spec of importsOf(fs.readFileSync(path.join(LIB, f), 'utf8'))) {
      const to = resolve(f, spec);
      if (to === null) continue;
      if (to.endsWith('(missing)')) {
        missing.push(`${f} -> ${spec}`);
        continue;
      }
      deps.add(to);
      const target = layerOf(to);
      if (from && target && (target.rank > from.rank || (from.rank === 0 && to !== f))) {
        upward.push(`${f} (${from.name}) imports ${to} (${target.name})`);
      }
    }
    graph.set(f, deps);
  }
  t.same(missing, [], 'every relative import resolves to a file');
  t.same(upward, [], 'no import points up (leaves import nothing from lib/)');
  t.same(cycles(graph), [], 'no cycle between files');
  // directories of one layer may use each other, but only one way round
  const dirs = new Map<string, Set<string>>();
  for (const [f, deps] of graph) {
    if (!f.includes('/')) continue;
    for (const d of deps)
      if (d.includes('/') && dirOf(d) !== dirOf(f)) {
        if (!dirs.has(dirOf(f))) dirs.set(dirOf(f), new Set());
        dirs.get(dirOf(f))!.add(dirOf(d));
      }
  }
  t.same(cycles(dirs), [], 'no cycle between directories');
});
