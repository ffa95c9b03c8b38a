"""Issue 16: an ONNX model whose input is uint8 (its preprocessing inside) on onnxruntime CPU.

The card says ``dtype: uint8``; the pipeline feeds raw frames (no normalisation), and the
reference gets the same uint8 input the backend saw.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from torch import nn

from tests.bench.conftest import FAST
from tx2setup.bench import cli
from tx2setup.bench.modelcard import ModelCard
from tx2setup.bench.spec import load_spec
from tx2setup.bench.userpipeline import preprocess_numpy, preprocess_torch

H, W = 48, 64


class U8Classifier(nn.Module):
    """Takes uint8 pixels, casts and normalises inside (as exported detectors with a built-in
    preprocessing step do), then a tiny classifier."""

    def __init__(self, nhwc: bool) -> None:
        super().__init__()
        self.nhwc = nhwc
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255.0 - 0.5
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        return self.net(x)


def _export_u8(tmp, nhwc: bool) -> str:
    module = U8Classifier(nhwc).eval()
    for p in module.parameters():  # seeded weights
        p.data = torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5
    shape = (1, H, W, 3) if nhwc else (1, 3, H, W)
    path = tmp / ("u8_nhwc.onnx" if nhwc else "u8.onnx")
    kwargs: dict = {"input_names": ["pixels"], "output_names": ["out"], "opset_version": 13}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    torch.onnx.export(module, torch.zeros(shape, dtype=torch.uint8), str(path), **kwargs)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    tmp = tmp_path_factory.mktemp("u8")
    return {"nchw": _export_u8(tmp, False), "nhwc": _export_u8(tmp, True), "tmp": tmp}


def test_the_spec_reads_uint8_from_the_onnx_file(models):
    spec = load_spec(models["nchw"], input_shapes=[f"pixels=1x3x{H}x{W}"])
    assert spec.input_dtypes == ["uint8"]
    (x,) = spec.random_inputs(torch.Generator().manual_seed(0))
    assert x.dtype == torch.uint8 and int(x.max()) > 200  # raw pixels over the whole range
    # a pipeline probe comes back as float32; the reference feeds the model its own dtype
    ref = spec.reference([x.float()])
    assert ref.shape == (1, 10)


def test_a_uint8_card_feeds_raw_pixels():
    frame = np.random.RandomState(3).randint(0, 256, (H, W, 3)).astype(np.uint8)
    for layout, want in (("NCHW", frame.transpose(2, 0, 1)[None]), ("NHWC", frame[None])):
        card = ModelCard("pixels", H, W, dtype="uint8", layout=layout)
        out = torch.zeros(card.shape(1), dtype=torch.uint8)
        preprocess_torch(torch.from_numpy(frame), card, out)
        np.testing.assert_array_equal(out.numpy(), want)  # the frame itself: no normalisation
        got = preprocess_numpy(frame, card)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    # resized: whole numbers in 0-255, numpy and torch alike
    card = ModelCard("pixels", 32, 32, dtype="uint8", resize="letterbox")
    out = torch.zeros(card.shape(1), dtype=torch.uint8)
    preprocess_torch(torch.from_numpy(frame), card, out)
    assert int(out.max()) > 200
    assert np.abs(out.numpy().astype(int) - preprocess_numpy(frame, card).astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("layout", "source"),
    [("NCHW", "synthetic"), ("NHWC", "video")],  # resized ZED frames; a video at the model's size (raw)
)
def test_uint8_onnx_end_to_end_on_ort_cpu(models, tmp_path, layout, source):
    cv2 = pytest.importorskip("cv2") if source == "video" else None
    model = models["nchw" if layout == "NCHW" else "nhwc"]
    card = tmp_path / "u8.yaml"
    card.write_text(f"input: {{name: pixels, size: [{H}, {W}], dtype: uint8, layout: {layout}}}\noutput: topk:3\n")
    argv = ["--model", model, "--model-card", str(card), "--pipeline", "both", "--backends", "ort-cpu"]
    if cv2 is not None:
        video = tmp_path / "in.avi"
        w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (W, H))
        for i in range(6):
            w.write(np.full((H, W, 3), i * 40, dtype=np.uint8))
        w.release()
        argv += ["--source", f"video:{video}"]
    js = tmp_path / "r.json"
    assert cli.main([*argv, "--json", str(js), *FAST]) == 0
    doc = json.loads(js.read_text())
    assert doc["conditions"]["model_card"]["input"]["dtype"] == "uint8"
    (r,) = doc["results"]
    assert r["correct"], r.get("pipeline_error")
    assert r["max_rel_error"] == 0.0  # the same session computes the reference on the same uint8 input
    for e2e in r["end_to_end_pipelines"].values():
        assert e2e["fps"] > 0 and e2e["checked_frames"] > 0 and e2e["postprocess_error"] is None


def test_a_uint8_model_given_by_flags_is_one_line(models, capsys):
    argv = ["--model", models["nchw"], "--input-shape", f"pixels=1x3x{H}x{W}", "--output", "argmax"]
    assert cli.main([*argv, *FAST]) == 2
    cap = capsys.readouterr()
    (line,) = cap.err.strip().splitlines()
    assert "--output" in line and "dtype float32" in line and "uint8" in line, line
