#!/usr/bin/env bash
# One-command GPU check of the probe's CUDA backend (docs/probe.md, "GPU check").
#
#   scripts/gpu-check.sh ANCHOR.json [--out DIR] [--build-dir DIR] [--prebuilt DIR]
#                        [--deadline SECONDS] [--jobs N] [--experts auto|graph|gemv|grouped|mixed]
#
# On any NVIDIA node: builds the probe (Release) for the compute capability
# nvidia-smi reports, with the CUDA libraries found where the node has them
# (/usr/local/cuda/lib64, /usr/lib/x86_64-linux-gnu, or a Python package's
# nvidia/*/lib; nothing is downloaded), then runs `moeprobe check --backend
# cuda` (fp32; bf16 with fp8 KV; bf16 with the grouped-GEMV experts; bf16 with
# the tensor-core grouped-GEMM experts), the
# `[gpu]` tests, `moeprobe peaks`, a timed `moeprobe run` (with --budget-s)
# for qwen3-30b-a3b and glm-5.2, and
# prints `moeprobe compare` of those runs against ANCHOR.json (production
# figures on the same card and shapes, e.g. a GPU run's anchor-torch.json; the
# project never reads such a file on its own). All steps share one deadline
# (default 470 s, inside 8 minutes with margin).
#
# --experts: the expert-GEMM variant of the timed runs (MOEPROBE_CUDA_EXPERTS).
#   auto (default): mixed when the GEMV and grouped-GEMM checks both passed on
#   this card, else the grouped GEMV when its check passed (MoE layers then
#   replay from a CUDA graph), else the cuBLASLt graph.
#   grouped: the tensor-core grouped GEMM for bf16 at every token count.
#   mixed: the GEMV at few rows per expert, the grouped GEMM from 4 on.
#
# --prebuilt DIR: skip the build and use DIR/moeprobe and DIR/moeprobe_tests
#   (for nodes without the project's build dependencies; see README).
#
# Exit status: 0 every correctness check passed (missed performance targets
# are findings, printed in the table); 1 a correctness check failed or could
# not finish; 2 set-up failure (no GPU, no toolkit, build failed, bad usage).
set -u
set -o pipefail

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHOR="" OUT="" BUILD="" PREBUILT="" EXPERTS=auto DEADLINE=470 JOBS=$(nproc 2>/dev/null || echo 4)
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --prebuilt) PREBUILT=$2; shift 2 ;;
    --deadline) DEADLINE=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --experts) EXPERTS=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage ;;
    *) [ -z "$ANCHOR" ] || { echo "gpu-check: one anchor file only" >&2; exit 2; }; ANCHOR=$1; shift ;;
  esac
done
case $EXPERTS in auto|graph|gemv|grouped|mixed) ;; *) echo "gpu-check: --experts takes auto, graph, gemv, grouped or mixed" >&2; exit 2 ;; esac
[ -n "$ANCHOR" ] || { echo "gpu-check: give the production figures (anchor JSON) as the argument" >&2; usage; }
[ -r "$ANCHOR" ] || { echo "gpu-check: cannot read anchor file $ANCHOR" >&2; exit 2; }
ANCHOR=$(cd "$(dirname "$ANCHOR")" && pwd)/$(basename "$ANCHOR")
OUT=${OUT:-$ROOT/gpu-check-out}
BUILD=${BUILD:-$ROOT/build-gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
SECONDS=0

die() { echo "gpu-check: $*" >&2; exit 2; }
left() { echo $((DEADLINE - SECONDS)); }

# ---- the card ----
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: is this an NVIDIA node?"
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[ -n "$CAP" ] || die "nvidia-smi reports no GPU (compute_cap query empty)"
ARCH=${CAP/./}
case "$NAME" in
  *H200*) DEVICE=h200 ;;
  *H100*PCIe*) DEVICE=h100-pcie ;;
  *H100*) DEVICE=h100-sxm ;;
  *B200*) DEVICE=b200 ;;
  *B300*) DEVICE=b300 ;;
  *L40S*) DEVICE=l40s ;;
  *A100*80GB*) DEVICE=a100-80gb ;;
  *A100*) DEVICE=a100-40gb ;;
  *) DEVICE="" ;;
esac
echo "gpu-check: $NAME, compute capability $CAP (sm_$ARCH), catalog device '${DEVICE:-none}'"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv

