"""Minimise the wrong output of the compiled GPU preprocessing (commit 62ffab4, reverted in 754550c).

On an H200 (2026-12-01) ``torch.compile`` of the optimized pipeline's preprocessing made the
network's output wrong (rel. error 5e-2). This script runs a ladder of op sequences, from the
pipeline's exact use down to single ops, each compiled and compared with eager on the same
random frames, and reports which reproduce a mismatch. Each case names its ops; the smallest
case that still mismatches is the finding (docs/bench.md, "Compiled preprocessing").

Needs CUDA (it also runs on the CPU with --device cpu, as a logic check: the bug was not seen
there). Prints one line per case and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = 376, 672
DIV = 9 * 255
# case name -> whether its compiled output differs from eager on the GPU (measured; docs/bench.md);
# tests/bench/test_gpu.py re-runs these cases and fails when torch's behaviour changes
# Measured on an H100 80GB HBM3, torch 2.11.0+cu130, 2026-12-06 (benchmarks/results/
# gpu_call-h100-2026-12-06/log.txt): compiling the computation alone is right; compiling the
# write through the slots view (``slots[:, :, 1].copy_``) is wrong, fp16 and fp32, with and
# without CUDA graphs. The case with the compiled Z2Color in the same graph did not run (time).
FINDING: dict[str, bool] = {
    "as 62ffab4 ran: shift + compiled preprocess, fp16 slots, CUDA graphs, max-autotune-no-cudagraphs": True,
    "shift + compiled preprocess, fp16 slots, CUDA graphs, default mode": True,
    "compiled preprocess into fp16 slots, no graph": True,
    "compiled preprocess into fp32 slots, no graph": True,
    "returned: permute.float, pool, pool(div 2295), -0.5": False,
    "pool, pool(div 2295) on channels_last float": False,
    "pool, pool(div 2295) on contiguous float": False,
    "one pool(div 2295), padding 1, channels_last": False,
    # second H100 run, 2026-12-06 (benchmarks/results/gpu_call-h100-2026-12-06b/log.txt): the write
    # through the view alone is right; the with-model case reproduced (rel 1.39) but is too slow
    # for the test (Z2Color compiled with autotuning)
    "one op: slots[:, :, 1].copy_(src), fp32": False,
    "one op: slots[:, :, 1].copy_(src), fp16": False,
    "two ops: slots[:, :, 1].copy_(src - 0.5), fp32": False,
    # third H100 run, 2026-12-06 (gpu_call-h100-2026-12-06c/log.txt): the smallest sequence
    # found, one avg_pool2d of a channels_last input written through the view (rel 0.275);
    # the same from a contiguous input is right (3.1e-8)
    "pool then write: slots[:, :, 1].copy_(pool(x)), contiguous": False,
    "pool then write: slots[:, :, 1].copy_(pool(x)), channels_last": True,
}


def _pair(gen: torch.Generator, device: str) -> torch.Tensor:
    return torch.randint(0, 256, (2, H, W, 3), generator=gen, dtype=torch.uint8).to(device)


def fusable(pair: torch.Tensor, slots: torch.Tensor) -> None:
    """62ffab4's ``_preprocess_pair_fusable``, verbatim."""
    x = pair.permute(0, 3, 1, 2).float()
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
    x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, divisor_override=DIV)
    slots[:, :, 1].copy_(x.unsqueeze(0) - 0.5)


def shift(slots: torch.Tensor) -> None:
    slots[:, :, 0].copy_(slots[:, :, 1])


def _compare(got: torch.Tensor, want: torch.Tensor) -> dict[str, Any]:
    got, want = got.double(), want.double()
    diff = (got - want).abs()
    bad = diff > 1e-3 * max(1.0, float(want.abs().max()))
    rows = bad.reshape(-1, *bad.shape[-2:]).any(0)
    interior = rows[1:-1, 1:-1].any() if rows.shape[0] > 2 and rows.shape[1] > 2 else rows.any()
    return {
        "rel_error": float(diff.norm() / max(float(want.norm()), 1e-30)),
        "max_abs": float(diff.max()),
        "bad_fraction": float(bad.double().mean()),
        "bad_rows": [int(i) for i in torch.nonzero(rows.any(1)).flatten()[:12]],
        "bad_cols": [int(i) for i in torch.nonzero(rows.any(0)).flatten()[:12]],
        "bad_in_interior": bool(interior),
    }


