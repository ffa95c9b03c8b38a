"""Issue 16: a user's detector and classifier end to end on the CPU backends, and bad input in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.bench.conftest import FAST
from tests.bench.detector import (
    NET,
    CpuTracedGridDetector,
    TinyClassifier,
    TinyDetector,
    card_yaml,
    export,
    seed_weights,
)
from tx2setup.bench import cli
from tx2setup.bench.modelcard import ModelCard
from tx2setup.bench.postprocess import compare, decode_yolo
from tx2setup.bench.userpipeline import preprocess_numpy, preprocess_torch

cv2 = pytest.importorskip("cv2")  # opencv-python-headless, a dev dependency (pyproject)

FRAME_H, FRAME_W, FRAMES = 120, 160, 12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user_model")
    det_pt, det_onnx = export(TinyDetector(), (1, 3, NET, NET), "det", tmp, "images")
    cls_pt, cls_onnx = export(TinyClassifier(), (1, 3, 64, 64), "cls", tmp, "x")
    video = tmp / "in.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (FRAME_W, FRAME_H))
    rng = np.random.RandomState(0)
    for _ in range(FRAMES):
        w.write(rng.randint(0, 256, (FRAME_H, FRAME_W, 3)).astype(np.uint8))
    w.release()
    card = card_yaml(tmp / "det.yaml")
    return {
        "det_pt": det_pt,
        "det_onnx": det_onnx,
        "cls_pt": cls_pt,
        "cls_onnx": cls_onnx,
        "video": video,
        "card": card,
    }


def _frames_in(path) -> tuple:
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n, size = n + 1, (img.shape[1], img.shape[0])
    cap.release()
    return n, size


def test_detector_end_to_end_on_a_video(files, tmp_path, capsys):
    out, js = tmp_path / "out.avi", tmp_path / "r.json"
    argv = [
        "--model",
        str(files["det_pt"]),
        "--model-card",
        str(files["card"]),
        "--source",
        f"video:{files['video']}",
    ]
    argv += ["--pipeline", "both", "--backends", "cpu-fp32,ort-cpu", "--write-video", str(out), "--json", str(js)]
    assert cli.main([*argv, "--plain", *FAST[:-1]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("det.pt benchmark on ")  # the title names the model
    assert "INFERENCE-ONLY fps" in text and "END-TO-END fps" in text
    # the sink's stage is in the printed stage breakdown, labelled, and said to count end to end
    stage_head = next(line for line in text.splitlines() if line.startswith("backend") and "capture" in line)
    assert "write (sink)" in stage_head and "stack" not in stage_head
    assert "write (sink): encoding and writing each annotated frame (--write-video), counted in END-TO-END" in text
    doc = json.loads(js.read_text())
    assert doc["conditions"]["model_card"]["output"]["kind"] == "yolo"
    assert doc["conditions"]["model_card"]["input"]["resize"] == "letterbox"
    videos = []
    for r in doc["results"]:
        assert r["correct"], r.get("pipeline_error")
        assert r["inference"]["fps"] > 0
        assert set(r["end_to_end_pipelines"]) == {"optimized", "naive"}
        for e2e in r["end_to_end_pipelines"].values():
            assert e2e["fps"] > 0 and e2e["checked_frames"] > 0 and e2e["postprocess_error"] is None
            assert "write" in e2e["stage_order"] and e2e["stages"]["write"] > 0  # writing counts
            # CPU stages run one after another: a frame's latency holds every stage, the write included
            assert e2e["mean_ms"] >= 0.99 * sum(e2e["stages"].values())
            videos.append(e2e["video"])
    assert len({v["path"] for v in videos}) == 4  # one file per backend x pipeline
    for v in videos:
        assert _frames_in(v["path"]) == (v["frames"], (FRAME_W, FRAME_H))
        assert v["frames"] >= 5


def _post(out: np.ndarray, card: ModelCard) -> dict:
    return decode_yolo(out, card, (FRAME_H, FRAME_W))


def test_onnx_and_torch_detector_agree_under_the_iou_rule(files):
    import onnxruntime as ort

    card = ModelCard("images", NET, NET, resize="letterbox", output="yolo", conf_threshold=0.2)
    module = torch.jit.load(str(files["det_pt"]))
    sess = ort.InferenceSession(str(files["det_onnx"]), providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(1)
    boxes = 0
    for _ in range(4):
        frame = rng.randint(0, 256, (FRAME_H, FRAME_W, 3)).astype(np.uint8)
        x = torch.zeros(1, 3, NET, NET)
        preprocess_torch(torch.from_numpy(frame), card, x)
        ref = _post(module(x).detach().numpy(), card)
        got = _post(sess.run(None, {"images": x.numpy()})[0], card)
        assert compare(ref, got, 1e-3, card) is None
        boxes += len(ref["scores"])
    assert boxes > 0  # the rule was exercised on real boxes


def test_the_detector_trace_holds_no_device_and_the_cpu_grid_trace_does(tmp_path):
    # A grid made with torch.arange in forward is traced as a constant on the tracing device:
    # the CPU-traced file then adds a CPU tensor to CUDA activations on a GPU backend. The test
    # detector keeps its grid in a buffer (moved by .to()), so its file runs on any device.
    x = torch.rand(1, 3, NET, NET)
    movable = torch.jit.trace(seed_weights(TinyDetector()), x)
    baked = torch.jit.trace(seed_weights(CpuTracedGridDetector()), x)
    assert 'device=torch.device("cpu")' not in movable.code
    assert 'device=torch.device("cpu")' in baked.code
    torch.testing.assert_close(movable(x), baked(x))  # the same detector either way
    wide = movable.to(torch.float64)  # the grid follows the module's .to() with the weights
    assert wide(x.double()).dtype == torch.float64


def test_the_iou_rule_fails_a_moved_box_a_wrong_label_and_a_lost_box():
    card = ModelCard("images", NET, NET, output="yolo", conf_threshold=0.2)
    ref = {"boxes": np.array([[10.0, 10, 50, 50]]), "scores": np.array([0.9]), "labels": np.array([1])}
    moved = dict(ref, boxes=np.array([[14.0, 10, 54, 50]]))  # IoU 0.82
    assert "no match" in compare(ref, moved, 1e-3, card)
    assert "no match" in compare(ref, dict(ref, labels=np.array([2])), 1e-3, card)
    assert "no match" in compare(ref, dict(ref, scores=np.array([0.8])), 1e-3, card)
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, dtype=int)}
    assert "no match" in compare(ref, empty, 1e-3, card)
    assert "not in the reference" in compare(empty, ref, 1e-3, card)
    # a box at the confidence threshold may fall either side of it
    edge = dict(ref, scores=np.array([0.2005]))
    assert compare(edge, empty, 1e-3, card) is None
    assert compare(ref, dict(ref, boxes=np.array([[10.2, 10, 50, 50]])), 1e-3, card) is None


def test_numpy_and_torch_preprocessing_agree():
    frame = np.random.RandomState(2).randint(0, 256, (FRAME_H, FRAME_W, 3)).astype(np.uint8)
    for card in (
        ModelCard("x", 64, 96, resize="letterbox", channel_order="bgr", mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2]),
        ModelCard("x", 64, 64, layout="NHWC"),
    ):
        out = torch.zeros(card.shape(1))
        preprocess_torch(torch.from_numpy(frame), card, out)
        np.testing.assert_allclose(preprocess_numpy(frame, card), out.numpy(), atol=1e-4)


def test_classifier_topk_end_to_end_on_synthetic_frames(files, tmp_path):
    js, out = tmp_path / "c.json", tmp_path / "c.avi"
    argv = ["--model", str(files["cls_onnx"]), "--input-shape", "x=1x3x64x64", "--output", "topk:3"]
    argv += ["--pipeline", "both", "--backends", "ort-cpu", "--json", str(js), "--write-video", str(out), *FAST]
    assert cli.main(argv) == 0
    doc = json.loads(js.read_text())
    assert doc["conditions"]["model_card"]["output"]["kind"] == "topk:3"
    (r,) = doc["results"]
    assert r["correct"] and r["inference"]["fps"] > 0
    for e2e in r["end_to_end_pipelines"].values():
        assert e2e["fps"] > 0 and e2e["checked_frames"] > 0
    n, size = _frames_in(out)
    assert n == r["end_to_end_pipelines"]["optimized"]["video"]["frames"] and size == (672, 376)  # a ZED eye


def test_the_gstreamer_writer_where_cv2_is_missing(tmp_path, monkeypatch):
    pytest.importorskip("gi")
    from tx2setup.bench import sink

    monkeypatch.setattr(sink, "_cv2", lambda: None)
    s = sink.VideoSink(str(tmp_path / "g.avi"))
    card = ModelCard("x", 8, 8, output="yolo")
    res = {"boxes": np.array([[4.0, 4, 30, 20]]), "scores": np.array([0.9]), "labels": np.array([0])}
    for i in range(7):
        s.write(sink.annotate(np.full((48, 64, 3), i * 30, dtype=np.uint8), res, card))
    s.close()
    assert s.writer == "gstreamer"
    assert _frames_in(tmp_path / "g.avi") == (7, (64, 48))


def _one_line(capsys, argv: list, *needles: str) -> str:
    """Exit 2, one line on stderr holding each needle, nothing on stdout, no IR dump or traceback."""
    assert cli.main([*argv, *FAST]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1, err
    assert cap.out == ""
    for n in needles:
        assert n in err[0], err[0]
    for dump in ("graph(", "Traceback", "%"):  # TorchScript IR values are %names
        assert dump not in err[0], err[0]
    return err[0]


def _junk(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"not a model")
    return str(path)


def _card(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# The "Bad input gets one line" list, one case each: (argv from the files, words the line must hold)
BAD_INPUT = {
    # the case: the batch dimension forgotten (TorchScript would dump its IR)
    "torchscript missing batch dim": (
        lambda f, t: ["--model", f["det_pt"], "--input-shape", "images=3x128x128"],
        ["--input-shape images=3x128x128", "batch"],
    ),
    "onnx missing batch dim": (
        lambda f, t: ["--model", f["det_onnx"], "--input-shape", "images=3x128x128"],
        ["--input-shape images=3x128x128", "rank 3", "batch"],
    ),
    "onnx wrong rank": (
        lambda f, t: ["--model", f["det_onnx"], "--input-shape", "images=1x1x3x128x128"],
        ["--input-shape images=1x1x3x128x128", "rank 5", "rank 4"],
    ),
    "torchscript wrong rank": (
        lambda f, t: ["--model", f["det_pt"], "--input-shape", "images=1x1x3x128x128"],
        ["--input-shape images=1x1x3x128x128", "rejects"],
    ),
    "onnx unknown input name": (
        lambda f, t: ["--model", f["det_onnx"], "--input-shape", "img=1x3x128x128"],
        ["--input-shape img=1x3x128x128", "no input 'img'", "images"],
    ),
    "torchscript unknown input name": (
        lambda f, t: ["--model", f["det_pt"], "--input-shape", "x=1x3x128x128"],
        ["--input-shape x=1x3x128x128", "no input 'x'"],
    ),
    "unreadable onnx": (
        lambda f, t: ["--model", _junk(t, "junk.onnx"), "--input-shape", "images=1x3x8x8"],
        ["--model", "junk.onnx"],
    ),
    "unreadable torchscript": (
        lambda f, t: ["--model", _junk(t, "junk.pt"), "--input-shape", "x=1x3x8x8"],
        ["--model", "junk.pt"],
    ),
    "card size does not match the model": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            _card(t, "w.yaml", "input: {name: images, size: [64, 64]}"),
        ],
        ["--input-shape"],
    ),
    "card input name not the model's": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            _card(t, "n.yaml", "input: {name: x, size: [128, 128]}"),
        ],
        ["--input-shape x=", "no input 'x'"],
    ),
    "card output kind the output cannot be": (
        lambda f, t: [
            "--model",
            f["cls_pt"],
            "--model-card",
            _card(t, "c.yaml", "input: {name: x, size: [64, 64]}\noutput: yolo"),
        ],
        ["--model-card", "c.yaml", "yolo"],
    ),
    "card dtype not the model's": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            _card(t, "d.yaml", "input: {name: images, size: [128, 128], dtype: uint8}"),
        ],
        ["--model-card", "d.yaml", "dtype uint8", "float32"],
    ),
    "card field out of range": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            _card(t, "b.yaml", "input: {name: images, size: [128, 128], layout: NCWH}"),
        ],
        ["--model-card", "b.yaml", "layout"],
    ),
    "video that does not exist": (
        lambda f, t: ["--model", f["det_onnx"], "--model-card", f["card"], "--source", f"video:{t / 'none.avi'}"],
        ["--source video:", "none.avi"],
    ),
    "video that cannot be opened": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            f["card"],
            "--source",
            f"video:{_junk(t, 'broken.avi')}",
        ],
        ["--source video:", "broken.avi"],
    ),
    "npy video that is not one": (
        lambda f, t: [
            "--model",
            f["det_onnx"],
            "--model-card",
            f["card"],
            "--source",
            f"video:{_junk(t, 'broken.npy')}",
        ],
        ["--source video:", "broken.npy"],
    ),
    "write-video without an end-to-end run": (
        lambda f, t: ["--model", f["det_onnx"], "--input-shape", "images=1x3x128x128", "--write-video", "o.avi"],
        ["--write-video"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line(case, files, tmp_path, capsys):
    build, needles = BAD_INPUT[case]
    _one_line(capsys, build({k: str(v) for k, v in files.items()}, tmp_path), *needles)


def test_z2color_video_that_cannot_be_opened_is_one_line(tmp_path, capsys):
    _one_line(capsys, ["--source", f"video:{_junk(tmp_path, 'z.avi')}"], "--source video:", "z.avi")


def test_a_cpu_traced_file_failing_on_a_gpu_backend_says_why_in_one_line(tmp_path):
    # what the H100 printed (2026-12-06) for det_cpu_grid.pt on cuda-fp32 was only the first
    # line of TorchScript's error: "The following operation failed in the TorchScript interpreter."
    from tx2setup.bench.backends import TorchBackend
    from tx2setup.bench.cli import failure_line
    from tx2setup.bench.spec import load_spec

    pt, _ = export(CpuTracedGridDetector(), (1, 3, NET, NET), "det_cpu_grid", tmp_path, "images")
    spec = load_spec(str(pt), input_shapes=[f"images=1x3x{NET}x{NET}"])
    exc = RuntimeError(
        "The following operation failed in the TorchScript interpreter.\n"
        "Traceback of TorchScript, serialized code (most recent call last):\n"
        '  File "code/__torch__/tests/bench/detector.py", line 30, in forward\n'
        "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!\n"
    )
    line = failure_line(exc, spec, TorchBackend("cuda-fp32"))
    assert "\n" not in line and line.startswith("RuntimeError: Expected all tensors to be on the same device")
    assert "det_cpu_grid.pt has device cpu written into its TorchScript code" in line
    movable, _ = export(TinyDetector(), (1, 3, NET, NET), "det", tmp_path, "images")
    clean = failure_line(
        exc, load_spec(str(movable), input_shapes=[f"images=1x3x{NET}x{NET}"]), TorchBackend("cuda-fp32")
    )
    assert "written into" not in clean  # no hint where the file holds no device
    assert failure_line(ValueError("bad\nmore"), spec, TorchBackend("cpu-fp32", device="cpu")) == "ValueError: bad"