# ---- CUDA libraries where the node has them ----
LIBDIRS=""
add_lib() { [ -d "$1" ] && case ":$LIBDIRS:" in *":$1:"*) ;; *) LIBDIRS=${LIBDIRS:+$LIBDIRS:}$1 ;; esac; }
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib \
         /usr/lib/x86_64-linux-gnu; do add_lib "$d"; done
PYNV=""
if command -v python3 >/dev/null; then
  for sp in $(python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
    for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && { add_lib "$d"; PYNV="$PYNV $d"; }; done
  done
fi
# shellcheck disable=SC2086  # $1 is a glob on purpose
find_lib() {  # first directory of LIBDIRS holding $1
  local IFS=:; for d in $LIBDIRS; do ls "$d"/$1 >/dev/null 2>&1 && { echo "$d"; return; }; done
}
for l in 'libcudart.so*' 'libcublasLt.so*' 'libnccl.so*'; do
  echo "gpu-check: $l -> $(find_lib "$l" || true)"
done
export LD_LIBRARY_PATH=$LIBDIRS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# ---- build (Release, this card's architecture) ----
if [ -n "$PREBUILT" ]; then
  BIN=$(cd "$PREBUILT" && pwd)
  TESTS=$BIN/moeprobe_tests
else
  NVCC=$(command -v nvcc || true)
  [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
  for d in $PYNV; do [ -z "$NVCC" ] && [ -x "$d/../bin/nvcc" ] && NVCC=$(cd "$d/../bin" && pwd)/nvcc; done
  [ -n "$NVCC" ] || die "no nvcc (PATH, /usr/local/cuda/bin, or a Python nvidia/cuda_nvcc package); use --prebuilt DIR"
  NCCL_ARGS=()
  NCCL_DIR=$(find_lib 'libnccl.so*' || true)
  if [ -n "$NCCL_DIR" ] && [ ! -e /usr/local/cuda/include/nccl.h ] && [ ! -e /usr/include/nccl.h ]; then
    [ -e "$NCCL_DIR/../include/nccl.h" ] && NCCL_ARGS=(-DMOEPLAN_NCCL_INCLUDE="$NCCL_DIR/../include")
  fi
  if [ -n "$NCCL_DIR" ]; then
    NCCL_LIB=$(ls "$NCCL_DIR"/libnccl.so "$NCCL_DIR"/libnccl.so.* 2>/dev/null | head -1)
    NCCL_ARGS+=(-DMOEPLAN_NCCL_LIBRARY="$NCCL_LIB")
  fi
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  echo "=== build (sm_$ARCH, Release, $JOBS jobs, at ${SECONDS}s) ==="
  cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
        -DMOEPLAN_WITH_CUDA=ON "${NCCL_ARGS[@]}" >"$OUT/configure.log" 2>&1 \
    || { tail -20 "$OUT/configure.log"; die "configure failed (log: $OUT/configure.log); missing build dependencies? use --prebuilt DIR"; }
  grep -q "building the CUDA probe backend" "$OUT/configure.log" \
    || die "configure did not enable the CUDA backend (log: $OUT/configure.log)"
  timeout $(($(left) - 120)) cmake --build "$BUILD" -j "$JOBS" --target moeprobe moeprobe_tests \
      >"$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log"; die "build failed or ran out of time (log: $OUT/build.log)"; }
  BIN=$BUILD/apps/moeprobe
  TESTS=$BUILD/tests/moeprobe_tests
  echo "=== build done at ${SECONDS}s ==="
fi
[ -x "$BIN/moeprobe" ] || die "no moeprobe binary in $BIN"
P=("$BIN/moeprobe" --data "$ROOT/data")

# ---- steps under one deadline ----
FAILED=() INCOMPLETE=() SUMMARY=() LAST_RC=0
step() {  # step NAME LIMIT KIND(correctness|timing) CMD…
  local name=$1 t=$2 kind=$3; shift 3
  local l; l=$(left); ((l < t)) && t=$l
  if ((t < 5)); then
    SUMMARY+=("$name: skipped (deadline)"); LAST_RC=124
    [ "$kind" = correctness ] && INCOMPLETE+=("$name")
    return
  fi
  echo "=== $name (limit ${t}s, at ${SECONDS}s) ==="
  local s=$SECONDS rc
  timeout "$t" "$@"; rc=$?; LAST_RC=$rc
  SUMMARY+=("$name: rc=$rc in $((SECONDS - s))s")
  if [ $rc -eq 124 ]; then
    [ "$kind" = correctness ] && INCOMPLETE+=("$name")
  elif [ $rc -ne 0 ]; then
    # A run that fails verification exits 3; any other failure of a correctness step counts too.
    if [ "$kind" = correctness ] || [ $rc -eq 3 ]; then FAILED+=("$name (rc=$rc)"); fi
  fi
  return 0
}
DEV=(); [ -n "$DEVICE" ] && DEV=(--device "$DEVICE")

step check-cuda 60 correctness "${P[@]}" check --backend cuda
step check-cuda-bf16-fp8kv 60 correctness "${P[@]}" check --backend cuda --dtype bf16 --kv-dtype fp8
step check-cuda-gemv-experts 60 correctness env MOEPROBE_CUDA_EXPERTS=gemv "${P[@]}" check \
    --backend cuda --dtype bf16
GEMV_OK=$LAST_RC
step check-cuda-grouped-experts 60 correctness env MOEPROBE_CUDA_EXPERTS=grouped "${P[@]}" check \
    --backend cuda --dtype bf16
GROUPED_OK=$LAST_RC
step check-cuda-simt-attention 60 correctness env MOEPROBE_CUDA_ATTN=simt "${P[@]}" check \
    --backend cuda --dtype bf16
if [ "$EXPERTS" = auto ]; then
  if [ "$GEMV_OK" -eq 0 ] && [ "$GROUPED_OK" -eq 0 ]; then EXPERTS=mixed
  elif [ "$GEMV_OK" -eq 0 ]; then EXPERTS=gemv; else EXPERTS=graph; fi
fi
echo "gpu-check: timed runs use MOEPROBE_CUDA_EXPERTS=$EXPERTS"
step tests-gpu 90 correctness "$TESTS" "[gpu]"
step peaks 60 timing "${P[@]}" peaks --format md --out "$OUT/peaks.md"
[ -f "$OUT/peaks.md" ] && cat "$OUT/peaks.md"
# What is left after the runs: compare and the summary (about 15 s).
l=$(left); QB=$(( (l - 40) * 2 / 5 )); ((QB > 120)) && QB=120
if ((QB >= 20)); then
  step run-qwen3-30b-a3b $((QB + 30)) timing env MOEPROBE_CUDA_EXPERTS="$EXPERTS" "${P[@]}" run --model qwen3-30b-a3b --backend cuda \
      "${DEV[@]}" --dtype bf16 --budget-s "$QB" --no-progress --out "$OUT/cal-qwen3-30b-a3b.json"
fi
l=$(left); GB=$((l - 45))
if ((GB >= 20)); then
  step run-glm-5.2 $((GB + 30)) timing env MOEPROBE_CUDA_EXPERTS="$EXPERTS" "${P[@]}" run --model glm-5.2 --backend cuda "${DEV[@]}" \
      --dtype bf16 --tokens 1,4,16,64,256 --context 4096 --prefill 512 --budget-s "$GB" \
      --no-progress --out "$OUT/cal-glm-5.2.json"
fi

# ---- the comparison table ----
CALS=()
for f in "$OUT/cal-qwen3-30b-a3b.json" "$OUT/cal-glm-5.2.json"; do [ -f "$f" ] && CALS+=("$f"); done
if [ ${#CALS[@]} -gt 0 ]; then
  echo "=== compare against $ANCHOR ==="
  "${P[@]}" compare "${CALS[@]}" --anchor "$ANCHOR" | tee "$OUT/compare.txt"
  "${P[@]}" compare "${CALS[@]}" --anchor "$ANCHOR" --format json --out "$OUT/compare.json" || true
else
  echo "gpu-check: no calibration file was written; nothing to compare"
fi

echo "=== summary (${SECONDS}s of ${DEADLINE}s) ==="
printf '  %s\n' "${SUMMARY[@]}"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "gpu-check: CORRECTNESS FAILED: ${FAILED[*]}"; exit 1
fi
if [ ${#INCOMPLETE[@]} -gt 0 ]; then
  echo "gpu-check: correctness not established (timed out or skipped): ${INCOMPLETE[*]}"; exit 1
fi
echo "gpu-check: every correctness check passed; outputs in $OUT"
exit 0
