#!/usr/bin/env bash
# The GPU kit's one command (issue 16): the whole CUDA verdict from the kit made by
# scripts/pack-gpu-kit.sh, on a machine with an NVIDIA GPU, its driver, pip's cuDNN/NCCL and PyTorch
# but maybe no Node.js (the kit carries one). Stages, most important first, each under its own
# time budget; the budgets add up to 525 s, less than 540 s, and the whole run (unpacking included) never
# goes past 540 s, and a stage that runs out of time is cut and reported:
#   load   unpack, plugin load, `patho doctor`               op parity   every op vs the CPU backend
#   step   UNet step, width 64, 512x512, batch 16, fp32 and bf16, vs PyTorch on the same weights/batch
#   nccl   collectives over the GPUs, values, fencing, abort  split/large the >2^31-element paths
#   timing patho fp32/TF32/bf16 and PyTorch fp32/TF32/AMP bf16 training steps, then summary.md
# Everything it learns goes under ${OUT:-.}: gpu-check.log (all output), stages.jsonl, parity.jsonl
# (one line per check with its measured error and tolerance), bench.jsonl, summary.md (the verdict
# and the table for bench/RESULTS.md). The kit's libraries go on LD_LIBRARY_PATH of the kit's own
# node processes only; python3/torch never see them.
#   OUT=/some/dir bash scripts/gpu-check.sh [kit folder, default .gpu-kit] [--rehearse]
# --rehearse: the CPU backend (cpu:1) plays the device and the sizes are tiny, to try the kit and
# this script on a machine without a GPU. Exit status: 0 every check passed; 1 a check failed or a
# stage broke or ran out of time; 2 no usable CUDA device (nothing verified; the log says why).
set -uo pipefail
cd "$(dirname "$0")/.."
TOTAL=540
RESERVE=8  # kept for the summary
kit=.gpu-kit
rehearse=0
for a in "$@"; do
  case "$a" in
    --rehearse) rehearse=1 ;;
    *) kit=$a ;;
  esac
done
out=${OUT:-.}
mkdir -p "$out" && out=$(cd "$out" && pwd)
log=$out/gpu-check.log
: >"$log"
: >"$out/stages.jsonl"
: >"$out/parity.jsonl"
: >"$out/bench.jsonl"
exec > >(tee -a "$log") 2>&1
teepid=$!
echo "gpu-check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), writing to $out"

work=$(mktemp -d "${TMPDIR:-/tmp}/patho-gpu-check.XXXXXX")
device=cuda:0
[ $rehearse -eq 1 ] && device=cpu:1
trap 'rm -rf "$work"' EXIT
failed=0

elapsed() { echo $((SECONDS)); }
# stage NAME BUDGET CMD...: runs CMD under min(BUDGET, time left) and records the result in
# stages.jsonl; its exit status is left in $stage_rc. With $capture set, CMD's output is also
# copied there.
stage_rc=0
capture=
stage() {
  local name=$1 budget=$2
  shift 2
  local left=$((TOTAL - RESERVE - SECONDS))
  local limit=$((budget < left ? budget : left))
  if [ "$limit" -lt 5 ]; then
    echo "== $name: SKIPPED (out of time: ${left} s left of ${TOTAL})"
    echo "{\"stage\":\"$name\",\"budget\":$budget,\"seconds\":0,\"result\":\"out of time\"}" >>"$out/stages.jsonl"
    failed=1
    stage_rc=124
    return
  fi
  echo "== $name (budget ${limit} s, ${SECONDS} s elapsed)"
  local t0=$SECONDS rc
  if [ -n "$capture" ]; then
    timeout -k 5 "$limit" "$@" | tee "$capture"
    rc=${PIPESTATUS[0]}
  else
    timeout -k 5 "$limit" "$@"
    rc=$?
  fi
  local took=$((SECONDS - t0)) result=passed
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then result="timed out"; failed=1
  elif [ $rc -ne 0 ]; then result="failed (exit $rc)"; failed=1; fi
  echo "== $name: $result in ${took} s"
  echo "{\"stage\":\"$name\",\"budget\":$limit,\"seconds\":$took,\"result\":\"$result\"}" >>"$out/stages.jsonl"
  stage_rc=$rc
}
finish() {  # finish EXIT_CODE [no-gpu reason]
  local code=$1
  if [ -x "${node:-}" ] && [ -f "$work/dist/test/cuda/kit-summary.js" ]; then
    if [ -n "${2:-}" ]; then "${penv[@]}" "$node" "$work/dist/test/cuda/kit-summary.js" "$out" --device "$device" --no-gpu "$2"
    else "${penv[@]}" "$node" "$work/dist/test/cuda/kit-summary.js" "$out" --device "$device"; fi
  else
    printf '# GPU check\n\n**%s**\n\nSee gpu-check.log.\n' "${2:-the kit could not run (see gpu-check.log)}" >"$out/summary.md.tmp" &&
      mv "$out/summary.md.tmp" "$out/summary.md"
    cat "$out/summary.md"
  fi
  echo "gpu-check: exit $code after ${SECONDS} s (budget ${TOTAL} s)"
  exec >&- 2>&-
  wait "$teepid" 2>/dev/null  # gpu-check.log is complete before the command returns
  exit "$code"
}

