#!/usr/bin/env bash
# Instance quality of the binary model on MoNuSeg (issue 15): pixel Dice next to AJI, PQ, F1@0.5 and the
# count error. Trains `patho train` on the 24 training images of bench/splits/monuseg.json, then scores
# the held-out images that have official per-nucleus XML and the 14 official test images, with instance
# ground truth rasterised from those XMLs by bench/monuseg-instances.ts (the method is in its header).
# The XMLs (ykrmm/monuseg, CC BY-NC-SA) are read from the search tool's mirror and written under out/
# (ignored); nothing of them is committed. Run on a quiet machine (uptime load under ~3):
#   npx tsc -p tsconfig.json && bash bench/monuseg-aji.sh [TIME_LIMIT_S=600] [WIDTH=16]
# MONUSEG_TRAIN_FLAGS and MONUSEG_EVAL_FLAGS (e.g. "--min-area 20 --split on") add flags to train and evaluate.
# Prints the machine line and one JSON line per evaluation set; everything stays in out/monuseg-aji/.
set -euo pipefail
cd "$(dirname "$0")/.."
TIME_LIMIT=${1:-600}
WIDTH=${2:-16}
MIRROR=${MONUSEG_MIRROR:-/work/.mirror/ykrmm+monuseg/repo}
DATA=../shared/data/monuseg2018
OUT=out/monuseg-aji
XML=out/monuseg-xml

if [ ! -d "$XML" ] || [ -z "$(ls -A "$XML" 2>/dev/null)" ]; then
  [ -d "$MIRROR" ] || { echo "monuseg-aji: no XMLs in $XML and no mirror at $MIRROR (fetch github:ykrmm/monuseg first)" >&2; exit 1; }
  mkdir -p "$XML"
  git -C "$MIRROR" ls-tree -r --name-only HEAD | grep '\.xml$' | while read -r f; do
    # blobs the snapshot lacks are skipped (their images are left out and named below)
    git -C "$MIRROR" show "HEAD:$f" > "$XML/$(basename "$f")" 2>/dev/null || rm -f "$XML/$(basename "$f")"
  done
fi

rm -rf "$OUT"
mkdir -p "$OUT/train/images" "$OUT/train/masks"
node -e '
const s = require("./bench/splits/monuseg.json");
for (const stem of s.train) console.log(stem);' | while read -r stem; do
  ln -s "$(realpath "$DATA/train/images/$stem.tif")" "$OUT/train/images/$stem.tif"
  ln -s "$(realpath "$DATA/train/masks/$stem.png")" "$OUT/train/masks/$stem.png"
done
node dist/bench/monuseg-instances.js --xml "$XML" --images "$DATA/train/images" --out "$OUT/heldout" --stems bench/splits/monuseg.json:test
node dist/bench/monuseg-instances.js --xml "$XML" --images "$DATA/test/images" --out "$OUT/test"

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
node bin/patho.js train --data "$OUT/train" --val-split 0 --width "$WIDTH" ${MONUSEG_TRAIN_FLAGS:-} --time-limit "$TIME_LIMIT" --out "$OUT/run" --overwrite
for set in heldout test; do
  node bin/patho.js evaluate --model "$OUT/run/best.safetensors" --data "$OUT/$set" --instances "$OUT/$set/instances" ${MONUSEG_EVAL_FLAGS:-} --json > "$OUT/$set.json"
  node -e '
const r = require(process.argv[1]);
const m = r.mean, f = (k) => m[k] === undefined ? null : +m[k].toFixed(4);
console.log(JSON.stringify({ set: process.argv[2], images: r.images.length, "dice@0.5": f("dice@0.5"), aji: f("aji"), pq: f("pq"), "f1@0.5": f("f1@0.5"), countError: f("countError") }));' "$(realpath "$OUT/$set.json")" "$set"
done
