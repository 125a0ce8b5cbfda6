#!/usr/bin/env bash
# Formatting: prettier for TypeScript/JavaScript, clang-format for C++/CUDA. `--check` (CI, npm run
# lint) fails on any file that is not formatted; without it the files are rewritten in place.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
ts=(lib bench test bin scripts eslint.config.mjs)
mapfile -t cc < <(git ls-files 'native/*.cc' 'native/*.h' 'native/*.cu' 'native/*.cuh' 'test/cuda/*.cc' 2>/dev/null || find native test/cuda -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')
command -v clang-format >/dev/null || { echo "format: clang-format is missing (apt-get install clang-format)" >&2; exit 1; }
if [ "$mode" = --check ]; then
  npx prettier --check --log-level warn "${ts[@]}"
  clang-format --dry-run -Werror "${cc[@]}"
else
  npx prettier --write --log-level warn "${ts[@]}"
  clang-format -i "${cc[@]}"
fi
