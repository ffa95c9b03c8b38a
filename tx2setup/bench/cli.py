"""Command line: ``python3 -m tx2setup.bench`` on a board, ``tx2setup bench`` on the host.

Exit codes: 0 all backends correct and the target met (or no target), 1 a backend was
incorrect or the target was missed, 2 bad usage.
"""

import argparse
import math
import os
import sys
import time

import torch

from . import SCHEMA_VERSION, __version__
from .backends import all_backends, detect
from .correctness import check_backend, check_pipeline
from .errors import BackendUnavailable, BenchError, BenchUsageError
from .report import document, render, verdict, write_json
from .stats import RunPolicy, run_timed, summarize


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # type: (str) -> None
        raise BenchUsageError(message)


def build_parser():
    # type: () -> argparse.ArgumentParser
    p = _Parser(
        prog="tx2setup bench",
        description="Z2Color acceptance benchmark: inference-only and end-to-end (camera to steering), "
        "every backend this machine has, checked against the fp32 model.",
    )
    p.add_argument("--model", default="z2color", help="z2color, or a TorchScript (.pt/.ts) or ONNX (.onnx) file")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD..", help="inputs of your model")
    p.add_argument("--model-card", metavar="F.yaml", help="your model's input/output contract (docs/bench.md)")
    p.add_argument("--output", metavar="KIND", help="your model's output: none, argmax, topk:K or yolo (no card)")
    p.add_argument("--write-video", metavar="PATH", help="write the annotated frames of the end-to-end run")
    p.add_argument("--weights", help="a Z2Color state dict (default: seeded deterministic weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic weights and synthetic frames")
    p.add_argument("--backends", default="all", help="comma-separated backend names, or 'all' available")
    p.add_argument("--list-backends", action="store_true", help="show each backend as available or why not")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--source",
        default="synthetic",
        help="synthetic[:FPS] (ZED stereo, 0 = as fast as possible), video:PATH, gst:PIPELINE, v4l2[:/dev/videoN]",
    )
    p.add_argument("--pipeline", choices=("optimized", "naive", "both"), default="optimized")
    p.add_argument("--warmup", type=float, default=0.5, metavar="S", help="warm-up seconds (default 0.5)")
    p.add_argument("--min-iters", type=int, default=100, help="minimum timed iterations (default 100)")
    duration_help = "minimum timed seconds (default 3)"
    # `--duration`, the name `tx2setup verify` uses too; `--min-duration` stays as a hidden alias
    # because scripts and older tx2setup releases' verify pass it to boards
    p.add_argument("--duration", dest="min_duration", type=float, default=3.0, metavar="S", help=duration_help)
    p.add_argument("--min-duration", dest="min_duration", type=float, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--target-fps", type=float, help="PASS/FAIL on the best correct end-to-end FPS")
    p.add_argument("--tolerance", type=float, help="override the relative-error tolerance of every backend")
    p.add_argument(
        "--compile-mode", default="max-autotune-no-cudagraphs", help="torch.compile mode of compile-fp16-graph"
    )
    p.add_argument("--json", metavar="F", help="write the versioned result (docs/bench.md)")
    p.add_argument("--profile", metavar="F", help="write a chrome/perfetto trace (torch.profiler)")
    p.add_argument("--no-telemetry", action="store_true", help="do not sample tegrastats/nvidia-smi//proc")
    p.add_argument("--plain", action="store_true", help="plain-text table even if rich is installed")
    p.add_argument("--quiet", action="store_true", help="no table (use with --json)")
    p.add_argument(
        "--version", action="version", version="tx2setup.bench %s (schema %d)" % (__version__, SCHEMA_VERSION)
    )
    return p


def _print_backends(found, out):
    # type: (list, object) -> None
    width = max(len(b.name) for b, _ in found)
    for b, reason in found:
        state = "available" if reason is None else "unavailable: " + reason
        out.write("%s  %-5s %s  (%s)\n" % (b.name.ljust(width), b.precision, state, b.description))


def _time_inference(backend, policy):
    # type: (object, RunPolicy) -> dict
    """Inference only on the static inputs: CUDA events around each synchronised run on a GPU."""
    if backend.is_cuda:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def step():
            # type: () -> float
            start.record()
            backend.run()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)

    else:

        def step():
            # type: () -> object
            backend.run()
            return None

    with torch.no_grad():
        lat, wall, warm = run_timed(step, policy)
        b2b = _back_to_back(backend, len(lat)) if backend.is_cuda else None
    s = summarize(lat, wall)
    s["warmup_iters"] = warm
    s["timing"] = "cuda events" if backend.is_cuda else "host clock"
    # the two denominators of an end-to-end ratio, labelled (docs/bench.md): (a) synchronised
    # iterations per wall second is ``fps``; (b) 1 / median event latency is ``event_fps``
    s["event_fps"] = 1000.0 / s["median_ms"] if backend.is_cuda and s["median_ms"] > 0 else None
    s["back_to_back_ms"] = b2b
    return s