def pipeline_case(device: str, mode: str, dtype: torch.dtype, graph: bool, with_shift: bool) -> dict[str, Any]:
    """The pipeline's use: two upload slots, (shift +) compiled preprocess, optionally in CUDA graphs."""
    gen = torch.Generator().manual_seed(7)
    dev_pair = [_pair(gen, device), _pair(gen, device)]
    buf = torch.zeros((1, 12, 94, 168), device=device, dtype=dtype)
    ref = torch.zeros_like(buf)
    slots, rslots = buf.view(1, 2, 2, 3, 94, 168), ref.view(1, 2, 2, 3, 94, 168)
    cfn = torch.compile(fusable, mode=mode, fullgraph=True)
    for s in (0, 1, 0, 1):  # warm-up (compile) outside any capture, as 62ffab4 did
        if with_shift:
            shift(slots)
        cfn(dev_pair[s], slots)
    graphs = []
    if graph:
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        for s in (0, 1):
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, stream=side):
                if with_shift:
                    shift(slots)
                cfn(dev_pair[s], slots)
            graphs.append(g)
    buf.zero_()
    worst: dict[str, Any] = {"rel_error": 0.0}
    for frame in range(6):
        s = frame % 2
        dev_pair[s].copy_(_pair(gen, device))
        if graph:
            graphs[s].replay()
        else:
            if with_shift:
                shift(slots)
            cfn(dev_pair[s], slots)
        if with_shift:
            shift(rslots)
        fusable(dev_pair[s], rslots)
        if device == "cuda":
            torch.cuda.synchronize()
        c = _compare(buf.float(), ref.float())
        if c["rel_error"] >= worst["rel_error"]:
            worst = c
    return worst


def with_model_case(device: str, mode: str) -> dict[str, Any]:
    """As 62ffab4 ran for compile-fp16-graph: shift, compiled preprocess and the compiled Z2Color
    in ONE CUDA graph per upload slot; the slots and the network's output against eager."""
    sys.path.insert(0, REPO)
    from tx2setup.bench import model as z2

    gen = torch.Generator().manual_seed(9)
    m = z2.build_z2color(0).to(device, torch.float16).eval()
    cm = torch.compile(m, mode=mode, fullgraph=True)
    meta = z2.metadata(1, device=device, dtype=torch.float16)
    dev_pair = [_pair(gen, device), _pair(gen, device)]
    buf = torch.zeros((1, 12, 94, 168), device=device, dtype=torch.float16)
    ref = torch.zeros_like(buf)
    slots, rslots = buf.view(1, 2, 2, 3, 94, 168), ref.view(1, 2, 2, 3, 94, 168)
    cfn = torch.compile(fusable, mode=mode, fullgraph=True)
    side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    with torch.no_grad(), torch.cuda.stream(side):
        for s in (0, 1, 0, 1):
            shift(slots)
            cfn(dev_pair[s], slots)
            cm(buf, meta)
    torch.cuda.synchronize()
    graphs, outs = [], []
    for s in (0, 1):
        g = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(g, stream=side):
            shift(slots)
            cfn(dev_pair[s], slots)
            outs.append(cm(buf, meta))
        graphs.append(g)
    buf.zero_()
    worst: dict[str, Any] = {"rel_error": 0.0}
    for frame in range(6):
        s = frame % 2
        dev_pair[s].copy_(_pair(gen, device))
        graphs[s].replay()
        shift(rslots)
        fusable(dev_pair[s], rslots)
        with torch.no_grad():
            want = m(ref, meta)
        torch.cuda.synchronize()
        c = _compare(buf.float(), ref.float())
        out = _compare(outs[s].float(), want.float())
        # fp16 kernels of compiled and eager differ by rounding (~1e-3): only a larger output error counts
        c["out_rel_error"] = out["rel_error"]
        c["rel_error"] = max(c["rel_error"], out["rel_error"] if out["rel_error"] > 1e-2 else 0.0)
        if c["rel_error"] >= worst["rel_error"]:
            worst = c
    return worst


