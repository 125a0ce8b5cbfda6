#!/usr/bin/env bash
# Packs everything scripts/gpu-check.sh needs on a machine with an NVIDIA GPU, CUDA's driver,
# pip's nvidia-cudnn/nccl and PyTorch, but possibly no Node.js: this machine's node binary, the
# built patho.node + libpatho_cuda.so (+ the shared libraries patho.node links that a GPU box may
# lack), the compiled JS (dist/) with the kit's runners (test/cuda: op, step, NCCL parity and the
# summary), the few node_modules they require, and the PyTorch baseline with the reference module.
# Output: .gpu-kit/kit.tar.xz (ignored by git), at most 64 MiB. DEVELOPERS.md "On a GPU" says how
# it travels and runs.
#   scripts/pack-gpu-kit.sh                   # builds build-cuda (incremental) and packs it
#   PATHO_KIT_BUILD=build/Release scripts/pack-gpu-kit.sh   # packs an existing build as it is
set -euo pipefail
cd "$(dirname "$0")/.."
kit=${PATHO_KIT_DIR:-.gpu-kit}
limit=$((64 * 1024 * 1024))

# The plugin is built against cuDNN and NCCL headers from the pip wheels in .nvidia/: say so first,
# and fetch them when they are missing (two wheels, about 770 MB of downloads).
if ! { [ -f .nvidia/cudnn/include/cudnn.h ] && [ -f .nvidia/nccl/include/nccl.h ] && [ -e .nvidia/cudnn/lib/libcudnn.so.9 ]; }; then
  echo "pack-gpu-kit: .nvidia/ lacks cuDNN/NCCL headers or libcudnn.so.9: running scripts/fetch-nvidia.sh first (downloads nvidia-cudnn-cu13 and nvidia-nccl-cu13 from PyPI)" >&2
  bash scripts/fetch-nvidia.sh
fi

build=${PATHO_KIT_BUILD:-}
if [ -z "$build" ]; then
  # Incremental: brings build-cuda up to date with the sources the kit's dist/ is compiled from.
  echo "pack-gpu-kit: building build-cuda (PATHO_CUDA=ON)" >&2
  npx cmake-js compile --out build-cuda --CDPATHO_CUDA=ON >"${TMPDIR:-/tmp}/patho-kit-build.log" 2>&1 ||
    { tail -30 "${TMPDIR:-/tmp}/patho-kit-build.log" >&2; echo "pack-gpu-kit: the native build failed" >&2; exit 1; }
  build=build-cuda/Release
fi
for f in patho.node libpatho_cuda.so; do
  [ -f "$build/$f" ] || { echo "pack-gpu-kit: Expected $build/$f (set PATHO_KIT_BUILD to a folder holding patho.node and libpatho_cuda.so)" >&2; exit 1; }
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/patho-kit.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/kit
mkdir -p "$root/build/Release" "$root/lib" "$root/torch" "$root/node_modules"

