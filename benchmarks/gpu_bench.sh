#!/usr/bin/env bash
# GPU numbers: benchmarks/gpu_bench.py alone (the independent floor before and after, `tx2setup
# bench` repeated in their own processes, the decoded-video run, medians, the goals). Writes JSON
# under $OUT (or ./gpu_bench_out) and prints the summary table last. benchmarks/gpu_call.sh runs
# it together with the compiled-preprocessing ladder, the tolerance study and the GPU tests.
# Exit: 0 goals met, 1 a goal missed, 2 a backend incorrect or failed, 3 no CUDA (without --quick).
# Usage: benchmarks/gpu_bench.sh [--quick] [--repeats N]   (--quick without CUDA: CPU logic check)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_bench_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv || true
"$PY" benchmarks/gpu_bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log"
