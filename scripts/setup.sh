#!/usr/bin/env bash
# Installs what patho needs to build and run from a checkout, idempotently: Debian packages (as
# root), npm dependencies, the native addon (and with PATHO_CUDA=ON the CUDA plugin), the JS.
# Used by the README's two commands and by .ci/run. Quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in cmake g++ patchelf libdnnl-dev libgloo-dev libopenblas-dev libopenslide0; do  # libopenslide0: optional at run time (vendor slides), installed so CI covers it
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "patho setup: missing Debian packages: ${need_apt[*]} (run as root or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  echo "patho setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# npm dependencies: reinstall only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "patho setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

cmake_flags=()
if [ "${PATHO_CUDA:-OFF}" = ON ]; then
  bash scripts/fetch-nvidia.sh
  cmake_flags+=(--CDPATHO_CUDA=ON)
fi
if [ ! -f build/Release/patho.node ] || [ "${PATHO_CUDA:-OFF}" = ON ] || \
   [ -n "$(find native CMakeLists.txt -newer build/Release/patho.node -print -quit)" ]; then
  echo "patho setup: building the native addon${cmake_flags:+ and the CUDA plugin}"
  mkdir -p build
  # `cmake-js build` keeps an existing configuration: reconfigure when CUDA is asked for but off
  if [ "${PATHO_CUDA:-OFF}" = ON ] && grep -q '^PATHO_CUDA:BOOL=OFF' build/CMakeCache.txt 2>/dev/null; then
    npx cmake-js configure --out build "${cmake_flags[@]}" >build/.build.log 2>&1 || { tail -50 build/.build.log >&2; exit 1; }
  fi
  npx cmake-js build --out build "${cmake_flags[@]}" >>build/.build.log 2>&1 || { tail -50 build/.build.log >&2; exit 1; }
fi

if [ ! -f dist/lib/native.js ] || [ -n "$(find lib bench tsconfig.json -newer dist/lib/native.js -print -quit 2>/dev/null)" ]; then
  echo "patho setup: compiling TypeScript"
  npx tsc -p tsconfig.json
fi
