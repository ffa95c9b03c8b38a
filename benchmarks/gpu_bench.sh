#!/usr/bin/env bash
# GPU numbers in one call: `tx2setup bench` repeated (default 3: every available backend with
# both pipelines first, then the key torch CUDA-graph backends), the bare CUDA-graph floor timed
# before and after each repeat, medians and spreads, and the issue's goals. Writes JSON (and
# the profile trace) under $OUT (or ./gpu_bench_out) and prints the summary table last.
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
