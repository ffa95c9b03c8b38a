"""GPU numbers for docs/benchmarks.md, reproducible in one call: an independent CUDA-graph floor,
`tx2setup bench` repeated, a decoded-video source beside the synthetic one, medians, the goals.

Order of one call (R = --repeats, default 3):
    independent floor (benchmarks/gpu_floor.py, its own process), bench #1 (every available
    backend, both pipelines), bench #2 .. #R (the key CUDA-graph backends), the video run
    (the key backends' optimized pipeline fed by a decoded side-by-side stereo clip at the
    ZED's 2x672x376, written here with OpenCV's VideoWriter, else as .y4m), the floor again.
Each bench runs in its own process (`python -m tx2setup.bench`), as a user runs it.

The floor is independent of the harness (its own Z2Color written again, its own seeded
instance, its own capture): fp16 eager graph, fp16 torch.compile graph, fp32 eager graph,
timed back to back with CUDA events. Each torch graph backend is compared with its matching
variant measured the same way (the bench's ``back_to_back_ms``: the same events around
back-to-back runs).

Goals (exit 1 when one is missed, exit 2 when a backend was incorrect or failed to prepare):
  - best graph backend's back-to-back inference latency <= 1.1x the matching floor variant;
  - optimized end-to-end FPS, same backend, against both denominators, labelled:
    (a) >= 0.9x inference-only FPS as synchronised iterations per wall second, and
    (b) >= 0.8x back-to-back throughput 1 / median event latency;
  - optimized end-to-end >= 10x naive end-to-end.
Each goal uses the median over the repeats. Writes --out/gpu_bench.json (the summary with the
floors' full JSON) beside each repeat's full result (bench_repN.json, bench_video.json) and
prints a table last.

Needs only torch, numpy (onnxruntime/opencv if present) and tx2setup/bench from this tree.
Without CUDA only `--quick` runs: it checks this script's logic on the CPU backends and says
that the floor and the GPU goals were skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tx2setup.bench.sources import write_y4m  # noqa: E402

KEY_BACKENDS = "cuda-fp32-graph,cuda-fp16-graph,compile-fp16-graph"
VIDEO_BACKENDS = "cuda-fp16-graph,compile-fp16-graph"
CPU_BACKENDS = "cpu-fp32,ort-cpu"
COMPILE_MODE = "max-autotune-no-cudagraphs"
LATENCY_GOAL, E2E_WALL_GOAL, E2E_EVENT_GOAL, NAIVE_GOAL = 1.1, 0.9, 0.8, 10.0
# each torch graph backend and the independent floor variant that computes the same way
MATCHING_FLOOR = {
    "cuda-fp16-graph": "float16 eager",
    "compile-fp16-graph": "float16 torch.compile",
    "cuda-fp32-graph": "float32 eager",
}


def run_py(args: list[str], timeout: float | None = None) -> int:
    """A Python process of this tree (a bench run, the floor), as a user runs it: nothing a
    previous run left in this process (graphs, compiled code, a profiler's hooks) can slow it."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        return subprocess.run([sys.executable, *args], env=env, cwd=REPO, check=False, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"gpu_bench: {args[:2]} ran past {timeout:.0f} s: stopped", flush=True)
        return 124


def run_bench(argv: list[str]) -> int:
    return run_py(["-m", "tx2setup.bench", *argv])


def run_floor(path: str, quick: bool) -> dict[str, Any] | None:
    """The independent floor in its own process; its JSON, or None."""
    args = [os.path.join(REPO, "benchmarks", "gpu_floor.py"), "--json", path, "--compile-mode", COMPILE_MODE]
    if quick:
        args += ["--iters", "200", "--blocks", "3"]
    rc = run_py(args, timeout=240)
    if not os.path.isfile(path):
        print(f"gpu_bench: the floor wrote nothing (exit {rc})", flush=True)
        return None
    with open(path) as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def make_video(directory: str, frames: int = 120, fps: int = 30) -> str:
    """A side-by-side stereo clip at the ZED's 2x672x376: OpenCV VideoWriter (MJPG .avi, decoded
    by cv2 on read) when cv2 is there, else .y4m (read by this tree). Moving content, so the
    decoder does real work and the frames differ."""
    h, w = 376, 2 * 672
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    clip = []
    for i in range(frames):
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[..., 0] = (xx + 4 * i) % 256
        img[..., 1] = (yy * 2 + 3 * i) % 256
        img[..., 2] = ((xx // 16 + yy // 16 + i) % 2) * 200
        clip.append(np.ascontiguousarray(img + noise))
    return write_clip(os.path.join(directory, "zed_sbs_672x376"), clip, fps, "gpu_bench")


def write_clip(stem: str, clip: Sequence[np.ndarray], fps: int, who: str) -> str:
    """RGB frames as STEM.avi (MJPG through OpenCV's VideoWriter; the video source decodes it
    with cv2) when cv2 is there, else STEM.y4m (read by this tree); the path written."""
    h, w = clip[0].shape[:2]
    try:
        import cv2

        path = stem + ".avi"
        vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        if not vw.isOpened():
            raise RuntimeError("cv2.VideoWriter could not open MJPG")
        for img in clip:
            vw.write(img[:, :, ::-1])  # cv2 writes BGR
        vw.release()
        return path
    except (ImportError, RuntimeError) as exc:
        print(f"{who}: video as .y4m ({exc})", flush=True)
        path = stem + ".y4m"
        write_y4m(path, clip, fps)
        return path


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min, max and (max - min) / median in percent of repeated measurements."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "spread_pct": None, "n": 0}
    med = statistics.median(vals)
    return {
        "median": med,
        "min": min(vals),
        "max": max(vals),
        "spread_pct": 100.0 * (max(vals) - min(vals)) / med if med else None,
        "n": len(vals),
    }


def _ratios(rs: list[dict[str, Any]], pipes: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per repeat, the same backend's optimized end to end over each denominator."""
    out: dict[str, list[float]] = {"wall": [], "event": []}
    for r, p in zip(rs, pipes, strict=False):
        if "optimized" not in p:
            continue
        inf = r["inference"]
        out["wall"].append(p["optimized"]["fps"] / inf["fps"])
        out["event"].append(p["optimized"]["fps"] * inf["median_ms"] / 1000.0)
    return out


def per_backend(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each backend's numbers over the repeats it ran in: median / min / max / spread."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        for r in doc["results"]:
            runs.setdefault(r["backend"], []).append(r)
    out = {}
    for name, rs in runs.items():
        pipes = [r.get("end_to_end_pipelines") or {} for r in rs]
        opt = [p["optimized"]["fps"] for p in pipes if "optimized" in p]
        naive = [p["naive"]["fps"] for p in pipes if "naive" in p]
        ratios = _ratios(rs, pipes)
        out[name] = {
            "device": rs[0]["device"],
            "repeats": len(rs),
            "correct_all": all(r.get("correct") for r in rs),
            "inference_median_ms": spread([r["inference"]["median_ms"] for r in rs]),
            "inference_back_to_back_ms": spread([r["inference"].get("back_to_back_ms") for r in rs]),
            "inference_fps": spread([r["inference"]["fps"] for r in rs]),
            "inference_event_fps": spread([1000.0 / r["inference"]["median_ms"] for r in rs]),
            "e2e_optimized_fps": spread(opt),
            "e2e_optimized_median_ms": spread([p["optimized"]["median_ms"] for p in pipes if "optimized" in p]),
            "e2e_naive_fps": spread(naive),
            "e2e_over_inference_fps": spread(ratios["wall"]),
            "e2e_over_inverse_median_latency": spread(ratios["event"]),
            "optimized_over_naive": spread([o / n for o, n in zip(opt, naive, strict=False) if n]),
            "max_rel_error": spread([r.get("max_rel_error") for r in rs]),
            "e2e_rel_error": spread([p["optimized"].get("rel_error") for p in pipes if "optimized" in p]),
            "checked_frames": spread([p["optimized"].get("checked_frames") for p in pipes if "optimized" in p]),
        }
    return out


def floor_table(floor_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each floor variant's back-to-back and synchronised medians over the floor runs."""
    by: dict[str, dict[str, list[float]]] = {}
    for doc in floor_docs:
        for v in doc.get("variants", []):
            if "error" in v:
                continue
            d = by.setdefault(v["label"], {"b2b": [], "sync": []})
            d["b2b"].append(v["back_to_back_ms"])
            d["sync"].append(v["synced_median_ms"])
    return {k: {"back_to_back_ms": spread(v["b2b"]), "synced_median_ms": spread(v["sync"])} for k, v in by.items()}


def _add(
    out: list[dict[str, Any]], goal: str, backend: str, value: float | None, limit: float, le: bool, **kw: Any
) -> None:
    skipped = kw.pop("skipped", None)
    met = None if value is None or skipped else (value <= limit if le else value >= limit)
    out.append({"goal": goal, "backend": backend, "value": value, "met": met, "note": skipped, **kw})


def latency_goals(cands: dict[str, dict[str, Any]], floors: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every graph backend against its matching floor variant, both timed back to back; the
    best one decides the goal, the others are information."""
    out: list[dict[str, Any]] = []
    pairs = []
    for name, flabel in MATCHING_FLOOR.items():
        a, f = cands.get(name), floors.get(flabel)
        if a and f and a["inference_back_to_back_ms"]["median"] and f["back_to_back_ms"]["median"]:
            pairs.append((a["inference_back_to_back_ms"]["median"], name, flabel))
    if not pairs:
        return out
    best = min(pairs)
    lowest = min(f["back_to_back_ms"]["median"] for f in floors.values())
    for b2b, name, flabel in sorted(pairs):
        fl = floors[flabel]["back_to_back_ms"]["median"]
        detail = f"{b2b:.4f} vs floor {flabel} {fl:.4f} ms back to back (lowest floor variant {lowest:.4f} ms)"
        if (b2b, name, flabel) == best:
            goal = f"best backend back-to-back inference <= {LATENCY_GOAL:.1f}x the matching independent floor"
            _add(out, goal, name, b2b / fl, LATENCY_GOAL, True, detail=detail)
        else:
            out.append(
                {
                    "goal": "(info) backend / matching floor",
                    "backend": name,
                    "value": b2b / fl,
                    "met": None,
                    "detail": detail,
                    "note": "information",
                }
            )
    return out


def goals(agg: dict[str, dict[str, Any]], floors: dict[str, dict[str, Any]], on_gpu: bool) -> list[dict[str, Any]]:
    """The issue's goals on the medians over repeats; ``met`` is None where it is not a goal."""
    device = "cuda" if on_gpu else "cpu"
    # only backends measured in every repeat (the key backends): a goal is a median over repeats
    most = max((a["repeats"] for a in agg.values()), default=0)
    cands = {n: a for n, a in agg.items() if a["device"] == device and a["correct_all"] and a["repeats"] == most}
    skipped = None if on_gpu else "no GPU: logic check only, not a goal"
    if not cands:
        return [{"goal": f"any correct {device} backend", "backend": "-", "value": None, "met": False}]
    out = latency_goals(cands, floors) if on_gpu else []
    with_e2e = [n for n in cands if cands[n]["e2e_optimized_fps"]["n"]]
    if not with_e2e:
        return out
    b = max(with_e2e, key=lambda n: cands[n]["e2e_optimized_fps"]["median"])
    a = cands[b]
    e2e, wall, ev = a["e2e_optimized_fps"], a["e2e_over_inference_fps"], a["e2e_over_inverse_median_latency"]
    _add(
        out,
        f"optimized e2e >= {E2E_WALL_GOAL:.1f}x (a) inference-only, synchronised iterations per wall second",
        b,
        wall["median"],
        E2E_WALL_GOAL,
        False,
        skipped=skipped,
        detail="{:.0f} vs {:.0f} FPS; per repeat {:.3f}-{:.3f}".format(
            e2e["median"], a["inference_fps"]["median"], wall["min"], wall["max"]
        ),
    )
    _add(
        out,
        f"optimized e2e >= {E2E_EVENT_GOAL:.1f}x (b) inference-only, 1 / median event latency",
        b,
        ev["median"],
        E2E_EVENT_GOAL,
        False,
        skipped=skipped,
        detail="{:.0f} vs {:.0f} FPS; per repeat {:.3f}-{:.3f}".format(
            e2e["median"], a["inference_event_fps"]["median"], ev["min"], ev["max"]
        ),
    )
    if a["optimized_over_naive"]["n"]:
        _add(
            out,
            f"optimized end-to-end >= {NAIVE_GOAL:.0f}x naive end-to-end",
            b,
            a["optimized_over_naive"]["median"],
            NAIVE_GOAL,
            False,
            skipped=skipped,
            detail="{:.0f} vs {:.1f} FPS".format(e2e["median"], a["e2e_naive_fps"]["median"]),
        )
    return out


def video_rows(video_doc: dict[str, Any] | None, agg: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The decoded-video end to end beside the same backend's synthetic figure (median over repeats)."""
    rows: list[dict[str, Any]] = []
    for r in (video_doc or {}).get("results", []):
        opt = (r.get("end_to_end_pipelines") or {}).get("optimized")
        if not opt:
            continue
        syn = agg.get(r["backend"], {}).get("e2e_optimized_fps", {}).get("median")
        rows.append(
            {
                "backend": r["backend"],
                "video_fps": opt["fps"],
                "video_median_ms": opt["median_ms"],
                "video_capture_ms": opt["stages"].get("capture"),
                "synthetic_fps": syn,
                "video_over_synthetic": opt["fps"] / syn if syn else None,
                "correct": r.get("correct"),
                "rel_error": opt.get("rel_error"),
                "source": (video_doc or {}).get("conditions", {}).get("source"),
            }
        )
    return rows


def failures(docs: list[dict[str, Any]], rcs: list[int]) -> list[str]:
    """Incorrect backends, backends that could not prepare, and bench runs that failed."""
    out = []
    for i, (doc, rc) in enumerate(zip(docs, rcs, strict=False)):
        for r in doc["results"]:
            if not r.get("correct"):
                out.append(f"repeat {i + 1}: {r['backend']} incorrect ({r.get('pipeline_error') or 'output'})")
        for u in doc["unavailable"]:
            if str(u["reason"]).startswith("prepare failed"):
                out.append(f"repeat {i + 1}: {u['backend']} {u['reason']}")
        if rc != 0:
            out.append(f"repeat {i + 1}: tx2setup bench exited {rc}")
    return out


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else fmt % v


ROW = "{:20} {:>2} {:>24} {:>9} {:>9} {:>9} {:>20} {:>8} {:>8} {:>12} {:>9}"


def print_table(agg: dict[str, dict[str, Any]]) -> None:
    head = (
        "backend",
        "n",
        "inf evt med ms [min-max]",
        "b2b ms",
        "(a) FPS",
        "(b) FPS",
        "e2e opt FPS [spread]",
        "e2e/(a)",
        "e2e/(b)",
        "naive FPS",
        "opt/naive",
    )
    print(ROW.format(*head))
    for name, a in agg.items():
        lat, opt = a["inference_median_ms"], a["e2e_optimized_fps"]
        print(
            ROW.format(
                name,
                a["repeats"],
                f"{lat['median']:.4f} [{lat['min']:.4f}-{lat['max']:.4f}]",
                _f(a["inference_back_to_back_ms"]["median"], "%.4f"),
                _f(a["inference_fps"]["median"], "%.0f"),
                _f(a["inference_event_fps"]["median"], "%.0f"),
                f"{_f(opt['median'], '%.0f')} [{_f(opt['spread_pct'], '%.0f')}%]",
                _f(a["e2e_over_inference_fps"]["median"], "%.3f"),
                _f(a["e2e_over_inverse_median_latency"]["median"], "%.3f"),
                _f(a["e2e_naive_fps"]["median"], "%.1f"),
                _f(a["optimized_over_naive"]["median"], "%.1fx"),
            )
        )


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_bench_out")
    p.add_argument("--quick", action="store_true", help="smoke run: short durations (the only mode without CUDA)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", default="all", help="backends of the first repeat (default all available)")
    p.add_argument("--key-backends", default=KEY_BACKENDS, help="backends of the later repeats")
    p.add_argument("--video-backends", default=VIDEO_BACKENDS, help="backends of the video run ('' = none)")
    p.add_argument("--duration", type=float, default=2.0, help="--min-duration of each measurement")
    p.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="start no repeat that would end past this many seconds (leave room in the device's 10 minutes)",
    )
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    return a


def _repeats(
    a: argparse.Namespace, full: str, key: str, durations: list[str], t0: float
) -> tuple[list[dict[str, Any]], list[int]]:
    docs: list[dict[str, Any]] = []
    rcs: list[int] = []
    last_rep_s = 0.0
    for rep in range(a.repeats):
        # estimate of this repeat: the last one's time, scaled after the first (all backends)
        # to the key backends' share of it
        est = last_rep_s
        if rep == 1:
            est *= min(1.0, len(key.split(",")) / max(1, len(docs[0]["results"])))
        if rep > 0 and time.time() - t0 + est > a.budget_s:
            print(f"gpu_bench: WARNING stopping after {rep} repeats: another would pass --budget-s {a.budget_s:.0f}")
            break
        rep_t0 = time.time()
        path = os.path.join(a.out, f"bench_rep{rep + 1}.json")
        argv_ = ["--backends", full if rep == 0 else key, "--pipeline", "both", "--json", path, *durations]
        argv_ += ["--compile-mode", COMPILE_MODE]  # no --target-fps: the goals below decide
        argv_ += ["--plain"] if rep == 0 else ["--quiet"]
        print(f"\n== repeat {rep + 1}/{a.repeats}: {argv_[1]}", flush=True)
        rcs.append(run_bench(argv_))
        with open(path) as fh:
            docs.append(json.load(fh))
        last_rep_s = time.time() - rep_t0
    return docs, rcs


def _video(a: argparse.Namespace, durations: list[str], tmp: str) -> tuple[dict[str, Any] | None, int | None]:
    if not a.video_backends:
        return None, None
    clip = make_video(tmp)
    path = os.path.join(a.out, "bench_video.json")
    print(f"\n== video source: {clip} ({a.video_backends})", flush=True)
    argv_ = ["--backends", a.video_backends, "--pipeline", "optimized", "--source", "video:" + clip]
    rc = run_bench([*argv_, "--json", path, "--compile-mode", COMPILE_MODE, "--plain", *durations])
    if not os.path.isfile(path):
        return None, rc
    with open(path) as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc, rc


def _print_summary(summary: dict[str, Any], agg: dict[str, dict[str, Any]]) -> None:
    device = summary["device"] or "no GPU"
    print(f"\n== summary on {device} over {summary['repeats_done']} of {summary['repeats']} repeats (median)")
    for label, f in summary["floor_table"].items():
        b, sy = f["back_to_back_ms"], f["synced_median_ms"]
        print(
            f"independent floor {label:22} back-to-back {b['median']:.4f} ms [{b['min']:.4f}-{b['max']:.4f}], "
            f"synchronised median {sy['median']:.4f} ms, over {b['n']} runs"
        )
    if not summary["floor_table"]:
        print("independent floor: SKIPPED or failed")
    print_table(agg)
    for v in summary["video"]:
        print(
            "video source {backend}: e2e {video_fps:.0f} FPS (median {video_median_ms:.3f} ms, capture "
            "{video_capture_ms:.3f} ms) vs synthetic {syn} FPS; correct {correct}".format(
                syn=_f(v["synthetic_fps"], "%.0f"), **v
            )
        )
    for g in summary["goals"]:
        state = {True: "MET ", False: "MISS", None: "----"}[g["met"]]
        print(
            f"{state} {g['goal']:88} {g['backend']:20} {_f(g['value'], '%.3f')} ({g.get('detail', '')})"
            + (f" [{g['note']}]" if g.get("note") else "")
        )
    for line in summary["failures"]:
        print("FAIL " + line)
    print("wall {:.0f} s; JSON {}".format(summary["wall_s"], os.path.join(summary["out"], "gpu_bench.json")))


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not a.quick:
        print("gpu_bench: no CUDA device; nothing to measure (use --quick for a CPU logic check)", file=sys.stderr)
        return 3
    full, key = a.backends, a.key_backends
    if not on_gpu:
        print(
            "gpu_bench: no CUDA device: SKIPPING the independent floor and the GPU goals; "
            f"checking this script's logic on {CPU_BACKENDS} only"
        )
        full = key = CPU_BACKENDS
        a.video_backends = "cpu-fp32" if a.video_backends else ""
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="gpu_bench_")  # the clip and the floors' JSON: not under --out
    durations = ["--warmup", "0.5", "--min-iters", "300", "--min-duration", str(a.duration)]
    if a.quick:
        durations = ["--warmup", "0.1", "--min-iters", "20", "--min-duration", "0.2"]
    t0 = time.time()
    floor_docs = []
    if on_gpu:
        print("== independent floor (before)", flush=True)
        floor_docs.append(run_floor(os.path.join(tmp, "floor_before.json"), a.quick))
    docs, rcs = _repeats(a, full, key, durations, t0)
    video_doc, video_rc = _video(a, durations, tmp)
    if on_gpu:
        print("\n== independent floor (after)", flush=True)
        floor_docs.append(run_floor(os.path.join(tmp, "floor_after.json"), a.quick))
    floors = floor_table([d for d in floor_docs if d])
    agg = per_backend(docs)
    fails = failures(docs, rcs)
    if video_doc is not None:
        fails += [f.replace("repeat 1", "video run") for f in failures([video_doc], [video_rc or 0])]
    conditions = docs[0]["conditions"] if docs else {}
    summary = {
        "device": torch.cuda.get_device_name() if on_gpu else None,
        "gpu": conditions.get("gpu"),
        "cpu": conditions.get("cpu"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "onnxruntime": conditions.get("onnxruntime"),
        "repeats": a.repeats,
        "repeats_done": len(docs),
        "quick": a.quick,
        "durations": durations,
        "floors": [d for d in floor_docs if d],
        "floor_table": floors,
        "per_backend": agg,
        "video": video_rows(video_doc, agg),
        "goals": goals(agg, floors, on_gpu),
        "failures": fails,
        "bench_rcs": rcs,
        "unavailable": docs[0]["unavailable"] if docs else [],
        "wall_s": time.time() - t0,
        "out": a.out,
    }
    with open(os.path.join(a.out, "gpu_bench.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    _print_summary(summary, agg)
    if fails:
        return 2
    if any(g["met"] is False for g in summary["goals"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