def _back_to_back(backend, iters):
    # type: (object, int) -> object
    """GPU time per run over ``iters`` back-to-back runs between two CUDA events (no host sync
    between them): how a bare CUDA-graph floor is timed, so the two compare like for like."""
    iters = max(1, min(int(iters), 20000))
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        backend.run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iters


def main(argv=None):
    # type: (object) -> int
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BenchError as exc:
        sys.stderr.write("tx2setup bench: %s\n" % exc)
        return exc.exit_code
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)


def _check_numbers(args):
    # type: (object) -> None
    """Range checks with one-line usage errors (argparse only checks the types)."""
    checks = [
        ("--warmup", args.warmup, args.warmup >= 0, ">= 0"),
        ("--min-iters", args.min_iters, args.min_iters >= 1, ">= 1"),
        ("--duration", args.min_duration, args.min_duration >= 0, ">= 0"),
        ("--batch", args.batch, args.batch >= 1, ">= 1"),
        ("--target-fps", args.target_fps, args.target_fps is None or args.target_fps > 0, "> 0"),
        ("--tolerance", args.tolerance, args.tolerance is None or args.tolerance > 0, "> 0"),
    ]
    for option, value, ok, want in checks:
        # NaN compares false everywhere, so "nan" is rejected too
        if not ok or (isinstance(value, float) and value != value):
            raise BenchUsageError("%s %s: must be %s" % (option, value, want))


def _main(argv):
    # type: (list) -> int
    """Parse and check everything (one line, exit 2, before any work), run each backend, report."""
    args = build_parser().parse_args(argv)
    _check_numbers(args)
    _check_output_dirs(args)
    policy = RunPolicy(args.warmup, args.min_iters, args.min_duration)
    spec, card = _load_model(args)
    found = _select_backends(args, spec)
    if args.list_backends:
        _print_backends(found, sys.stdout)
        return 0
    run_e2e = (spec.is_z2color or card is not None) and spec.batch == 1
    _check_end_to_end(args, card, run_e2e)
    pipelines = ["optimized", "naive"] if args.pipeline == "both" else [args.pipeline]
    conditions = _conditions(args, spec, card, run_e2e, pipelines)
    results, unavailable, whole_run = _run_backends(found, spec, args, policy, pipelines, run_e2e)
    if not results:
        raise BenchError("no backend could run here: " + "; ".join("%(backend)s: %(reason)s" % u for u in unavailable))
    v = verdict(results, args.target_fps)
    doc = document(conditions, results, unavailable, v, policy.as_dict(), whole_run)
    if args.json:
        write_json(doc, args.json)
    if not args.quiet:
        render(doc, sys.stdout, use_rich=not args.plain)
    return 0 if v["all_correct"] and v["pass"] is not False else 1


def _check_output_dirs(args):
    # type: (object) -> None
    for path in (args.json, args.profile):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise BenchUsageError("%s: its directory does not exist" % path)


def _load_model(args):
    # type: (object) -> tuple
    """(spec, card or None): the model, its --input-shape and card checked against it."""
    from .modelcard import resolve_card
    from .spec import load_spec

    card, shapes = resolve_card(args)
    spec = load_spec(args.model, args.batch, args.seed, args.weights, shapes)
    if not spec.is_z2color:
        from .modelcard import check_card, check_model

        check_model(spec, shapes)  # a wrong name/rank/shape: one line, before any backend runs
        if card is not None:
            check_card(spec, card)
    spec.card = card
    if args.profile and not (spec.is_z2color and spec.batch == 1):
        # checked before any work: the trace is of the end-to-end pipeline
        raise BenchUsageError("--profile traces the end-to-end pipeline: z2color at batch 1 only")
    return spec, card