def return_case(fn: Callable[..., torch.Tensor], make: Callable[[], tuple[Any, ...]], mode: str) -> dict[str, Any]:
    """fn compiled vs eager on fresh inputs (no mutation, no graph)."""
    cfn = torch.compile(fn, mode=mode, fullgraph=True)
    worst: dict[str, Any] = {"rel_error": 0.0}
    for _ in range(3):
        args = make()
        c = _compare(cfn(*args).float(), fn(*args).float())
        if c["rel_error"] >= worst["rel_error"]:
            worst = c
    return worst


def write_case(fn: Callable[[torch.Tensor, torch.Tensor], None], dtype: torch.dtype, device: str) -> dict[str, Any]:
    """fn(view, src) compiled vs eager, each writing through a strided view of its own zeroed
    (1, 12, 94, 168) buffer (the network's input, as the pipeline viewed it); whole buffers compared."""
    cfn = torch.compile(fn, mode="default", fullgraph=True)
    gen = torch.Generator().manual_seed(13)
    worst: dict[str, Any] = {"rel_error": 0.0}
    for _ in range(3):
        src = torch.rand((1, 2, 3, 94, 168), generator=gen).to(device, dtype)
        got, want = (torch.zeros((1, 12, 94, 168), device=device, dtype=dtype) for _ in range(2))
        cfn(got.view(1, 2, 2, 3, 94, 168), src)
        fn(want.view(1, 2, 2, 3, 94, 168), src)
        c = _compare(got.float(), want.float())
        if c["rel_error"] >= worst["rel_error"]:
            worst = c
    return worst


def copy_into_slot1(slots: torch.Tensor, src: torch.Tensor) -> None:
    slots[:, :, 1].copy_(src)


def copy_shifted_into_slot1(slots: torch.Tensor, src: torch.Tensor) -> None:
    slots[:, :, 1].copy_(src - 0.5)


def copy_into_slot0(slots: torch.Tensor, src: torch.Tensor) -> None:
    slots[:, :, 0].copy_(src)


def pool_write_case(channels_last: bool, device: str) -> dict[str, Any]:
    """One avg_pool2d written through the slots view, compiled vs eager: the pool and the write
    together, the step between the cases measured right (each alone) and wrong (the whole)."""

    def fn(x: torch.Tensor, slots: torch.Tensor) -> None:
        slots[:, :, 1].copy_(F.avg_pool2d(x, 3, 2, 1).unsqueeze(0))

    cfn = torch.compile(fn, mode="default", fullgraph=True)
    gen = torch.Generator().manual_seed(17)
    worst: dict[str, Any] = {"rel_error": 0.0}
    for _ in range(3):
        x = torch.rand((2, 3, 2 * 94, 2 * 168), generator=gen).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        got, want = (torch.zeros((1, 12, 94, 168), device=device) for _ in range(2))
        cfn(x, got.view(1, 2, 2, 3, 94, 168))
        fn(x, want.view(1, 2, 2, 3, 94, 168))
        c = _compare(got, want)
        if c["rel_error"] >= worst["rel_error"]:
            worst = c
    return worst


