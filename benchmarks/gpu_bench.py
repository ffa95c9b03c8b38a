"""GPU numbers for docs/benchmarks.md: the bare CUDA-graph floor, then `tx2setup bench` on every
available backend with both pipelines, then the floor again, then the issue's goals.

Run through benchmarks/gpu_bench.sh. Needs only torch/numpy (and tx2setup/bench from this tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch

from tx2setup.bench import model as z2
from tx2setup.bench.cli import main as bench_main


def bare_floor(
    iters: int = 3000, dtype: torch.dtype = torch.float16, compile_mode: str | None = None
) -> dict[str, Any]:
    """Z2Color batch 1 captured in a CUDA graph and replayed in a bare loop: no harness at all.

    Latency per replay as the bench measures it (events around one replay, synchronised),
    plus the back-to-back replay rate (GPU-bound, launch overhead hidden).
    """
    m: Any = z2.build_z2color(seed=0).cuda().to(dtype).eval()
    if compile_mode:
        m = torch.compile(m, mode=compile_mode, fullgraph=True)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand((1, 12, 94, 168), generator=gen) - 0.5).cuda().to(dtype)
    meta = z2.metadata(1, device="cuda", dtype=dtype)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(side):
        for _ in range(5):
            m(x, meta)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(g):
        m(x, meta)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(500):
        g.replay()
    torch.cuda.synchronize()
    lat = []
    for _ in range(iters):
        s.record()
        g.replay()
        e.record()
        e.synchronize()
        lat.append(s.elapsed_time(e))
    s.record()
    for _ in range(iters):
        g.replay()
    e.record()
    e.synchronize()
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "compile_mode": compile_mode,
        "median_ms": statistics.median(lat),
        "mean_ms": statistics.fmean(lat),
        "min_ms": min(lat),
        "back_to_back_ms": s.elapsed_time(e) / iters,
        "iters": iters,
    }


def goals(doc: dict[str, Any], floor_ms: float) -> list[dict[str, Any]]:
    res = [r for r in doc["results"] if r.get("correct")]
    gpu = [r for r in res if r["device"] == "cuda"]
    out = []
    best_inf = min(gpu, key=lambda r: r["inference"]["median_ms"])
    ratio = best_inf["inference"]["median_ms"] / floor_ms
    out.append(
        {
            "goal": "best backend batch-1 inference latency <= 1.3x bare CUDA-graph floor",
            "backend": best_inf["backend"],
            "value": ratio,
            "detail": f"{best_inf['inference']['median_ms']:.4f} ms vs floor {floor_ms:.4f} ms",
            "met": ratio <= 1.3,
        }
    )
    with_e2e = [r for r in gpu if "optimized" in r["end_to_end_pipelines"]]
    best_e2e = max(with_e2e, key=lambda r: r["end_to_end_pipelines"]["optimized"]["fps"])
    opt = best_e2e["end_to_end_pipelines"]["optimized"]["fps"]
    inf = best_e2e["inference"]["fps"]
    out.append(
        {
            "goal": "optimized end-to-end FPS >= 0.8x inference-only FPS of the same backend",
            "backend": best_e2e["backend"],
            "value": opt / inf,
            "detail": f"{opt:.0f} vs {inf:.0f} FPS",
            "met": opt >= 0.8 * inf,
        }
    )
    naive = best_e2e["end_to_end_pipelines"].get("naive", {}).get("fps")
    if naive:
        out.append(
            {
                "goal": "optimized end-to-end >= 10x naive end-to-end",
                "backend": best_e2e["backend"],
                "value": opt / naive,
                "detail": f"{opt:.0f} vs {naive:.1f} FPS",
                "met": opt >= 10 * naive,
            }
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="smoke run: short durations")
    p.add_argument("--backends", default="all")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_bench: no CUDA device; nothing to measure", file=sys.stderr)
        return 3
    t0 = time.time()
    floor_before = bare_floor()
    floor32 = bare_floor(dtype=torch.float32)
    durations = ["--warmup", "0.3", "--min-iters", "50", "--min-duration", "0.5"]
    if not a.quick:
        durations = ["--warmup", "1", "--min-iters", "300", "--min-duration", "3"]
    bench_json = os.path.join(a.out, "bench.json")
    argv = ["--backends", a.backends, "--pipeline", "both", "--json", bench_json, "--plain", *durations]
    argv += ["--profile", os.path.join(a.out, "profile.json"), "--target-fps", "15"]
    rc = bench_main(argv)
    floor_after = bare_floor()
    # the same compiled model as compile-fp16-graph, replayed bare (its inductor cache is warm now)
    floor_compiled = bare_floor(compile_mode="max-autotune-no-cudagraphs")
    with open(bench_json) as fh:
        doc = json.load(fh)
    # the strictest floor: the fastest bare replay of any graph of this model
    floor_ms = min(floor_before["median_ms"], floor_after["median_ms"], floor_compiled["median_ms"])
    summary = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bench_rc": rc,
        "floor_fp16_before": floor_before,
        "floor_fp16_after": floor_after,
        "floor_fp32": floor32,
        "floor_compiled_fp16": floor_compiled,
        "floor_used_ms": floor_ms,
        "goals": goals(doc, floor_ms),
        "wall_s": time.time() - t0,
        "inference_fps": {r["backend"]: r["inference"]["fps"] for r in doc["results"]},
        "inference_median_ms": {r["backend"]: r["inference"]["median_ms"] for r in doc["results"]},
        "end_to_end_fps": {
            r["backend"]: {k: v["fps"] for k, v in r["end_to_end_pipelines"].items()} for r in doc["results"]
        },
        "unavailable": doc["unavailable"],
    }
    with open(os.path.join(a.out, "gpu_bench.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    print(
        f"\nbare CUDA-graph floor (fp16, batch 1): median {floor_before['median_ms']:.4f} ms before, "
        f"{floor_after['median_ms']:.4f} ms after; back-to-back {floor_before['back_to_back_ms']:.4f} ms"
    )
    print(f"bare CUDA-graph floor (fp32): median {floor32['median_ms']:.4f} ms")
    print(f"bare CUDA-graph floor (torch.compile fp16): median {floor_compiled['median_ms']:.4f} ms")
    print(f"{'backend':20} {'inf fps':>12} {'inf med ms':>12} {'e2e opt fps':>12} {'e2e naive':>12} {'ratio':>8}")
    for r in doc["results"]:
        e = r["end_to_end_pipelines"]
        o, n = e.get("optimized", {}).get("fps") or 0.0, e.get("naive", {}).get("fps") or 0.0
        ratio = o / n if n else 0.0
        inf = r["inference"]
        print(f"{r['backend']:20} {inf['fps']:12.1f} {inf['median_ms']:12.4f} {o:12.1f} {n:12.1f} {ratio:8.1f}")
    for g in summary["goals"]:
        met = "MET" if g["met"] else "MISS"
        print(f"{met:4} {g['goal']:75} {g['backend']:20} {g['value']:.3f} ({g['detail']})")
    print(f"wall {summary['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