def _select_backends(args, spec):
    # type: (object, object) -> list
    """[(backend, None or why unavailable)] of --backends (all by default)."""
    # fp32 means fp32: no TF32 in cuDNN convolutions or matmuls.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    known = all_backends(args.compile_mode)
    if args.backends != "all":
        wanted = [n.strip() for n in args.backends.split(",") if n.strip()]
        names = [b.name for b in known]
        bad = [n for n in wanted if n not in names]
        if bad:
            raise BenchUsageError("--backends: unknown %s (known: %s)" % (", ".join(bad), ", ".join(names)))
        known = [b for b in known if b.name in wanted]
    return detect(known, spec)


def _check_end_to_end(args, card, run_e2e):
    # type: (object, object, bool) -> None
    """--write-video and --source checked before the long work: a video that cannot be opened
    or read gives one line naming --source video:PATH now, not after the inference runs."""
    from .sources import parse_source

    if args.write_video and not (card is not None and run_e2e):
        raise BenchUsageError("--write-video: needs your model's end-to-end run (--model-card or --output, --batch 1)")
    if not run_e2e:
        return
    src = parse_source(args.source, seed=args.seed)
    if src.kind != "video" and card is None:
        return  # Z2Color's camera and GStreamer sources are opened by the run itself
    probe = src
    if card is not None:
        from .userpipeline import FrameSource

        probe = FrameSource(args.source, args.seed)
    probe.open()
    try:
        if src.kind == "video":
            probe.capture()  # a file cv2 opens but cannot decode fails here
    finally:
        probe.close()


def _conditions(args, spec, card, run_e2e, pipelines):
    # type: (object, object, object, bool, list) -> dict
    from .conditions import collect
    from .sources import parse_source

    return collect(
        {
            "model": spec.name,
            "model_kind": spec.kind,
            "weights_sha256": spec.weights_hash,
            "batch": spec.batch,
            "input_shapes": dict(zip(spec.input_names, [list(s) for s in spec.input_shapes])),
            "source": parse_source(args.source, seed=args.seed).describe() if run_e2e else None,
            "pipelines": pipelines if run_e2e else [],
            "model_card": card.as_dict() if card is not None else None,
        }
    )


def _run_backends(found, spec, args, policy, pipelines, run_e2e):
    # type: (list, object, object, RunPolicy, list, bool) -> tuple
    """(results, unavailable, the whole run's telemetry summary): each available backend in turn."""
    from .telemetry import Telemetry, empty_summary, torch_gpu_id

    telemetry = None if args.no_telemetry else Telemetry(gpu=torch_gpu_id()).start()
    results, unavailable = [], []
    seed = int.from_bytes(os.urandom(4), "little")  # fresh random inputs on every run
    try:
        for backend, reason in found:
            if reason is not None:
                unavailable.append({"backend": backend.name, "precision": backend.precision, "reason": reason})
                continue
            entry = _bench_one(backend, spec, args, policy, pipelines, run_e2e, seed, telemetry)
            if entry is None:
                unavailable.append({"backend": backend.name, "precision": backend.precision, "reason": backend.failed})
            else:
                results.append(entry)
        if args.profile:
            _profile(args, results, found, spec)
    finally:
        if telemetry is not None:
            telemetry.stop()
    return results, unavailable, telemetry.summary() if telemetry else empty_summary()


def _bench_one(backend, spec, args, policy, pipelines, run_e2e, seed, telemetry):
    # type: (object, object, object, RunPolicy, list, bool, int, object) -> object
    from .pipeline import run_end_to_end
    from .sources import parse_source

    t0 = time.perf_counter()
    if backend.name == "trt-int8" and spec.is_z2color:
        # INT8 calibration on sample frames: the configured source's frames, preprocessed
        backend.calib_inputs = _calibration_batches(spec, args)
    try:
        backend.prepare(spec)
    except BackendUnavailable as exc:
        backend.failed = "prepare failed: %s" % exc
        return None
    except Exception as exc:  # a backend that cannot build here is reported, not fatal
        backend.failed = "prepare failed: " + failure_line(exc, spec, backend)
        return None
    entry = backend.info()
    entry["description"] = backend.description
    entry["prepare_s"] = time.perf_counter() - t0
    entry.update(check_backend(backend, spec, seed, tolerance=args.tolerance))
    t1 = time.perf_counter()
    entry["inference"] = _time_inference(backend, policy)
    entry["inference"]["telemetry"] = _window(telemetry, t1)
    entry["end_to_end"] = None
    entry["end_to_end_pipelines"] = {}
    if run_e2e and getattr(spec, "card", None) is not None:
        from .userpipeline import bench_pipelines

        entry.update(
            bench_pipelines(backend, spec, spec.card, args, policy, pipelines, lambda t: _window(telemetry, t))
        )
    elif run_e2e:
        for name in pipelines:
            t2 = time.perf_counter()
            src = parse_source(args.source, seed=args.seed)
            e2e = run_end_to_end(backend, src, name, policy)
            checked = check_pipeline(spec, e2e.pop("probes"))
            err = checked[0] if checked is not None else None
            e2e["checked_frames"] = checked[1] if checked is not None else 0
            # NaN/inf output or a shape mismatch: null in the JSON, and the backend incorrect
            e2e["rel_error"] = err if err is not None and math.isfinite(err) else None
            e2e["telemetry"] = _window(telemetry, t2)
            entry["end_to_end_pipelines"][name] = e2e
            if e2e["rel_error"] is None or e2e["rel_error"] > entry["tolerance"]:
                entry["correct"] = False
                entry["pipeline_error"] = "%s pipeline output differs from the reference (rel err %s)" % (
                    name,
                    "%.3e" % e2e["rel_error"] if e2e["rel_error"] is not None else "not finite / wrong shape",
                )
        entry["end_to_end"] = entry["end_to_end_pipelines"].get("optimized") or entry["end_to_end_pipelines"].get(
            "naive"
        )
    backend.inputs = []
    if backend.is_cuda:
        torch.cuda.empty_cache()
    return entry