# ---- native: the addon, the plugin, and the non-system libraries patho.node links (oneDNN,
# Gloo, OpenCL loader, libgomp, ...). glibc, libstdc++ and libgcc_s stay the GPU box's own (this
# machine's are built against a newer glibc than they need); the MANIFEST names the versions needed.
cp "$build/patho.node" "$build/libpatho_cuda.so" "$root/build/Release/"
ldd "$build/patho.node" | awk '/=> \// { print $3 }' |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$root/lib/"; done
glibc=$(objdump -T "$build/patho.node" "$build/libpatho_cuda.so" "$root"/lib/*.so* 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx=$(objdump -T "$build/patho.node" "$build/libpatho_cuda.so" "$root"/lib/*.so* "$(command -v node)" 2>/dev/null |
  grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)

# ---- JavaScript: the package (lib/, bench/) and the parity runner, compiled into dist/ ----
if ! npx tsc -p tsconfig.json --outDir "$root/dist" >"$stage/tsc.log" 2>&1; then
  echo "pack-gpu-kit: warning: tsc reported errors (files were still emitted):" >&2
  head -20 "$stage/tsc.log" >&2
fi
runners=(run-parity step-parity run-nccl kit-summary)
sources=()
for r in "${runners[@]}"; do sources+=("test/cuda/$r.ts"); done
npx tsc --outDir "$root/dist" --rootDir . --module commonjs --target ES2022 --moduleResolution node \
  --strict --esModuleInterop --skipLibCheck --resolveJsonModule --types node "${sources[@]}" >"$stage/tsc-runners.log" 2>&1 ||
  { head -30 "$stage/tsc-runners.log" >&2; echo "pack-gpu-kit: the kit's runners (test/cuda) do not compile" >&2; exit 1; }
for r in "${runners[@]}"; do
  [ -f "$root/dist/test/cuda/$r.js" ] || { echo "pack-gpu-kit: test/cuda/$r.ts did not compile" >&2; exit 1; }
done
cp package.json "$root/"
train_step=missing
[ -f "$root/dist/bench/train-step.js" ] && train_step=present

# ---- node_modules: only the packages the kit's entry points can require, with their dependencies ----
node - "$root" <<'JS'
const fs = require('fs'), path = require('path');
const root = process.argv[2];
const entries = ['run-parity', 'step-parity', 'run-nccl', 'kit-summary'].map((r) => `dist/test/cuda/${r}.js`)
  .concat(['dist/bench/train-step.js', 'dist/lib/doctor.js']).map((e) => path.join(root, e)).filter(fs.existsSync);
const seenFiles = new Set(), packages = new Set();
const builtin = new Set(require('module').builtinModules);
function walk(file) {
  if (seenFiles.has(file) || !fs.existsSync(file)) return;
  seenFiles.add(file);
  const src = fs.readFileSync(file, 'utf8');
  for (const m of src.matchAll(/require\((['"])([^'"]+)\1\)/g)) {
    const spec = m[2];
    if (spec.startsWith('.')) {
      const base = path.resolve(path.dirname(file), spec);
      for (const c of [base, base + '.js', path.join(base, 'index.js')]) if (fs.existsSync(c) && fs.statSync(c).isFile()) { walk(c); break; }
    } else if (!builtin.has(spec) && !spec.startsWith('node:')) {
      packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
}
entries.forEach(walk);
// Close over each package's dependencies (optional ones only where installed).
const queue = [...packages];
while (queue.length) {
  const p = queue.pop();
  const pj = path.join('node_modules', p, 'package.json');
  if (!fs.existsSync(pj)) { console.error(`pack-gpu-kit: warning: ${p} is required but not installed`); packages.delete(p); continue; }
  const j = JSON.parse(fs.readFileSync(pj, 'utf8'));
  for (const d of Object.keys({ ...j.dependencies, ...j.optionalDependencies })) {
    if (!packages.has(d) && fs.existsSync(path.join('node_modules', d))) { packages.add(d); queue.push(d); }
  }
}
for (const p of packages) fs.cpSync(path.join('node_modules', p), path.join(root, 'node_modules', p), { recursive: true, dereference: true });
console.log(`pack-gpu-kit: node_modules: ${[...packages].sort().join(' ') || '(none needed)'}`);
JS

# ---- PyTorch baseline and step-parity reference (../shared does not travel: the spec module is copied) ----
cp bench/torch_step.py "$root/torch/"
reference=${PATHO_REFERENCE:-../shared/reference/unet_reference.py}
[ -f "$reference" ] || { echo "pack-gpu-kit: Expected the reference module at $reference (set PATHO_REFERENCE)" >&2; exit 1; }
cp "$reference" "$root/torch/"

# ---- node itself ----
cp -L "$(command -v node)" "$root/node"
node_version=$(node --version)

cat >"$root/MANIFEST" <<EOF
patho GPU kit, packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git describe --always --dirty 2>/dev/null || echo '?')
node $node_version; native build from $build; needs glibc >= ${glibc#GLIBC_}, libstdc++ with $glibcxx
bench/train-step.js: $train_step
EOF

mkdir -p "$kit"
tar -C "$root" -cf - . | xz -T0 -6 >"$kit/kit.tar.xz.tmp"
size=$(stat -c %s "$kit/kit.tar.xz.tmp")
if [ "$size" -gt "$limit" ]; then
  rm -f "$kit/kit.tar.xz.tmp"
  echo "pack-gpu-kit: the kit would be $((size / 1024 / 1024)) MiB, over the 64 MiB a device run carries" >&2
  exit 1
fi
mv "$kit/kit.tar.xz.tmp" "$kit/kit.tar.xz"
echo "pack-gpu-kit: $kit/kit.tar.xz is $((size / 1024 / 1024)) MiB ($size bytes; unpacked $(du -sm "$root" | cut -f1) MiB); needs glibc >= ${glibc#GLIBC_} and $glibcxx; bench/train-step.js $train_step"
