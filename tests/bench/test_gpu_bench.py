"""benchmarks/gpu_bench.py's aggregation, goals and failure logic on made-up results (no GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench.py"


@pytest.fixture(scope="module")
def gb():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result(name, inf_ms, inf_fps, opt_fps, naive_fps, device="cuda", correct=True):
    pipes = {"optimized": {"fps": opt_fps}, "naive": {"fps": naive_fps}}
    return {
        "backend": name,
        "device": device,
        "correct": correct,
        "inference": {"median_ms": inf_ms, "fps": inf_fps},
        "end_to_end_pipelines": pipes,
    }


def _doc(*results, unavailable=()):
    return {"results": list(results), "unavailable": list(unavailable)}


def test_medians_over_repeats_and_goals(gb):
    docs = [
        _doc(_result("g", 0.10, 8000, 7000, 80), _result("eager", 0.3, 3000, 2000, 80)),  # repeat 1: all
        _doc(_result("g", 0.12, 7000, 5000, 70)),  # later repeats: key backends only
        _doc(_result("g", 0.11, 7500, 6500, 90)),
    ]
    agg = gb.per_backend(docs)
    g = agg["g"]
    assert g["repeats"] == 3 and g["inference_median_ms"]["median"] == pytest.approx(0.11)
    assert g["e2e_optimized_fps"]["spread_pct"] == pytest.approx(100 * 2000 / 6500)
    assert g["e2e_over_inference_fps"]["median"] == pytest.approx(6500 / 7500)  # of 7/8, 5/7, 6.5/7.5
    # ratios are per repeat, then the median: 7000*0.10, 5000*0.12, 6500*0.11 (ms -> s)
    assert g["e2e_over_inverse_median_latency"]["median"] == pytest.approx(0.7)
    goals = gb.goals(agg, floor_ms=0.1, on_gpu=True)
    by = {x["goal"].split()[0]: x for x in goals}
    lat = by["best"]
    assert lat["backend"] == "g" and lat["value"] == pytest.approx(1.1) and lat["met"] is True
    e2e = next(x for x in goals if x["goal"].startswith("optimized e2e"))
    assert e2e["met"] is True and e2e["value"] == pytest.approx(6500 / 7500)
    assert e2e["backend"] == "g"
    info = next(x for x in goals if x["goal"].startswith("(info)"))
    assert info["met"] is None  # labelled information, never decides the exit
    naive = next(x for x in goals if "naive" in x["goal"])
    assert naive["value"] == pytest.approx(6500 / 90) and naive["met"] is True  # median of per-repeat ratios
    # a slower floor ratio misses
    assert gb.goals(agg, floor_ms=0.05, on_gpu=True)[0]["met"] is False
    # the eager backend ran once: never a goal's backend
    assert all(x["backend"] == "g" for x in goals)


def test_cpu_logic_check_decides_nothing(gb):
    agg = gb.per_backend([_doc(_result("cpu-fp32", 3.0, 300, 10, 5, device="cpu"))])
    goals = gb.goals(agg, floor_ms=None, on_gpu=False)
    assert goals and all(x["met"] is None for x in goals)
    assert not any(x["goal"].startswith("best") for x in goals)  # no floor: no latency goal


def test_failures_name_incorrect_and_unprepared_backends(gb):
    docs = [
        _doc(
            _result("g", 0.1, 8000, 7000, 80, correct=False),
            unavailable=[
                {"backend": "compile-fp16-graph", "reason": "prepare failed: RuntimeError: x"},
                {"backend": "trt-fp16", "reason": "TensorRT Python bindings (import tensorrt) not installed"},
            ],
        )
    ]
    fails = gb.failures(docs, [1])
    assert any("g incorrect" in f for f in fails)
    assert any("compile-fp16-graph prepare failed" in f for f in fails)
    assert not any("trt-fp16" in f for f in fails)  # not installed is not a failure
    assert any("exited 1" in f for f in fails)
    assert gb.goals(gb.per_backend(docs), 0.1, on_gpu=True)[0]["met"] is False  # nothing correct
