"""The human-readable output tells why a result is slow: conditions, telemetry, bottleneck hints."""

from __future__ import annotations

import io

from tx2setup.bench.pipeline import STAGES
from tx2setup.bench.report import document, render, verdict


def _stats(median_ms, fps):
    return {"median_ms": median_ms, "p99_ms": median_ms, "fps": fps, "unstable": False, "unstable_reasons": []}


def _e2e(pipeline, fps, stages):
    full = dict.fromkeys(STAGES, 0.01)
    full.update(stages)
    return {**_stats(1000.0 / fps, fps), "pipeline": pipeline, "stages": full}


def _doc(results, **cond):
    conditions = {
        "machine": "tx2-01",
        "board": "NVIDIA Jetson TX2",
        "jetson": True,
        "nvpmodel": {"name": "MAXP_CORE_ARM", "id": 3},
        "jetson_clocks": {"pinned": False, "method": "jetson_clocks --show"},
        "cuda": "10.2",
        "cudnn": 8201,
        "tensorrt": "8.2.1",
        "onnxruntime": None,
        "batch": 1,
        "model_kind": "z2color",
        "source": {"kind": "synthetic"},
        "gpu": {"name": "NVIDIA Tegra X2"},
        "cpu": "ARMv8",
    }
    conditions.update(cond)
    tel = {
        "source": "tegrastats",
        "samples": 40,
        "interval_ms": 200,
        "fields": {
            "gpu_util_pct": {"min": 10.0, "mean": 35.0, "max": 60.0},
            "power_w": {"min": 5, "mean": 7, "max": 9},
        },
    }
    return document(conditions, results, [], verdict(results, None), {}, tel)


def _render(doc):
    buf = io.StringIO()
    render(doc, buf, use_rich=False)
    return buf.getvalue()


def _result(name, device, inf, pipes, graph=False):
    e2e = dict((p.get("pipeline"), p) for p in pipes)
    return {
        "backend": name,
        "precision": "fp16",
        "device": device,
        "graph": graph,
        "correct": True,
        "max_rel_error": 1e-4,
        "tolerance": 2e-2,
        "inference": inf,
        "end_to_end": e2e.get("optimized"),
        "end_to_end_pipelines": e2e,
    }


def test_conditions_telemetry_and_hints_are_printed():
    # 2 ms on the GPU but 200 FPS (5 ms per synchronised iteration): the host is the limit
    slow = _result(
        "cuda-fp16",
        "cuda",
        _stats(2.0, 200.0),
        [_e2e("naive", 20.0, {"preprocess": 30.0, "stack": 12.0, "h2d": 2.0}), _e2e("optimized", 180.0, {})],
    )
    out = _render(_doc([slow]))
    assert "nvpmodel MAXP_CORE_ARM (mode 3)" in out and "clocks NOT pinned" in out
    assert "CUDA 10.2" in out and "TensorRT 8.2.1" in out
    assert "HINT clocks are not pinned" in out
    assert "telemetry (tegrastats, 40 samples" in out and "GPU util 35% (10%-60%)" in out and "power 7.0 W" in out
    assert "HINT cuda-fp16: host/launch-bound: GPU idle 60%" in out and "try a CUDA-graph backend" in out
    naive = next(line for line in out.splitlines() if line.startswith("HINT cuda-fp16 naive"))
    assert "biggest other stage: preprocess 30.000 ms" in naive and "10%" in naive
    assert not any(line.startswith("HINT cuda-fp16 optimized") for line in out.splitlines())  # 90%: no hint
    assert "GPU stages overlap in 'optimized'" in out


def test_cpu_run_does_not_claim_overlap_and_user_model_says_why_no_e2e():
    cpu = _result("cpu-fp32", "cpu", _stats(3.0, 300.0), [_e2e("optimized", 290.0, {})])
    out = _render(_doc([cpu], jetson=False, nvpmodel=None, jetson_clocks={"pinned": None, "method": "unknown"}))
    assert "overlap" not in out
    assert "nvpmodel -" in out and "clocks pinned? (unknown)" in out and "HINT clocks" not in out
    user = _result("cpu-fp32", "cpu", _stats(3.0, 300.0), [])
    out = _render(_doc([user], model_kind="onnx"))
    assert "NOTE end-to-end not measured: the camera-to-steering pipeline is Z2Color's" in out
    out = _render(_doc([user], batch=4))
    assert "NOTE end-to-end not measured: it runs at batch 1" in out
