"""Issue 16's detector row: the test detector end to end on every backend the machine has.

The detector of tests/bench/test_user_model.py (tests/bench/detector.py: 3 stride-2 convs and a
YOLO-style 1x1 head, 3 classes, seeded weights, 128x128 letterboxed input) is traced to
TorchScript and exported to ONNX, a 640x480 MJPG video is written (60 frames of moving
content, looped by the source), and ``tx2setup bench`` runs in its own process, as a user runs
it (``python -m tx2setup.bench``, the entry point of ``tx2setup bench``):

1. ``det.pt`` on the torch backends (cpu-fp32 and, with CUDA, cuda-fp32, cuda-fp16,
   cuda-fp16-cl, cuda-fp32-graph, cuda-fp16-graph; compile-fp16-graph is Z2Color's only),
   ``--pipeline both --write-video``;
2. ``det.onnx`` on ort-cpu, ort-cuda and ort-trt (each runs or says why not);
3. with CUDA, the same detector traced with its cell grid made in forward
   (``CpuTracedGridDetector``: the trace holds ``device=cpu``) on cuda-fp32, to record how a
   CPU-traced user file is reported on a GPU.

Every written video is read back (frame count and size against what the JSON says). Writes
``--out``/user_det_torch.json, user_det_onnx.json, user_det_cpu_grid.json (the bench's full
results) and user_model_gpu.json (the summary), and prints the table last. Default run
policy (0.5 s warm-up, >= 100 iterations and >= 3 s per measurement), as the CPU table in
docs/bench.md. ``--quick`` (short runs) checks this script's logic on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.gpu_bench import write_clip  # noqa: E402
from tests.bench.detector import (  # noqa: E402
    NET,
    VIDEO_FRAMES,
    VIDEO_H,
    VIDEO_W,
    CpuTracedGridDetector,
    TinyDetector,
    card_yaml,
    export,
    vga_frames,
)

TORCH_GPU = "cuda-fp32,cuda-fp16,cuda-fp16-cl,cuda-fp32-graph,cuda-fp16-graph"
ONNX_BACKENDS = "ort-cpu,ort-cuda,ort-trt"


def make_video(directory: Path) -> Path:
    """The clip as MJPG .avi through OpenCV (the source decodes it with cv2), else .y4m."""
    return Path(write_clip(str(directory / "vga"), vga_frames(VIDEO_FRAMES), 30, "user_model_gpu"))


def run_bench(argv: list[str], timeout: float) -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print("\n$ tx2setup bench " + " ".join(argv), flush=True)
    try:
        cmd = [sys.executable, "-m", "tx2setup.bench", *argv]
        return subprocess.run(cmd, env=env, cwd=str(REPO), check=False, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"user_model_gpu: ran past {timeout:.0f} s: stopped", flush=True)
        return 124


def frames_in(path: str) -> tuple[int, tuple[int, int] | None]:
    """(frames, (width, height)) of a written video, read back with cv2 (0, None without cv2)."""
    try:
        import cv2
    except ImportError:
        return 0, None
    cap = cv2.VideoCapture(path)
    n, size = 0, None
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n, size = n + 1, (int(img.shape[1]), int(img.shape[0]))
    cap.release()
    return n, size


def rows_of(doc: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """One summary row per backend of a bench result, with its written videos checked."""
    rows = []
    for r in doc.get("results", []):
        row: dict[str, Any] = {
            "model": model,
            "backend": r["backend"],
            "precision": r["precision"],
            "correct": r.get("correct"),
            "pipeline_error": r.get("pipeline_error"),
            "inference_fps": r["inference"]["fps"],
            "inference_median_ms": r["inference"]["median_ms"],
            "event_fps": r["inference"].get("event_fps"),
        }
        for name, e2e in (r.get("end_to_end_pipelines") or {}).items():
            video = e2e.get("video") or {}
            n, size = frames_in(video["path"]) if video.get("path") else (0, None)
            row[name] = {
                "fps": e2e["fps"],
                "median_ms": e2e["median_ms"],
                "stages": e2e["stages"],
                "checked_frames": e2e.get("checked_frames"),
                "postprocess_error": e2e.get("postprocess_error"),
                "video": video,
                "video_read_back": {"frames": n, "size": size},
                "video_ok": n == video.get("frames") and size == (VIDEO_W, VIDEO_H),
            }
        rows.append(row)
    for u in doc.get("unavailable", []):
        rows.append({"model": model, "backend": u["backend"], "precision": u["precision"], "unavailable": u["reason"]})
    return rows


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def print_table(rows: list[dict[str, Any]]) -> None:
    head = "{:9} {:16} {:4} {:>10} {:>9} {:>9} {:>15} {:>7} {:>6} {:>5}"
    print(
        head.format(
            "model", "backend", "prec", "inf FPS", "e2e opt", "e2e naive", "write ms o/n", "checked", "video", "ok"
        )
    )
    for r in rows:
        if "unavailable" in r:
            print(f"{r['model']:9} {r['backend']:16} unavailable: {r['unavailable']}")
            continue
        opt, naive = r.get("optimized") or {}, r.get("naive") or {}
        write = "{:.2f}/{:.2f}".format(
            opt.get("stages", {}).get("write", float("nan")), naive.get("stages", {}).get("write", float("nan"))
        )
        checked = "{}/{}".format(opt.get("checked_frames", "-"), naive.get("checked_frames", "-"))
        videos = all(p.get("video_ok") for p in (opt, naive) if p)
        print(
            head.format(
                r["model"],
                r["backend"],
                r["precision"],
                f"{r['inference_fps']:.1f}",
                f"{opt.get('fps', float('nan')):.1f}",
                f"{naive.get('fps', float('nan')):.1f}",
                write,
                checked,
                "ok" if videos else "BAD",
                "yes" if r["correct"] else "NO",
            )
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "user_model_gpu_out")
    p.add_argument("--quick", action="store_true", help="short runs, CPU backends: a logic check")
    p.add_argument("--timeout", type=float, default=150.0, help="per bench process")
    a = p.parse_args(argv)
    on_gpu = torch.cuda.is_available()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="user_model_gpu_"))  # models, clip, written videos
    t0 = time.time()
    det_pt, det_onnx = export(TinyDetector(), (1, 3, NET, NET), "det", tmp, "images")
    cpu_grid_pt, _ = export(CpuTracedGridDetector(), (1, 3, NET, NET), "det_cpu_grid", tmp, "images")
    card = card_yaml(tmp / "det.yaml")
    clip = make_video(tmp)
    policy = ["--warmup", "0.1", "--min-iters", "20", "--duration", "0.3"] if a.quick else []
    common = ["--model-card", str(card), "--source", f"video:{clip}", "--plain", *policy]
    torch_backends = "cpu-fp32" + ("," + TORCH_GPU if on_gpu else "")
    runs = [
        ("det.pt", det_pt, torch_backends, "both", "user_det_torch.json"),
        ("det.onnx", det_onnx, ONNX_BACKENDS, "both", "user_det_onnx.json"),
    ]
    if on_gpu:
        runs.append(("det_cpu_grid.pt", cpu_grid_pt, "cuda-fp32", "optimized", "user_det_cpu_grid.json"))
    rcs, rows = {}, []
    for model, path, backends, pipeline, js in runs:
        argv_ = ["--model", str(path), *common, "--backends", backends, "--pipeline", pipeline]
        argv_ += ["--write-video", str(tmp / (Path(js).stem + ".avi")), "--json", str(out / js)]
        rcs[model] = run_bench(argv_, a.timeout)
        rows += rows_of(_load(out / js), model)
    summary = {
        "device": torch.cuda.get_device_name() if on_gpu else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "video": {"path": clip.name, "frames": VIDEO_FRAMES, "size": [VIDEO_W, VIDEO_H]},
        "policy": policy or "default (0.5 s warm-up, >= 100 iterations, >= 3 s)",
        "bench_rcs": rcs,
        "rows": rows,
        "wall_s": time.time() - t0,
    }
    (out / "user_model_gpu.json").write_text(json.dumps(summary, indent=2))
    print(f"\n== detector end to end on {summary['device'] or 'no GPU'} (torch {torch.__version__})")
    print_table(rows)
    bad = [r["backend"] for r in rows if "unavailable" not in r and not r["correct"]]
    bad += [r["backend"] for r in rows for p in ("optimized", "naive") if p in r and not r[p]["video_ok"]]
    print(f"wall {summary['wall_s']:.0f} s; exits {rcs}" + (f"; FAILING {sorted(set(bad))}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
