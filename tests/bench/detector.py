"""The seeded test models of issue 16 (a YOLO-style detector, a classifier) and their export.

Shared by tests/bench/test_user_model.py and benchmarks/user_model_gpu.py (no pytest import, so
the benchmark runs where pytest is absent).

The detector's cell grid is a buffer, so a traced file moves to any device: a grid made with
``torch.arange`` inside forward is written into the trace as a constant on the tracing device
(``device=torch.device("cpu")`` in the TorchScript code), and a CPU-traced file then mixes CPU
and CUDA tensors on a GPU. ``CpuTracedGridDetector`` keeps that form on purpose: it is what a
user's file traced on the CPU looks like (tests/bench/test_user_model.py pins the constant).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from torch import nn

NET = 128  # the detector's square input (height = width)
VIDEO_H, VIDEO_W, VIDEO_FRAMES = 480, 640, 60  # benchmarks/user_model_gpu.py's clip


class TinyDetector(nn.Module):
    """A few convs and a YOLOv5-style head: (B, cells, 5 + classes), xywh in input pixels, sigmoid scores."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1)
        )
        self.head = nn.Conv2d(16, 5 + classes, 1)
        cells = NET // 8  # three stride-2 convs
        ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        # (1, cells*cells, 2) of (x, y): moves with .to(device, dtype) like the weights
        self.register_buffer("grid", torch.stack((xs, ys), -1).reshape(1, cells * cells, 2).float())

    def cell_grid(self, h: int, w: int) -> torch.Tensor:
        grid: torch.Tensor = self.grid  # type: ignore[assignment]
        return grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.head(torch.relu(self.body(images)))
        b, c, h, w = f.shape
        f = f.permute(0, 2, 3, 1).reshape(b, h * w, c)
        xy = (f[..., :2].sigmoid() + self.cell_grid(h, w)) * (NET / w)
        wh = f[..., 2:4].sigmoid() * 48.0
        out: torch.Tensor = torch.cat((xy, wh, f[..., 4:].sigmoid()), -1)
        return out


class CpuTracedGridDetector(TinyDetector):
    """The same outputs, its grid made in forward: traced on the CPU, the trace holds device cpu."""

    def cell_grid(self, h: int, w: int) -> torch.Tensor:
        ys = torch.arange(h).view(h, 1).expand(h, w).reshape(1, h * w, 1).float()
        xs = torch.arange(w).view(1, w).expand(h, w).reshape(1, h * w, 1).float()
        return torch.cat((xs, ys), -1)


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def seed_weights(module: nn.Module) -> nn.Module:
    """Seeded weights, independent of construction order (each from its own size)."""
    module.eval()
    for p in module.parameters():
        p.data = torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3
    return module


def export(module: nn.Module, shape: tuple[int, ...], name: str, tmp: Path, input_name: str) -> tuple[Path, Path]:
    """The seeded module traced to TorchScript (on the CPU) and exported to ONNX (opset 13)."""
    torch.manual_seed(0)
    seed_weights(module)
    ts = tmp / (name + ".pt")
    torch.jit.trace(module, torch.zeros(shape)).save(str(ts))  # type: ignore[no-untyped-call]
    onnx = tmp / (name + ".onnx")
    kwargs: dict[str, object] = {"input_names": [input_name], "output_names": ["out"], "opset_version": 13}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter, as tx2setup.bench.spec.export_onnx uses
    torch.onnx.export(module, (torch.zeros(shape),), str(onnx), **kwargs)  # type: ignore[arg-type]
    return ts, onnx


def card_yaml(path: Path, conf_threshold: float = 0.2) -> Path:
    """The detector's model card: 128x128 letterboxed RGB /255, YOLO output, 3 labels."""
    path.write_text(
        f"input: {{name: images, size: [{NET}, {NET}], resize: letterbox}}\n"
        f"output: {{kind: yolo, conf_threshold: {conf_threshold}, labels: [a, b, c]}}\n"
    )
    return path


def vga_frames(count: int = VIDEO_FRAMES) -> list[np.ndarray]:
    """RGB 640x480 frames of moving bars over fixed noise (benchmarks/user_model_gpu.py's clip)."""
    yy, xx = np.mgrid[0:VIDEO_H, 0:VIDEO_W]
    noise = np.random.default_rng(5).integers(0, 40, (VIDEO_H, VIDEO_W, 3), dtype=np.uint8)
    clip = []
    for i in range(count):
        img = np.empty((VIDEO_H, VIDEO_W, 3), dtype=np.uint8)
        img[..., 0] = (xx + 5 * i) % 256
        img[..., 1] = (yy * 2 + 3 * i) % 256
        img[..., 2] = ((xx // 32 + yy // 32 + i) % 2) * 200
        clip.append(np.ascontiguousarray(img + noise))
    return clip