TS_INTERPRETER = "The following operation failed in the TorchScript interpreter"
CPU_BAKED = 'device=torch.device("cpu")'


def failure_line(exc, spec, backend):
    # type: (BaseException, object, object) -> str
    """One line saying why a backend failed to prepare.

    A TorchScript error's first line is only ``The following operation failed in the TorchScript
    interpreter.`` (seen on an H100, 2026-12-06); its cause is the message's last line. A file
    traced on the CPU can hold ``device=torch.device("cpu")`` in its code (torch.arange/zeros in
    forward, traced): on a GPU backend that is the likely cause, and the line says so."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = "%s: %s" % (type(exc).__name__, lines[0] if lines else "")
    if lines and lines[0].startswith(TS_INTERPRETER):
        text = lines[-1]  # "RuntimeError: Expected all tensors to be on the same device, ..."
    module = getattr(spec, "module", None)
    if getattr(backend, "is_cuda", False) and getattr(spec, "kind", "") == "torchscript" and module is not None:
        codes = [getattr(m, "code", "") for _, m in module.named_modules()]
        if any(CPU_BAKED in str(c) for c in codes):
            text += (
                " (%s has device cpu written into its TorchScript code, as torch.jit.trace records "
                "tensors made in forward: trace it on the GPU, or give its ONNX export)" % spec.name
            )
    return text


def _window(telemetry, t0):
    # type: (object, float) -> dict
    """The telemetry summary from ``t0`` to now; with --no-telemetry the same keys, null values."""
    from .telemetry import empty_summary

    return telemetry.summary(t0, time.perf_counter()) if telemetry is not None else empty_summary()


def _calibration_batches(spec, args, count=16):
    # type: (object, object, int) -> list
    """``count`` batches' worth of batch-1 samples; the backend groups them into --batch sized batches."""
    import numpy as np

    from . import model as z2
    from .sources import parse_source

    src = parse_source(args.source, seed=args.seed)
    src.open()
    try:
        prev = np.array(src.capture())
        batches = []
        for _ in range(count * spec.batch):
            cur = np.array(src.capture())
            x = z2.preprocess(z2.stack_hwc(torch.from_numpy(prev), torch.from_numpy(cur)))
            batches.append([x, z2.metadata(1)])
            prev = cur
        return batches
    finally:
        src.close()


def _profile(args, results, found, spec):
    # type: (object, list, list, object) -> None
    from .backends import TorchBackend
    from .profiling import write_profile
    from .sources import parse_source

    correct = [r for r in results if r.get("correct")]
    if not correct:
        sys.stderr.write("tx2setup bench: no --profile trace: no backend was correct\n")
        return
    best = max(correct, key=lambda r: (r.get("end_to_end") or r["inference"])["fps"])
    backend = next(b for b, _ in found if b.name == best["backend"])
    backend.prepare(spec)  # its buffers were released after its run
    eager = None
    if spec.module is not None:
        eager = TorchBackend("profile-eager", device=backend.device if backend.device == "cuda" else "cpu")
        eager.prepare(spec)
    src = parse_source(args.source, seed=args.seed)
    pipeline = "optimized" if args.pipeline in ("optimized", "both") else "naive"
    write_profile(args.profile, backend, eager, src, pipeline)
