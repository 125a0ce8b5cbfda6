#!/usr/bin/env node
// The patho command: runs the compiled CLI (dist/lib/cli/main.js).
'use strict';
require('../dist/lib/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => { process.exitCode = code; });
