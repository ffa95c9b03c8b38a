#!/usr/bin/env bash
# Every available backend of `tx2setup bench`, both pipelines, plus a bare CUDA-graph replay
# floor, in one call on a GPU machine. Writes JSON (and the profile trace) under $OUT (or
# ./gpu_bench_out) and prints a summary table last. Usage: benchmarks/gpu_bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_bench_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv || true
"$PY" benchmarks/gpu_bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log"