def cases(device: str, mode: str) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    gen = torch.Generator().manual_seed(11)

    def pair() -> tuple[torch.Tensor]:
        return (_pair(gen, device),)

    def hwc_float() -> tuple[torch.Tensor]:  # permute(0,3,1,2) of HWC: channels_last strides
        return (_pair(gen, device).permute(0, 3, 1, 2).float(),)

    def nchw_float() -> tuple[torch.Tensor]:
        return (_pair(gen, device).permute(0, 3, 1, 2).float().contiguous(),)

    def pre(x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).float()
        x = F.avg_pool2d(x, 3, 2, 1)
        return F.avg_pool2d(x, 3, 2, 1, divisor_override=DIV) - 0.5

    def pool_pool_div(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.avg_pool2d(x, 3, 2, 1), 3, 2, 1, divisor_override=DIV)

    def pool_pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.avg_pool2d(x, 3, 2, 1), 3, 2, 1)

    def pool_div(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 2, 1, divisor_override=DIV)

    def pool_div9(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 2, 1, divisor_override=9)

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 2, 1)

    def pool_nopad_div(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, 2, 0, divisor_override=DIV)

    out: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    if device == "cuda":
        out += [
            (
                "as 62ffab4 ran: shift + compiled preprocess, fp16 slots, CUDA graphs, " + mode,
                lambda: pipeline_case(device, mode, torch.float16, True, True),
            ),
            (
                "shift + compiled preprocess, fp16 slots, CUDA graphs, default mode",
                lambda: pipeline_case(device, "default", torch.float16, True, True),
            ),
        ]
    out += [
        (
            "compiled preprocess into fp16 slots, no graph",
            lambda: pipeline_case(device, "default", torch.float16, False, False),
        ),
        (
            "compiled preprocess into fp32 slots, no graph",
            lambda: pipeline_case(device, "default", torch.float32, False, False),
        ),
        # the write alone, no preprocessing: the smallest sequences (added after the H100 run of 2026-12-06)
        ("one op: slots[:, :, 1].copy_(src), fp32", lambda: write_case(copy_into_slot1, torch.float32, device)),
        ("one op: slots[:, :, 1].copy_(src), fp16", lambda: write_case(copy_into_slot1, torch.float16, device)),
        ("one op: slots[:, :, 0].copy_(src), fp32", lambda: write_case(copy_into_slot0, torch.float32, device)),
        (
            "two ops: slots[:, :, 1].copy_(src - 0.5), fp32",
            lambda: write_case(copy_shifted_into_slot1, torch.float32, device),
        ),
        ("pool then write: slots[:, :, 1].copy_(pool(x)), contiguous", lambda: pool_write_case(False, device)),
        ("pool then write: slots[:, :, 1].copy_(pool(x)), channels_last", lambda: pool_write_case(True, device)),
        ("returned: permute.float, pool, pool(div 2295), -0.5", lambda: return_case(pre, pair, "default")),
        ("pool, pool(div 2295) on channels_last float", lambda: return_case(pool_pool_div, hwc_float, "default")),
        ("pool, pool(div 2295) on contiguous float", lambda: return_case(pool_pool_div, nchw_float, "default")),
        ("pool, pool (no divisor_override) on channels_last", lambda: return_case(pool_pool, hwc_float, "default")),
        ("one pool(div 2295), padding 1, channels_last", lambda: return_case(pool_div, hwc_float, "default")),
        ("one pool(div 2295), padding 1, contiguous", lambda: return_case(pool_div, nchw_float, "default")),
        ("one pool(div 9), padding 1, contiguous", lambda: return_case(pool_div9, nchw_float, "default")),
        ("one pool(div 2295), padding 0, contiguous", lambda: return_case(pool_nopad_div, nchw_float, "default")),
        ("one pool (no divisor_override), padding 1, contiguous", lambda: return_case(pool, nchw_float, "default")),
    ]
    if device == "cuda":  # last: compiling Z2Color with autotuning takes the longest
        out.append(
            (
                "as 62ffab4 ran for compile-fp16-graph: shift + compiled preprocess + compiled Z2Color in one graph",
                lambda: with_model_case(device, mode),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mode", default="max-autotune-no-cudagraphs", help="mode of the as-it-ran case")
    p.add_argument("--only", type=int, default=0, help="run only the first N cases (0: all)")
    p.add_argument("--json")
    a = p.parse_args(argv)
    todo = cases(a.device, a.mode)
    if a.only:
        todo = todo[: a.only]
    results = []
    for name, fn in todo:
        t0 = time.perf_counter()
        try:
            r = fn()
        except Exception as exc:
            r = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        r["case"], r["seconds"] = name, time.perf_counter() - t0
        r["reproduces"] = bool(r.get("rel_error", 0.0) > 1e-5) if "error" not in r else None
        results.append(r)
        state = {True: "WRONG", False: "same ", None: "ERROR"}[r["reproduces"]]
        print(
            f"{state} rel {r.get('rel_error', float('nan')):.2e} bad {r.get('bad_fraction', float('nan')):.4f} "
            f"rows {r.get('bad_rows', '-')} cols {r.get('bad_cols', '-')} | {name}"
            + (f" | {r['error']}" if "error" in r else ""),
            flush=True,
        )
    doc = {
        "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "cases": results,
    }
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
