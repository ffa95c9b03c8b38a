#!/usr/bin/env bash
# Issue 17's whole GPU measurement in one call of the lent device (<= 10 minutes), in this order:
#   1. the compiled-preprocessing minimisation (benchmarks/compile_preprocess_repro.py)
#   2. benchmarks/gpu_bench.py: independent floor, 3 repeats in their own processes, the
#      decoded-video run, the floor again; goals
#   3. the per-backend error study behind the tolerances (benchmarks/tolerance_study.py)
#   4. the GPU tests (tests/bench/test_gpu.py, tests/bench/test_gate.py)
# Each step has its own time limit, so a slow one cannot take the others' results with it.
# Writes at most 8 files under $OUT (the device's limit): bench_rep1-3.json, bench_video.json,
# gpu_bench.json, repro.json, tolerance.json, log.txt.
# pytest travels as wheels in .whl/ when the machine has none (docs/bench.md, "GPU numbers").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_call_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo; echo "=== $1 ($(date +%T))"; }
step "machine"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv || true
"$PY" -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
"$PY" -c 'import cv2; print("cv2", cv2.__version__)' || echo "no cv2"
if ! "$PY" -c 'import pytest' 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
D=${DEADLINE_S:-585}
step "compiled preprocessing minimisation"
timeout "${REPRO_S:-100}" "$PY" benchmarks/compile_preprocess_repro.py --json "$OUT/repro.json"
step "gpu_bench"
# what is left of the device's 600 s, less ~110 s for the two steps after it; its repeats stop
# early enough to leave ~60 s for the video run and the second floor
left=$(( D - ${RESERVE_S:-110} - SECONDS ))
timeout "$left" "$PY" benchmarks/gpu_bench.py --out "$OUT" --budget-s "$(( left - 60 ))" "$@"
echo "gpu_bench exit $?"
[ "${RESERVE_S:-110}" -lt 30 ] && { step "done (no time left for the study and the tests)"; exit 0; }
step "tolerance study"
timeout $(( (D - SECONDS) / 2 )) "$PY" benchmarks/tolerance_study.py --json "$OUT/tolerance.json"
step "GPU tests"
timeout $(( D - SECONDS )) "$PY" -m pytest -q -p no:cacheprovider tests/bench/test_gpu.py tests/bench/test_gate.py
step "done"
