#!/usr/bin/env node
// The patho command: runs the compiled CLI (dist/lib/cli/main.js).
'use strict';
const path = require('path');
const main = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'main.js');
let cli;
try {
  cli = require(main);
} catch (e) {
  // a checkout that was never built; an installed package always ships dist/
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(main)) {
    process.stderr.write(`patho: ${main} is missing: compile the TypeScript first (npm run build:ts, or bash scripts/setup.sh)\n`);
    process.exit(1);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
