#!/usr/bin/env bash
# Puts cuDNN 9 and NCCL 2 headers and libraries (from the pip wheels nvidia-cudnn-cu13 and
# nvidia-nccl-cu13) into .nvidia/ for building libpatho_cuda.so. Idempotent; never committed.
# Users who have cuDNN/NCCL elsewhere set PATHO_NVIDIA_ROOT (or CUDNN_ROOT / NCCL_ROOT) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.nvidia
if [ -f "$dest/cudnn/include/cudnn.h" ] && [ -f "$dest/nccl/include/nccl.h" ] && [ -e "$dest/cudnn/lib/libcudnn.so.9" ] && [ -e "$dest/nccl/lib/libnccl.so.2" ]; then
  exit 0
fi
mkdir -p .deps "$dest"
pip=$(command -v pip3 || command -v pip)
"$pip" download --quiet --no-deps -d .deps nvidia-cudnn-cu13 nvidia-nccl-cu13 2>.deps/pip.log || { cat .deps/pip.log >&2; exit 1; }
# Only the headers and the libraries the plugin links against (the dispatcher libcudnn.so.9 is
# small; cuDNN loads its engine libraries at run time from wherever libcudnn.so.9 was found).
python3 - <<'PY'
import glob, os, zipfile
for whl in glob.glob('.deps/nvidia_cudnn_cu13-*.whl') + glob.glob('.deps/nvidia_nccl_cu13-*.whl'):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            keep = '/include/' in n or n.endswith('/lib/libcudnn.so.9') or n.endswith('/lib/libnccl.so.2')
            if keep and n.startswith('nvidia/'):
                z.extract(n, '.nvidia-tmp')
PY
cp -r .nvidia-tmp/nvidia/* "$dest"/ && rm -rf .nvidia-tmp
for lib in "$dest/cudnn/lib/libcudnn.so.9:libcudnn.so" "$dest/nccl/lib/libnccl.so.2:libnccl.so"; do
  ln -sf "$(basename "${lib%%:*}")" "$(dirname "${lib%%:*}")/${lib##*:}"
done
echo "cuDNN and NCCL headers/libraries in $dest"
