#!/usr/bin/env bash
# Makes prebuilds/<platform>-<arch>/ for the npm package: patho.node with the shared libraries a bare
# machine lacks (oneDNN, its OpenMP runtime and OpenCL ICD loader) beside it, found through RPATH
# $ORIGIN, plus the CUDA plugin when it was built. Nothing is fetched at install time; see issue 8.
#
#   scripts/prebuild.sh                      compile into build-prebuild/ (PATHO_CUDA=ON adds the plugin)
#   scripts/prebuild.sh --from build/Release  package an existing build (what the package test does)
#   scripts/prebuild.sh --out DIR             write DIR/<platform>-<arch>/ instead of prebuilds/
set -euo pipefail
cd "$(dirname "$0")/.."

from=""
out="prebuilds"
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="${2:?Expected a folder holding patho.node for --from}"; shift 2 ;;
    --out) out="${2:?Expected a folder for --out}"; shift 2 ;;
    *) echo "prebuild: Expected --from DIR or --out DIR but received '$1'" >&2; exit 2 ;;
  esac
done

tag="$(node -p 'process.platform + "-" + process.arch')"
if [ "${tag%%-*}" != linux ]; then
  echo "prebuild: only Linux prebuilds are made by this script (this is $tag); build from source instead" >&2
  exit 1
fi
for tool in patchelf readelf objdump ldd strip; do
  command -v "$tool" >/dev/null || { echo "prebuild: needs $tool (apt-get install patchelf binutils)" >&2; exit 1; }
done

if [ -z "$from" ]; then
  flags=()
  [ "${PATHO_CUDA:-OFF}" = ON ] && flags+=(--CDPATHO_CUDA=ON)
  echo "prebuild: compiling into build-prebuild/${flags:+ (with the CUDA plugin)}"
  mkdir -p build-prebuild
  npx cmake-js compile --out build-prebuild "${flags[@]}" >build-prebuild/.build.log 2>&1 ||
    { tail -50 build-prebuild/.build.log >&2; exit 1; }
  from=build-prebuild/Release
fi
[ -f "$from/patho.node" ] || { echo "prebuild: Expected $from/patho.node (build it first) but it does not exist" >&2; exit 1; }

dest="$out/$tag"
rm -rf "$dest"
mkdir -p "$dest"
cp "$from/patho.node" "$dest/patho.node"
strip --strip-unneeded "$dest/patho.node"
patchelf --set-rpath '$ORIGIN' "$dest/patho.node"

# Libraries every Linux that can run Node already has (glibc and the C++ runtime Node itself links
# against): never bundled. libstdc++ in particular must be the process's own copy.
is_system() {
  case "$1" in
    linux-vdso.so.*|ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libstdc++.so.*|libgcc_s.so.*) return 0 ;;
    *) return 1 ;;
  esac
}

