"""An independent CUDA-graph floor of Z2Color batch 1: what the card does with no harness at all.

Independent of tx2setup.bench on purpose (issue 17: the old floor replayed the harness's own
module and compiled code, so it measured only the harness's overhead): the network is written
out again here from the reference port (raunakdoesdev/pytorch-neural-z2color, nets/z2_color.py:
conv1 12->96 k11 s3, max-pool 3/2, concat of the 6 metadata planes FIRST, conv2 102->256 k3 s2
groups 2, max-pool 3/2, ip1 2560->512, ip2 512->20), its own seeded instance, its own capture
with plain ``torch.cuda.graph``, its own inputs. Run in its own process.

Variants: fp16 eager graph, fp16 torch.compile graph (the mode of compile-fp16-graph), fp32
eager graph. Each is timed two ways with CUDA events, under the bench's settings (no TF32,
cuDNN autotuning):
  - back-to-back: ``blocks`` blocks of ``iters`` replays between two events, no host sync
    inside a block; the median block's time per replay (the floor proper);
  - synchronised: events around one replay, synchronised each time, median (how the bench
    times inference-only; it includes the graph launch's gap on the GPU).
Prints one line per variant and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

COMPILE_MODE = "max-autotune-no-cudagraphs"


class Z2ColorFloor(nn.Module):
    """Z2Color as in the port (nets/z2_color.py), written again, not imported."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(12, 96, kernel_size=11, stride=3)
        self.conv2 = nn.Conv2d(102, 256, kernel_size=3, stride=2, groups=2)
        self.ip1 = nn.Linear(2560, 512)
        self.ip2 = nn.Linear(512, 20)

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2)
        x = torch.cat((meta, x), 1)
        x = F.max_pool2d(F.relu(self.conv2(x)), kernel_size=3, stride=2)
        x = F.relu(self.ip1(x.reshape(x.size(0), -1)))
        return self.ip2(x)  # type: ignore[no-any-return]


class Variant:
    """One captured graph: the module, its static inputs and output stay alive with it."""

    def __init__(self, dtype: torch.dtype, compile_mode: str | None, seed: int) -> None:
        self.label = "{} {}".format(str(dtype).replace("torch.", ""), "torch.compile" if compile_mode else "eager")
        torch.manual_seed(seed)
        module = Z2ColorFloor().cuda().to(dtype).eval()
        fn: Any = torch.compile(module, mode=compile_mode, fullgraph=True) if compile_mode else module
        gen = torch.Generator().manual_seed(seed + 1)
        self.x = (torch.rand((1, 12, 94, 168), generator=gen) - 0.5).to("cuda", dtype)
        self.meta = torch.zeros((1, 6, 13, 26), device="cuda", dtype=dtype)
        self.meta[:, 3] = 1.0
        t0 = time.perf_counter()
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(5):
                fn(self.x, self.meta)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.out = fn(self.x, self.meta)
        torch.cuda.synchronize()
        self.build_s = time.perf_counter() - t0
        self.module, self.fn = module, fn  # the graph reads them by address

    def time(self, iters: int, blocks: int) -> dict[str, Any]:
        g = self.graph
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        for _ in range(500):
            g.replay()
        torch.cuda.synchronize()
        per_block = []
        for _ in range(blocks):
            s.record()
            for _ in range(iters):
                g.replay()
            e.record()
            e.synchronize()
            per_block.append(s.elapsed_time(e) / iters)
        synced = []
        for _ in range(iters):
            s.record()
            g.replay()
            e.record()
            e.synchronize()
            synced.append(s.elapsed_time(e))
        return {
            "label": self.label,
            "build_s": self.build_s,
            "back_to_back_ms": statistics.median(per_block),
            "back_to_back_blocks_ms": per_block,
            "synced_median_ms": statistics.median(synced),
            "synced_min_ms": min(synced),
            "iters": iters,
            "blocks": blocks,
            "finite": bool(torch.isfinite(self.out).all()),
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--blocks", type=int, default=7)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--compile-mode", default=COMPILE_MODE)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--json", help="write the result here")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_floor: no CUDA device: nothing to measure", file=sys.stderr)
        return 3
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    specs: list[tuple[torch.dtype, str | None]] = [(torch.float16, None), (torch.float32, None)]
    if not a.no_compile:
        specs.append((torch.float16, a.compile_mode))
    results = []
    for dtype, mode in specs:
        try:
            v = Variant(dtype, mode, a.seed)
            results.append(v.time(a.iters, a.blocks))
        except Exception as exc:  # reported in the JSON; the other variants still stand
            results.append({"label": f"{dtype} {mode}", "error": f"{type(exc).__name__}: {exc}"})
    doc = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "compile_mode": a.compile_mode,
        "variants": results,
    }
    for r in results:
        if "error" in r:
            print(f"floor {r['label']:22} ERROR {r['error']}")
        else:
            print(
                f"floor {r['label']:22} back-to-back {r['back_to_back_ms']:.4f} ms/replay, "
                f"synchronised median {r['synced_median_ms']:.4f} ms ({doc['device']})"
            )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=2)
    return 0 if all("error" not in r for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
