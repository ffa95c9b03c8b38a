"""The ONNX export (what the TensorRT backend builds from) matches torch through onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tx2setup.bench.backends import onnx_for
from tx2setup.bench.correctness import rel_error
from tx2setup.bench.spec import load_spec
from tx2setup.bench.trt import engine_path

ort = pytest.importorskip("onnxruntime")


def test_z2color_onnx_export_matches_torch():
    spec = load_spec("z2color")
    path = onnx_for(spec)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x", "meta"]
    gen = torch.Generator().manual_seed(2)
    for _ in range(2):
        x, meta = spec.random_inputs(gen)
        got = sess.run(None, {"x": x.numpy(), "meta": meta.numpy()})[0]
        ref = spec.reference([x, meta])
        assert got.shape == (1, 20)
        assert rel_error(got, ref) < 1e-5
    assert onnx_for(spec) == path  # cached by weights hash


def test_engine_cache_key_has_model_trt_gpu_precision_batch(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"model-a")
    a = engine_path(str(onnx), "10.3.0", "NVIDIA Tegra X2", "fp16", 1)
    assert a.endswith(".engine") and "trt10.3.0" in a and "NVIDIA_Tegra_X2" in a and "fp16-b1" in a
    assert engine_path(str(onnx), "10.3.0", "NVIDIA Tegra X2", "int8", 1) != a
    assert engine_path(str(onnx), "8.2.1", "NVIDIA Tegra X2", "fp16", 1) != a
    onnx.write_bytes(b"model-b")
    assert engine_path(str(onnx), "10.3.0", "NVIDIA Tegra X2", "fp16", 1) != a


def test_rel_error_rejects_nan_and_shape_mismatch():
    ref = np.ones((1, 20))
    assert rel_error(np.full((1, 20), np.nan), ref) == float("inf")
    assert rel_error(np.ones((1, 10)), ref) == float("inf")
    assert rel_error(ref, np.full((1, 20), np.nan)) == float("inf")  # a NaN reference never passes
    assert rel_error(ref * 1.01, ref) == pytest.approx(0.01)


def test_export_is_opset_13_with_only_basic_ops():
    onnx = pytest.importorskip("onnx")
    spec = load_spec("z2color")
    model = onnx.load(onnx_for(spec))
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    assert default == [13]  # TensorRT 8.2 (JetPack 4.6) parses up to ~13; torch 1.10 exports <= 14
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {"Conv", "Relu", "MaxPool", "Concat", "Reshape", "Gemm", "Constant"}, (
        ops
    )  # Constant: the Reshape target
    assert {"Conv", "Concat", "Gemm"} <= ops
    # metadata first in the Concat, as the reference port
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    assert concat.input[0] == "meta"


def test_user_onnx_model_end_to_end_through_python_m(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 14 * 14, 5)
    )
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(2, 3, 16, 16),), str(path), input_names=["img"], dynamo=False)
    out = tmp_path / "r.json"
    argv = [sys.executable, "-m", "tx2setup.bench", "--model", str(path), "--input-shape", "img=2x3x16x16"]
    argv += [
        "--json",
        str(out),
        "--warmup",
        "0",
        "--min-iters",
        "5",
        "--min-duration",
        "0",
        "--no-telemetry",
        "--plain",
    ]
    env = dict(os.environ, TX2SETUP_CACHE=str(tmp_path / "cache"))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "NOTE end-to-end not measured" in proc.stdout
    doc = json.loads(out.read_text())
    c = doc["conditions"]
    assert c["model_kind"] == "onnx" and c["model"] == "tiny.onnx" and c["input_shapes"] == {"img": [2, 3, 16, 16]}
    by = {r["backend"]: r for r in doc["results"]}
    assert set(by) == {"ort-cpu"}  # the only backend here that runs an ONNX file
    r = by["ort-cpu"]
    assert r["correct"] and r["max_rel_error"] < 1e-6 and r["end_to_end"] is None
    reasons = {u["backend"]: u["reason"] for u in doc["unavailable"]}
    assert "torch backends need z2color or TorchScript" in reasons["cpu-fp32"]
    assert doc["verdict"]["measure"] == "inference"
