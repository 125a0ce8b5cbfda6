// Issue 13, "Size overflow": a shape whose element count or byte size overflows, or a dimension
// that is not an integer in [0, 2^53], is one coded error (ERR_PATHO_SHAPE; ERR_PATHO_OOM for a
// size that is valid but cannot be allocated), never a crash; empty tensors with huge other
// dimensions run without walking them. One child process per op family, so a regression that
// crashes fails its test instead of killing tap.
import * as path from 'node:path';
import t from 'tap';
import { lastJson, runFixture } from './fixtures/child';

interface Result {
  name: string;
  expected: string;
  outcome: { code: string; message: string } | { value: string };
}

const fixture = path.join(__dirname, 'fixtures', 'size-overflow.ts');
const families = ['elementwise', 'conv', 'batchnorm', 'pool', 'upsample', 'concat/split', 'loss', 'metrics', 'optim', 'convert', 'views'];

for (const family of families) {
  t.test(family, async (t) => {
    const r = runFixture(fixture, [family], {}, 120000);
    t.equal(r.signal, null, `no signal (${r.signal ?? 'none'})`);
    t.equal(r.status, 0, `exit 0${r.status === 0 ? '' : `: ${r.stderr.slice(-600)}`}`);
    const results = lastJson<Result[]>(r);
    t.ok(Array.isArray(results) && results.length > 0, 'the child reported its cases');
    if (!Array.isArray(results)) return;
    for (const c of results) {
      if (c.expected === 'success') {
        t.ok('value' in c.outcome, `${c.name}: ${'value' in c.outcome ? c.outcome.value : `${c.outcome.code}: ${c.outcome.message}`}`);
      } else {
        const got = 'code' in c.outcome ? `${c.outcome.code}: ${c.outcome.message}` : `no error (${c.outcome.value})`;
        t.ok('code' in c.outcome && c.outcome.code === c.expected, `${c.name}: ${c.expected} (${got})`);
      }
    }
  });
}
