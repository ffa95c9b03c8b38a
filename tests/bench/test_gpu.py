"""GPU paths (CUDA graphs, the optimized pipeline): run where CUDA is, skip cleanly elsewhere."""

from __future__ import annotations

import pytest
import torch

from tx2setup.bench import cli
from tx2setup.bench.report import load_json

from .conftest import FAST

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch sees no GPU here)"),
]


def test_graph_backends_both_pipelines_are_correct(tmp_path):
    out = tmp_path / "r.json"
    backends = "cuda-fp32,cuda-fp16,cuda-fp16-graph"
    assert cli.main(["--backends", backends, "--pipeline", "both", "--json", str(out), *FAST]) == 0
    doc = load_json(str(out))
    for r in doc["results"]:
        assert r["correct"], r
        assert r["inference"]["timing"] == "cuda events"
        opt = r["end_to_end_pipelines"]["optimized"]
        assert opt["rel_error"] <= r["tolerance"]
        assert opt["stages"]["h2d"] > 0 and opt["stages"]["inference"] > 0
        assert opt["checked_frames"] >= 2  # sampled frames through the run, and the last
        assert r["inference"]["back_to_back_ms"] > 0 and r["inference"]["event_fps"] > 0


@pytest.mark.parametrize("name", ["cuda-fp16", "cuda-fp16-graph"])
def test_a_one_percent_weight_error_fails_an_fp16_gpu_backend(name):
    from tx2setup.bench.backends import all_backends
    from tx2setup.bench.correctness import check_backend
    from tx2setup.bench.spec import load_spec

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    spec = load_spec("z2color", seed=3)
    b = next(x for x in all_backends() if x.name == name)
    b.prepare(spec)
    ok = check_backend(b, spec, seed=21)
    assert ok["correct"], ok
    with torch.no_grad():  # in place: a captured graph reads the weights by address
        b.module.ip2.weight.mul_(1.01)
    bad = check_backend(b, spec, seed=21)
    assert not bad["correct"] and bad["max_rel_error"] > 1.5 * bad["tolerance"], bad


def test_compiled_preprocessing_finding_holds():
    """Pins docs/bench.md's finding on the compiled preprocessing (benchmarks/compile_preprocess_repro.py)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "compile_preprocess_repro.py"
    spec = importlib.util.spec_from_file_location("compile_preprocess_repro", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not mod.FINDING:
        pytest.skip("no finding recorded yet")
    got = {}
    for name, fn in mod.cases("cuda", "max-autotune-no-cudagraphs"):
        if name in mod.FINDING:
            got[name] = fn()["rel_error"] > 1e-5
    assert got == mod.FINDING


def test_user_detector_end_to_end_on_the_gpu_backends(tmp_path):
    """Issue 16's CUDA loop (userpipeline._CudaOverlapped) on a GPU: the test detector on a video,
    both pipelines, written frames; fp16 included (its ties are judged by postprocess.compare)."""
    import json

    cv2 = pytest.importorskip("cv2")
    from .detector import NET, VIDEO_H, VIDEO_W, TinyDetector, card_yaml, export, vga_frames

    pt, _ = export(TinyDetector(), (1, 3, NET, NET), "det", tmp_path, "images")
    video = tmp_path / "in.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (VIDEO_W, VIDEO_H))
    for img in vga_frames(12):
        w.write(img[:, :, ::-1])
    w.release()
    out, js = tmp_path / "out.avi", tmp_path / "r.json"
    argv = ["--model", str(pt), "--model-card", str(card_yaml(tmp_path / "det.yaml")), "--source", f"video:{video}"]
    argv += ["--backends", "cuda-fp32,cuda-fp16-graph", "--pipeline", "both", "--write-video", str(out)]
    assert cli.main([*argv, "--json", str(js), *FAST]) == 0
    doc = json.loads(js.read_text())
    assert [r["backend"] for r in doc["results"]] == ["cuda-fp32", "cuda-fp16-graph"]
    for r in doc["results"]:
        assert r["correct"], r.get("pipeline_error")
        opt = r["end_to_end_pipelines"]["optimized"]
        assert opt["stages"]["h2d"] > 0 and opt["stages"]["inference"] > 0 and opt["stages"]["write"] > 0
        assert opt["checked_frames"] >= 2 and opt["postprocess_error"] is None
        cap, n = cv2.VideoCapture(opt["video"]["path"]), 0
        while cap.read()[0]:
            n += 1
        assert n == opt["video"]["frames"] >= 5