# Copy the addon's whole dependency closure minus the system set, each under its soname (npm pack
# drops symlinks), and point each copy's RPATH at its own folder so libdnnl finds libgomp there.
bundled=()
while read -r soname arrow resolved _; do
  [ "$arrow" = "=>" ] || continue
  is_system "$soname" && continue
  if [ "$resolved" = "not" ]; then
    echo "prebuild: $soname, needed by patho.node, is not installed here" >&2; exit 1
  fi
  cp -L "$resolved" "$dest/$soname"
  chmod 0755 "$dest/$soname"
  patchelf --set-rpath '$ORIGIN' "$dest/$soname"
  real="$(readlink -f "$resolved")"
  # the Debian package it came from (dpkg may list the file under /lib or /usr/lib: ask for both)
  pkg="$(dpkg -S "$real" "${real#/usr}" 2>/dev/null | head -1 | cut -d: -f1 || true)"
  bundled+=("$soname|$real|$pkg")
done < <(env -u LD_LIBRARY_PATH ldd "$from/patho.node")

# The CUDA plugin rides along when it was built; cuDNN and NCCL are never bundled (the addon's
# loader finds them on the system path, CUDA's lib64 or pip's nvidia/* folders at run time).
plugin_rel=""
if [ -f "$from/libpatho_cuda.so" ]; then
  plugin_rel="${PATHO_PLUGIN_SUBDIR:-}${PATHO_PLUGIN_SUBDIR:+/}libpatho_cuda.so"
  mkdir -p "$(dirname "$dest/$plugin_rel")"
  cp "$from/libpatho_cuda.so" "$dest/$plugin_rel"
  strip --strip-unneeded "$dest/$plugin_rel"
  if readelf -d "$dest/$plugin_rel" | grep -q 'NEEDED.*libcudart'; then
    echo "prebuild: libpatho_cuda.so links libcudart dynamically; it must use the static runtime" >&2; exit 1
  fi
fi

# Check the result the way a bare machine would see it: every bundled library resolves in $dest.
check="$(env -u LD_LIBRARY_PATH ldd "$dest/patho.node")"
if grep -q 'not found' <<<"$check"; then
  echo "prebuild: unresolved libraries in $dest/patho.node:" >&2; echo "$check" >&2; exit 1
fi
abs_dest="$(cd "$dest" && pwd)"
for entry in "${bundled[@]}"; do
  soname="${entry%%|*}"
  grep -q "$soname => $abs_dest/$soname" <<<"$check" ||
    { echo "prebuild: $soname does not resolve from $abs_dest:" >&2; echo "$check" >&2; exit 1; }
done
node -e 'const b = require(process.argv[1]); const i = b.info(); if (!i.oneDnn) process.exit(1);' "$abs_dest/patho.node"

# Each bundled binary travels with its licence: the Debian copyright file of the package it came
# from, plus the full texts those files refer to (THIRD_PARTY_NOTICES.md summarises them).
mkdir -p "$dest/licenses"
for entry in "${bundled[@]}"; do
  IFS='|' read -r soname real pkg <<<"$entry"
  if [ -z "$pkg" ] || [ ! -f "/usr/share/doc/$pkg/copyright" ]; then
    echo "prebuild: no licence file found for $soname ($real); add it to THIRD_PARTY_NOTICES.md and here" >&2; exit 1
  fi
  cp -L "/usr/share/doc/$pkg/copyright" "$dest/licenses/$pkg.copyright"
  for text in $(grep -oE '/usr/share/common-licenses/[A-Za-z0-9.+-]*[A-Za-z0-9+-]' "/usr/share/doc/$pkg/copyright" | sort -u); do
    cp -L "$text" "$dest/licenses/$(basename "$text").txt"
  done
done

# manifest.json: what was bundled from where (Debian package and version, for the licence
# notes) and the newest glibc / libstdc++ symbol versions the files need (the loader quotes them).
files=("$dest/patho.node")
for entry in "${bundled[@]}"; do files+=("$dest/${entry%%|*}"); done
[ -n "$plugin_rel" ] && files+=("$dest/$plugin_rel")
versions="$(for f in "${files[@]}"; do objdump -T "$f"; done | grep -oE 'GLIBC(XX)?_[0-9.]+' | sort -u)"
glibc="$(grep '^GLIBC_' <<<"$versions" | sed 's/GLIBC_//' | sort -V | tail -1)"
glibcxx="$(grep '^GLIBCXX_' <<<"$versions" | sed 's/GLIBCXX_//' | sort -V | tail -1)"
libs_json=""
for entry in "${bundled[@]}"; do
  IFS='|' read -r soname real pkg <<<"$entry"
  ver="$( [ -n "$pkg" ] && dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)"
  libs_json+="${libs_json:+,}{\"file\":\"$soname\",\"from\":\"$real\",\"debianPackage\":\"$pkg\",\"version\":\"$ver\"}"
done
cat >"$dest/manifest.json" <<JSON
{
  "platform": "$tag",
  "addon": "patho.node",
  "cudaPlugin": $( [ -n "$plugin_rel" ] && echo "\"$plugin_rel\"" || echo null ),
  "bundled": [$libs_json],
  "requires": { "glibc": "$glibc", "glibcxx": "$glibcxx" },
  "notBundled": ["libcudnn.so.9 (cuDNN 9)", "libnccl.so.2 (NCCL 2)", "libcuda.so.1 (NVIDIA driver)"]
}
JSON
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$dest/manifest.json"

echo "prebuild: $dest ($(du -sh "$dest" | cut -f1)): patho.node ${bundled[*]%%|*}${plugin_rel:+ $plugin_rel}; needs glibc >= $glibc, GLIBCXX_$glibcxx"