# ---- load: unpack, the kit's node, plugin, doctor ----
if [ ! -f "$kit/kit.tar.xz" ]; then
  echo "gpu-check: Expected $kit/kit.tar.xz (run scripts/pack-gpu-kit.sh first)"
  finish 1
fi
if command -v xz >/dev/null; then
  tar -C "$work" -xJf "$kit/kit.tar.xz" || { echo "gpu-check: could not unpack $kit/kit.tar.xz"; finish 1; }
else  # no xz binary: Python's tarfile reads xz
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$kit/kit.tar.xz" "$work" ||
    { echo "gpu-check: could not unpack $kit/kit.tar.xz (no xz, and python3 failed)"; finish 1; }
fi
echo "gpu-check: unpacked in ${SECONDS} s"
cat "$work/MANIFEST"
export PATHO_KIT_COMMIT=$(sed -n 's/.* from \([^ ,]*\).*/\1/p' "$work/MANIFEST" | head -1)
node=$work/node
chmod +x "$node"
# Only the kit's node processes get the kit's libraries (oneDNN, Gloo, libgomp, ...); python3 and
# torch run with this machine's own environment. VIRTUAL_ENV points the CUDA loader at the Python
# environment holding pip's cuDNN, NCCL and NVRTC wheels (as an activated venv would).
pyprefix=$(python3 -c 'import sys; print(sys.prefix)' 2>/dev/null || true)
penv=(env "LD_LIBRARY_PATH=$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "PATHO_ADDON=$work/build/Release/patho.node"
  "PATHO_PYTHON_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")
