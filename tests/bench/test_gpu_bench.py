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


def _result(name, inf_ms, inf_fps, opt_fps, naive_fps, device="cuda", correct=True, b2b=None):
    pipes = {"optimized": {"fps": opt_fps, "median_ms": 1.0}, "naive": {"fps": naive_fps, "median_ms": 9.0}}
    return {
        "backend": name,
        "device": device,
        "correct": correct,
        "inference": {"median_ms": inf_ms, "fps": inf_fps, "back_to_back_ms": b2b},
        "end_to_end_pipelines": pipes,
    }


def _floors(fp16_eager=0.09, compiled=0.05):
    return {
        "float16 eager": {"back_to_back_ms": {"median": fp16_eager}},
        "float16 torch.compile": {"back_to_back_ms": {"median": compiled}},
    }


def _doc(*results, unavailable=()):
    return {"results": list(results), "unavailable": list(unavailable)}


def test_medians_over_repeats_and_goals(gb):
    g = "compile-fp16-graph"
    docs = [
        _doc(_result(g, 0.10, 8000, 7000, 80, b2b=0.05), _result("cuda-fp16", 0.3, 3000, 2000, 80)),  # all
        _doc(_result(g, 0.12, 7000, 5000, 70, b2b=0.06)),  # later repeats: key backends only
        _doc(_result(g, 0.11, 7500, 6500, 90, b2b=0.055)),
    ]
    agg = gb.per_backend(docs)
    a = agg[g]
    assert a["repeats"] == 3 and a["inference_median_ms"]["median"] == pytest.approx(0.11)
    assert a["e2e_optimized_fps"]["spread_pct"] == pytest.approx(100 * 2000 / 6500)
    assert a["e2e_over_inference_fps"]["median"] == pytest.approx(6500 / 7500)  # of 7/8, 5/7, 6.5/7.5
    # (b): per repeat e2e FPS x median event latency (ms -> s): 7000*0.10, 5000*0.12, 6500*0.11
    assert a["e2e_over_inverse_median_latency"]["median"] == pytest.approx(0.7)
    goals = gb.goals(agg, _floors(compiled=0.045), on_gpu=True)
    lat = goals[0]
    assert lat["goal"].startswith("best backend back-to-back") and lat["backend"] == g
    assert lat["value"] == pytest.approx(0.055 / 0.045) and lat["met"] is False  # 1.22 > 1.1
    wall = next(x for x in goals if "(a)" in x["goal"])
    event = next(x for x in goals if "(b)" in x["goal"])
    assert wall["value"] == pytest.approx(6500 / 7500) and wall["met"] is False  # 0.867 < 0.9
    assert event["value"] == pytest.approx(0.7) and event["met"] is False  # 0.7 < 0.8
    naive = next(x for x in goals if "naive" in x["goal"])
    assert naive["value"] == pytest.approx(6500 / 90) and naive["met"] is True  # median of per-repeat ratios
    # a backend at the floor meets the latency goal; the eager backend ran once: never a goal's backend
    assert gb.goals(agg, _floors(compiled=0.0545), on_gpu=True)[0]["met"] is True
    assert all(x["backend"] == g for x in goals)


def test_each_graph_backend_meets_only_its_matching_floor(gb):
    docs = [
        _doc(
            _result("cuda-fp16-graph", 0.1, 9000, 8500, 80, b2b=0.095),
            _result("compile-fp16-graph", 0.07, 12000, 11000, 80, b2b=0.06),
        )
    ]
    goals = gb.goals(gb.per_backend(docs), _floors(fp16_eager=0.09, compiled=0.05), on_gpu=True)
    best = goals[0]
    # compile-fp16-graph is the fastest, so it is judged, against the compiled floor (not the eager one)
    assert best["backend"] == "compile-fp16-graph" and best["value"] == pytest.approx(0.06 / 0.05)
    info = next(x for x in goals if x["backend"] == "cuda-fp16-graph" and "floor" in x["goal"])
    assert info["met"] is None and info["value"] == pytest.approx(0.095 / 0.09)


def test_floor_table_takes_medians_over_runs(gb):
    v = lambda b, s: {"label": "float16 eager", "back_to_back_ms": b, "synced_median_ms": s}  # noqa: E731
    t = gb.floor_table([{"variants": [v(0.09, 0.1)]}, {"variants": [v(0.08, 0.1), {"label": "x", "error": "E"}]}])
    assert t["float16 eager"]["back_to_back_ms"]["median"] == pytest.approx(0.085)
    assert "x" not in t


def test_video_rows_sit_beside_the_synthetic_figure(gb):
    agg = gb.per_backend([_doc(_result("compile-fp16-graph", 0.07, 12000, 11000, 80))])
    vdoc = _doc(_result("compile-fp16-graph", 0.07, 12000, 2200, 0))
    vdoc["results"][0]["end_to_end_pipelines"]["optimized"]["stages"] = {"capture": 0.4}
    rows = gb.video_rows(vdoc, agg)
    assert rows[0]["synthetic_fps"] == 11000 and rows[0]["video_over_synthetic"] == pytest.approx(0.2)


def test_cpu_logic_check_decides_nothing(gb):
    agg = gb.per_backend([_doc(_result("cpu-fp32", 3.0, 300, 10, 5, device="cpu"))])
    goals = gb.goals(agg, {}, on_gpu=False)
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
    assert gb.goals(gb.per_backend(docs), _floors(), on_gpu=True)[0]["met"] is False  # nothing correct
