#!/usr/bin/env bash
# The GPU measurements of issues 16 and 17 on the lent device, as steps run in the order STEPS
# names them (default: all five; they take more than one call's 10 minutes, so a session gives
# each call a part, e.g. STEPS="bench user repro", then STEPS="study tests"):
#   bench  benchmarks/gpu_bench.py: independent floor, 3 repeats in their own processes, the
#          decoded-video run, the floor again; goals (issue 17)             limit BENCH_S (330)
#   user   benchmarks/user_model_gpu.py: the test detector end to end on every backend, on a
#          640x480 video (issue 16)                                          limit USER_S (200)
#   repro  the compiled-preprocessing ladder (benchmarks/compile_preprocess_repro.py)  REPRO_S (100)
#   study  the per-backend error study behind the tolerances (benchmarks/tolerance_study.py) STUDY_S (120)
#   tests  the GPU tests (tests/bench/test_gpu.py, tests/bench/test_gate.py)  what is left
# Each step runs under its own time limit, cut to what is left of DEADLINE_S (585: inside the
# device's 600 s), so a slow step cannot take the others' results with it; a step with under
# 20 s left is skipped and says so.
# The device returns at most 8 files from $OUT: the per-run JSON (bench_repN.json,
# bench_video.json, user_det_*.json) is packed into runs.tar.gz at the end; the summaries
# (gpu_bench.json, user_model_gpu.json, repro.json, tolerance.json) and log.txt stay beside it.
# pytest travels as wheels in .whl/ when the machine has none (docs/bench.md, "GPU numbers").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_call_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
STEPS=${STEPS:-bench user repro study tests}
D=${DEADLINE_S:-585}
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo; echo "=== $1 ($(date +%T), ${SECONDS}s)"; }
# the step's limit: its own, or what is left of the deadline if less
limit() { local left=$(( D - SECONDS )); echo $(( $1 < left ? $1 : left )); }

step "machine"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv || true
"$PY" -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
"$PY" -c 'import cv2; print("cv2", cv2.__version__)' || echo "no cv2"
"$PY" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())' || true
if ! "$PY" -c 'import pytest' 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi

for s in $STEPS; do
    case $s in
        bench) t=$(limit "${BENCH_S:-330}") ;;
        user) t=$(limit "${USER_S:-200}") ;;
        repro) t=$(limit "${REPRO_S:-100}") ;;
        study) t=$(limit "${STUDY_S:-120}") ;;
        tests) t=$(limit 600) ;;
        *) echo "gpu_call.sh: unknown step $s"; continue ;;
    esac
    step "$s (limit ${t}s)"
    if [ "$t" -lt 20 ]; then echo "SKIPPED: ${t}s left of DEADLINE_S=$D"; continue; fi
    case $s in
        # its repeats stop early enough to leave ~60 s for the video run and the second floor
        bench) timeout "$t" "$PY" benchmarks/gpu_bench.py --out "$OUT" --budget-s "$(( t - 60 ))" ;;
        user) timeout "$t" "$PY" benchmarks/user_model_gpu.py --out "$OUT" --timeout "$(( t - 50 ))" ;;
        repro) timeout "$t" "$PY" benchmarks/compile_preprocess_repro.py --json "$OUT/repro.json" ;;
        study) timeout "$t" "$PY" benchmarks/tolerance_study.py --json "$OUT/tolerance.json" ;;
        tests) timeout "$t" "$PY" -m pytest -q -p no:cacheprovider tests/bench/test_gpu.py tests/bench/test_gate.py ;;
    esac
    echo "$s exit $?"
done

step "pack"
runs=$(cd "$OUT" && ls bench_rep*.json bench_video.json user_det_*.json 2>/dev/null)
if [ -n "$runs" ]; then
    # shellcheck disable=SC2086  # file names without spaces, listed above
    (cd "$OUT" && tar czf runs.tar.gz $runs && rm -f $runs)
fi
ls -l "$OUT"
step "done"
