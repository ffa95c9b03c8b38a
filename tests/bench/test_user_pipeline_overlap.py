"""The user pipeline's GPU loop (userpipeline._CudaOverlapped) on a CPU stand-in for torch.cuda.

No machine of this project has run it on a GPU (docs/bench.md: GPU row not measured), so this
checks its bookkeeping here: two slots alternate, every frame is postprocessed and written once
in order, each frame's stages come from its own slot's events, and sampled frames carry the
input the backend saw (the fp32 reference agrees on them). Streams run synchronously; events
record the host clock.
"""

from __future__ import annotations

import time
import types

import numpy as np
import torch
from torch import nn

from tx2setup.bench import userpipeline
from tx2setup.bench.backends import TorchBackend
from tx2setup.bench.modelcard import ModelCard
from tx2setup.bench.spec import ModelSpec
from tx2setup.bench.stats import RunPolicy


class _Event:
    def __init__(self, enable_timing: bool = False) -> None:
        self.t = 0.0

    def record(self, stream: object = None) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        return None

    def elapsed_time(self, end: _Event) -> float:
        return (end.t - self.t) * 1000.0


class _Stream:
    def wait_event(self, event: _Event) -> None:
        return None

    def synchronize(self) -> None:
        return None


class _StreamContext:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def __enter__(self) -> _Stream:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None


def _empty(*shape: object, dtype: object = None, device: object = None, pin_memory: bool = False) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype)  # type: ignore[call-overload]


def _fake_torch() -> types.SimpleNamespace:
    """userpipeline's ``torch`` with CUDA replaced: tensors on the CPU, synchronous streams."""
    cuda = types.SimpleNamespace(
        Stream=_Stream, Event=_Event, stream=_StreamContext, synchronize=lambda: None, is_available=lambda: True
    )
    names = {n: getattr(torch, n) for n in dir(torch) if not n.startswith("__")}
    return types.SimpleNamespace(**{**names, "cuda": cuda, "empty": _empty})


class _Sink:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write(self, rgb: np.ndarray) -> None:
        self.frames.append(np.array(rgb))

    def close(self) -> None:
        return None

    def describe(self) -> dict:
        return {"frames": len(self.frames)}


class _Numbered:
    """A FrameSource whose frame i is filled with i (mod 256): order and identity are visible."""

    def __init__(self) -> None:
        self.i = 0

    def open(self) -> None:
        self.i = 0

    def capture(self) -> np.ndarray:
        frame = np.full((24, 32, 3), self.i % 256, dtype=np.uint8)
        self.i += 1
        return frame

    def close(self) -> None:
        return None


def test_the_overlapped_loop_writes_every_frame_once_in_order_with_its_own_stages(monkeypatch):
    monkeypatch.setattr(userpipeline, "torch", _fake_torch())
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    spec = ModelSpec("torchscript", "cls.pt", ["x"], [(1, 3, 16, 16)], module=net)
    backend = TorchBackend("fake-cuda", device="cpu")
    backend.prepare(spec)
    backend.device = "cuda"  # takes the GPU pipeline; its tensors stay on the CPU
    card = ModelCard("x", 16, 16, output="topk:2", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    sink = _Sink()
    policy = RunPolicy(warmup_s=0.0, min_iters=20, min_duration_s=0.0, max_iters=20)
    r = userpipeline.run_user_pipeline(backend, _Numbered(), card, "optimized", policy, sink)
    assert r["iterations"] == 20 and r["pipeline"] == "optimized"
    assert set(r["stage_order"]) == {"capture", "h2d", "preprocess", "inference", "d2h", "postprocess", "write"}
    assert all(r["stages"][s] >= 0 for s in r["stage_order"]) and r["stages"]["inference"] > 0
    # frame 0 is captured first, each later frame once, in order (the sink sees frame i's pixels)
    values = [int(f[0, 0, 0]) for f in sink.frames]
    assert values == list(range(len(values))) and len(values) == r["warmup_frames"] + 20 + 1
    # sampled frames: the input the backend saw for that frame, and its postprocessed result
    why, count = userpipeline.check_probes(spec, card, r["probes"], 1e-5)
    assert why is None and count >= 5
    for x, _result, hw in r["probes"]:
        assert hw == (24, 32)
        pixel = (x[0, 0, 0, 0] * 0.25 + 0.5) * 255.0  # undo the card's normalisation
        assert abs(pixel - round(pixel)) < 1e-3  # a whole frame value, not a blend of two frames