[ -n "$pyprefix" ] && [ -z "${VIRTUAL_ENV:-}" ] && penv+=("VIRTUAL_ENV=$pyprefix")
for pkg in cudnn nccl; do
  var=PATHO_$(echo $pkg | tr a-z A-Z)_PATH
  if [ -z "${!var:-}" ]; then
    dir=$(python3 -c "import nvidia.$pkg as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null) &&
      [ -d "$dir" ] && penv+=("$var=$dir")
  fi
done
"${penv[@]}" "$node" --version >/dev/null || { echo "gpu-check: the kit's node does not run here (glibc too old? see MANIFEST)"; finish 1; }
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'

timeout -k 5 30 "${penv[@]}" "$node" -e '
  const d = require(process.argv[1] + "/dist/lib/doctor.js");
  const r = d.doctor();
  console.log(d.formatDoctor(r));
  const device = process.argv[2];
  if (device.startsWith("cuda") && !r.cuda.available) {
    const why = r.cuda.error || r.cuda.cudnnError || "unknown reason";
    require("fs").writeFileSync(process.argv[3], why);
    console.log("gpu-check: NO USABLE CUDA DEVICE: " + why);
    process.exit(2);
  }
  const b = require(process.env.PATHO_ADDON);
  console.log("gpu-check: device under test " + device + ": " + b.backendName(device));
' "$work" "$device" "$work/nogpu.txt"
rc=$?
if [ $rc -eq 2 ]; then
  echo "{\"stage\":\"load\",\"budget\":40,\"seconds\":$SECONDS,\"result\":\"no usable CUDA device\"}" >>"$out/stages.jsonl"
  echo "gpu-check: nothing was verified (parity, NCCL and timings skipped)."
  finish 2 "$(cat "$work/nogpu.txt")"
fi
if [ $rc -ne 0 ]; then
  echo "gpu-check: the addon or the plugin failed to load (exit $rc)"
  echo "{\"stage\":\"load\",\"budget\":40,\"seconds\":$SECONDS,\"result\":\"failed (exit $rc)\"}" >>"$out/stages.jsonl"
  finish 1
fi
echo "{\"stage\":\"load\",\"budget\":40,\"seconds\":$SECONDS,\"result\":\"passed\"}" >>"$out/stages.jsonl"

# ---- sizes: the issue's on a GPU, tiny in a rehearsal ----
if [ $rehearse -eq 1 ]; then W=8; S=64; B=2; torchdev=cpu; steps=(--warmup 1 --steps 2); torchfmt=(--memory-format channels_last)
else W=64; S=512; B=16; torchdev=cuda; steps=(--warmup 2 --steps 8); torchfmt=(); fi
run=$work/dist/test/cuda
torch_ok=0
python3 -c "import torch, sys; sys.exit(0 if '$torchdev' == 'cpu' or torch.cuda.is_available() else 3)" 2>/dev/null && torch_ok=1
[ $torch_ok -eq 1 ] || echo "gpu-check: python3 cannot use torch on $torchdev here: the PyTorch comparisons will fail"

# ---- op parity ----
stage ops 120 "${penv[@]}" "$node" "$run/run-parity.js" "$device" --cases ops --jsonl "$out/parity.jsonl" --stage ops

# ---- UNet step parity at real size, fp32 and bf16 ----
for p in fp32 bf16; do
  stage "step-$p" $([ $p = fp32 ] && echo 60 || echo 55) "${penv[@]}" "$node" "$run/step-parity.js" --device "$device" \
    --width $W --size $S --batch $B --precision $p --work "$work/step" --torch "$work/torch/torch_step.py" \
    --torch-device $torchdev --jsonl "$out/parity.jsonl"
done
rm -rf "$work/step"

# ---- NCCL ----
if [ $rehearse -eq 1 ]; then echo "== nccl: skipped in a rehearsal (no GPU)"
else stage nccl 25 "${penv[@]}" "$node" "$run/run-nccl.js" --jsonl "$out/parity.jsonl"; fi

# ---- tensors past cuDNN's 2^31-element descriptors: forced at small sizes, then at real size ----
stage split 15 "${penv[@]}" PATHO_CUDA_SPLIT_ELEMENTS=4096 "$node" "$run/run-parity.js" "$device" --cases split \
  --jsonl "$out/parity.jsonl" --stage split
if [ $rehearse -eq 1 ]; then echo "== 2^31 elements: skipped in a rehearsal (needs about 60 GB of device memory)"
else stage large 35 "${penv[@]}" "$node" "$run/run-parity.js" "$device" --cases large --jsonl "$out/parity.jsonl" --stage large; fi

# ---- timings, side by side: patho fp32 / TF32 / bf16, PyTorch fp32 / TF32 / AMP bf16 ----
bench_line() {  # bench_line IMPLEMENTATION MODE OUTPUT-FILE EXIT
  local line
  line=$(grep '^{' "$3" 2>/dev/null | tail -1)
  if [ "$4" -eq 0 ] && [ -n "$line" ]; then echo "{\"implementation\":\"$1\",\"mode\":\"$2\",\"result\":$line}" >>"$out/bench.jsonl"
  else echo "{\"implementation\":\"$1\",\"mode\":\"$2\",\"error\":\"exit $4\"}" >>"$out/bench.jsonl"; fi
}
for mode in fp32 tf32 bf16; do
  [ $rehearse -eq 1 ] && [ $mode = tf32 ] && continue  # TF32 is a CUDA setting
  tf32=$([ $mode = tf32 ] && echo 1 || echo 0)
  precision=$([ $mode = bf16 ] && echo bf16 || echo fp32)
  budget=$([ $mode = fp32 ] && echo 40 || echo 25)
  capture=$work/bench.out
  stage "time-patho-$mode" $budget "${penv[@]}" PATHO_CUDA_TF32=$tf32 "$node" "$work/dist/bench/train-step.js" --device "$device" \
    --width $W --size $S --batch $B --precision $precision "${steps[@]}" --no-torch --json
  capture=
  bench_line patho $mode "$work/bench.out" "$stage_rc"
done
for mode in fp32 tf32 bf16; do
  [ $rehearse -eq 1 ] && [ $mode = tf32 ] && continue
  budget=$([ $mode = fp32 ] && echo 35 || echo 25)
  capture=$work/bench.out
  stage "time-pytorch-$mode" $budget python3 "$work/torch/torch_step.py" --device $torchdev --width $W --size $S --batch $B \
    --precision $mode "${steps[@]}" "${torchfmt[@]}" --json
  capture=
  bench_line pytorch $mode "$work/bench.out" "$stage_rc"
done

finish $failed
