"""The versioned JSON result (docs/bench.md), the verdict, and the human table (rich or plain)."""

import json
import math
import os

from . import SCHEMA_VERSION, __version__


def best_end_to_end(results):
    # type: (list) -> object
    """The correct backend with the highest end-to-end FPS, or None."""
    best = None
    for r in results:
        e2e = r.get("end_to_end")
        if not r.get("correct") or not e2e:
            continue
        if best is None or e2e["fps"] > best["end_to_end"]["fps"]:
            best = r
    return best


def verdict(results, target_fps):
    # type: (list, object) -> dict
    """PASS/FAIL on the best correct backend's end-to-end FPS (inference-only FPS if no end to end ran)."""
    best = best_end_to_end(results)
    measure = "end_to_end"
    if best is None:
        measure = "inference"
        correct = [r for r in results if r.get("correct") and r.get("inference")]
        best = max(correct, key=lambda r: r["inference"]["fps"]) if correct else None
    fps = best[measure]["fps"] if best else None
    out = {
        "target_fps": target_fps,
        "fps": fps,
        "measure": measure,
        "backend": best["backend"] if best else None,
        "pipeline": best[measure].get("pipeline") if best and measure == "end_to_end" else None,
        "pass": None,
        "margin_pct": None,
        "all_correct": all(r.get("correct") for r in results),
    }
    if target_fps:
        out["pass"] = bool(fps is not None and fps >= target_fps)
        out["margin_pct"] = (100.0 * (fps / target_fps - 1.0)) if fps is not None else None
    return out


def document(conditions, results, unavailable, verdict_, run_policy, telemetry):
    # type: (dict, list, list, dict, dict, dict) -> dict
    return {
        "schema": "tx2setup.bench.result",
        "schema_version": SCHEMA_VERSION,
        "tool_version": __version__,
        "conditions": conditions,
        "run_policy": run_policy,
        "results": results,
        "unavailable": unavailable,
        "telemetry": telemetry,
        "verdict": verdict_,
    }


def finite(obj):
    # type: (object) -> object
    """A copy with every NaN/inf float replaced by None: the JSON stays strict (no NaN tokens)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return dict((k, finite(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json(doc, path):
    # type: (dict, str) -> None
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(finite(doc), fh, indent=2, sort_keys=True, allow_nan=False, default=str)
        fh.write("\n")
    os.replace(tmp, path)


def load_json(path):
    # type: (str) -> dict
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            "%s: schema_version %r, this tool reads %d" % (path, doc.get("schema_version"), SCHEMA_VERSION)
        )
    return doc


def _f(v, fmt="%.3f"):
    # type: (object, str) -> str
    return "-" if v is None else fmt % v


def rows(doc):
    # type: (dict) -> tuple
    head = [
        "backend",
        "prec",
        "INFERENCE-ONLY fps",
        "median ms",
        "p99 ms",
        "END-TO-END fps",
        "e2e median ms",
        "pipeline",
        "max rel err",
        "ok",
    ]
    body = []
    for r in doc["results"]:
        inf = r.get("inference") or {}
        e2e = r.get("end_to_end") or {}
        body.append(
            [
                r["backend"],
                r["precision"],
                _f(inf.get("fps"), "%.1f"),
                _f(inf.get("median_ms")),
                _f(inf.get("p99_ms")),
                _f(e2e.get("fps"), "%.1f"),
                _f(e2e.get("median_ms")),
                e2e.get("pipeline", "-"),
                _f(r.get("max_rel_error"), "%.2e"),
                "yes" if r.get("correct") else "NO",
            ]
        )
    return head, body


def stage_columns(doc):
    # type: (dict) -> list
    """The stages of the runs in this result, in pipeline order: Z2Color's, or a user model's
    (no stacking; ``write`` when --write-video wrote the frames)."""
    from .pipeline import STAGES

    cols = []  # type: list
    for r in doc["results"]:
        for e2e in (r.get("end_to_end_pipelines") or {}).values():
            for s in e2e.get("stage_order") or STAGES:
                if s not in cols:
                    cols.append(s)
    return cols or list(STAGES)


def _writes(e2e):
    # type: (dict) -> bool
    return bool(e2e.get("video"))


def stage_rows(doc):
    # type: (dict) -> tuple
    cols = stage_columns(doc)
    # the sink's stage says what it is: it counts in the end-to-end time, as the lab defines it
    head = ["backend", "pipeline", *["write (sink)" if s == "write" else s for s in cols], "fps"]
    body = []
    for r in doc["results"]:
        for name, e2e in sorted((r.get("end_to_end_pipelines") or {}).items()):
            cells = []
            for s in cols:
                v = (e2e.get("stages") or {}).get(s)
                cells.append("-" if v is None or (s == "write" and not _writes(e2e)) else "%.3f" % v)
            body.append([r["backend"], name, *cells, "%.1f" % e2e["fps"]])
    return head, body


def write_note(doc):
    # type: (dict) -> list
    """One line when a sink wrote frames: where its time went."""
    runs = [(r["backend"], n, e) for r in doc["results"] for n, e in (r.get("end_to_end_pipelines") or {}).items()]
    runs = [(b, n, e) for b, n, e in runs if _writes(e)]
    if not runs:
        return []
    parts = ["%s %s %.2f ms" % (b, n, e["stages"].get("write", 0.0)) for b, n, e in sorted(runs)]
    return [
        "write (sink): encoding and writing each annotated frame (--write-video), counted in END-TO-END fps: "
        + ", ".join(parts)
    ]


def notes(doc):
    # type: (dict) -> list
    lines = []
    for r in doc["results"]:
        for label, st in [("inference", r.get("inference")), *sorted((r.get("end_to_end_pipelines") or {}).items())]:
            if st and st.get("unstable"):
                lines.append("WARNING %s %s unstable: %s" % (r["backend"], label, "; ".join(st["unstable_reasons"])))
        if not r.get("correct"):
            if r.get("max_rel_error") is None:
                lines.append("FAIL %s: output not finite or of the wrong shape" % r["backend"])
            elif r["max_rel_error"] > r.get("tolerance", 0):
                lines.append(
                    "FAIL %s: relative error %.3e exceeds tolerance %g"
                    % (r["backend"], r["max_rel_error"], r.get("tolerance", 0))
                )
            if r.get("pipeline_error"):
                lines.append("FAIL %s: %s" % (r["backend"], r["pipeline_error"]))
    v = doc["verdict"]
    if v.get("target_fps"):
        lines.append(
            "%s: %s %s FPS %s (%s) vs target %g, margin %+.1f%%"
            % (
                "PASS" if v["pass"] else "FAIL",
                v["measure"].replace("_", "-"),
                v.get("pipeline") or "",
                _f(v["fps"], "%.1f"),
                v["backend"],
                v["target_fps"],
                v["margin_pct"] if v["margin_pct"] is not None else -100.0,
            )
        )
    return lines


def condition_lines(doc):
    # type: (dict) -> list
    """What a slow board is usually explained by: power mode, clocks, software versions."""
    c = doc["conditions"]
    mode = c.get("nvpmodel")
    if mode:
        power = "nvpmodel %s (mode %s)" % (mode.get("name"), mode.get("id"))
    else:
        power = "nvpmodel -" if not c.get("jetson") else "nvpmodel unknown (nvpmodel -q failed)"
    clocks = c.get("jetson_clocks") or {}
    pinned = {True: "pinned", False: "NOT pinned", None: "pinned?"}[clocks.get("pinned")]
    line = "conditions: %s; clocks %s (%s); CUDA %s, cuDNN %s, TensorRT %s, onnxruntime %s; batch %s" % (
        power,
        pinned,
        clocks.get("method", "-"),
        c.get("cuda") or "-",
        c.get("cudnn") or "-",
        c.get("tensorrt") or "-",
        c.get("onnxruntime") or "-",
        c.get("batch"),
    )
    out = [line]
    if c.get("jetson") and clocks.get("pinned") is False:
        out.append("HINT clocks are not pinned: run `sudo jetson_clocks` (and a MAXN nvpmodel) before benchmarking")
    return out


TELEMETRY_SHOWN = (
    ("gpu_util_pct", "GPU util", "%.0f%%"),
    ("gpu_clock_mhz", "GPU clock", "%.0f MHz"),
    ("gpu_temp_c", "GPU temp", "%.0f C"),
    ("power_w", "power", "%.1f W"),
    ("cpu_util_pct", "CPU util", "%.0f%%"),
    ("cpu_clock_mhz", "CPU clock", "%.0f MHz"),
    ("temp_max_c", "max temp", "%.0f C"),
)


def telemetry_line(tel):
    # type: (object) -> str
    """One line of the whole run's telemetry: mean (min-max) of the fields that matter most."""
    if not tel or not tel.get("source"):
        return "telemetry: none (--no-telemetry)"
    fields = tel.get("fields") or {}
    parts = []
    for key, label, fmt in TELEMETRY_SHOWN:
        f = fields.get(key)
        if f:
            parts.append("%s %s (%s-%s)" % (label, fmt % f["mean"], fmt % f["min"], fmt % f["max"]))
    body = "; ".join(parts) if parts else "no readable fields"
    return "telemetry (%s, %d samples, mean (min-max)): %s" % (tel["source"], tel.get("samples", 0), body)


STAGE_ADVICE = {
    "capture": "the source delivers frames this slowly (camera fps, video decode)",
    "stack": "stacking the frames on the CPU: use --pipeline optimized (stacks at network resolution on the GPU)",
    "preprocess": "float conversion / pooling: on the CPU it is the 2017 bottleneck; --pipeline optimized does it "
    "on the GPU from uint8",
    "h2d": "copy-bound: upload uint8 from pinned memory (--pipeline optimized), not float from pageable memory",
    "d2h": "the copy back to the host: a sync point each frame",
    "postprocess": "steer/motor from the outputs on the host (a user model: decode, NMS or top-k)",
    "write": "encoding and writing the annotated frames (--write-video): part of end to end, as the lab defines "
    "it; a hardware encoder (GStreamer) or a smaller frame size is what helps",
}


def hints(doc):
    # type: (dict) -> list
    """Why a result is slow, from its own numbers (design.md section 7)."""
    lines = []
    c = doc["conditions"]
    ran_e2e = any(r.get("end_to_end_pipelines") for r in doc["results"])
    if not ran_e2e:
        if c.get("model_kind") and c.get("model_kind") != "z2color":
            lines.append(
                "NOTE end-to-end not measured: the camera-to-steering pipeline is Z2Color's; "
                "your model is measured inference-only (--model-card F.yaml or --output KIND gives it one)"
            )
        elif c.get("batch") and c.get("batch") != 1:
            lines.append(
                "NOTE end-to-end not measured: it runs at batch 1 (one stereo frame per step); "
                "rerun with --batch 1 for it"
            )
    for r in doc["results"]:
        inf = r.get("inference") or {}
        if r.get("device") == "cuda" and inf.get("fps") and inf.get("median_ms"):
            per_iter = 1000.0 / inf["fps"]
            idle = 1.0 - inf["median_ms"] / per_iter
            util = ((inf.get("telemetry") or {}).get("fields") or {}).get("gpu_util_pct")
            if idle > 0.3 or (util and util["mean"] < 50):
                why = "GPU idle %.0f%% of each iteration (%.3f ms on the GPU of %.3f ms)" % (
                    100 * max(idle, 0.0),
                    inf["median_ms"],
                    per_iter,
                )
                if util:
                    why += ", GPU util %.0f%%" % util["mean"]
                advice = "try a CUDA-graph backend" if not r.get("graph") else "launch overhead remains"
                lines.append("HINT %s: host/launch-bound: %s; %s" % (r["backend"], why, advice))
        for name, e2e in sorted((r.get("end_to_end_pipelines") or {}).items()):
            if not inf.get("fps") or not e2e.get("fps") or e2e["fps"] >= 0.8 * inf["fps"]:
                continue
            stages = dict((k, v) for k, v in (e2e.get("stages") or {}).items() if k != "inference")
            if not stages:
                continue
            worst = max(stages, key=lambda k: stages[k])
            lines.append(
                "HINT %s %s: end-to-end %.1f FPS is %.0f%% of inference-only %.1f FPS; biggest other stage: "
                "%s %.3f ms of %.3f ms per frame (%s)"
                % (
                    r["backend"],
                    name,
                    e2e["fps"],
                    100.0 * e2e["fps"] / inf["fps"],
                    inf["fps"],
                    worst,
                    stages[worst],
                    e2e.get("median_ms") or 0.0,
                    STAGE_ADVICE.get(worst, "")
                    if r.get("device") == "cuda"
                    else "a CPU backend: every stage shares the CPU cores with inference",
                )
            )
    return lines


def _overlaps(doc):
    # type: (dict) -> bool
    """Stages overlap only in the optimized pipeline on a GPU (capture of N+1 during inference of N)."""
    return any(
        r.get("device") == "cuda" and "optimized" in (r.get("end_to_end_pipelines") or {}) for r in doc["results"]
    )


def render(doc, stream, use_rich=True):
    # type: (dict, object, bool) -> None
    """Print the result tables; rich when it imports, plain columns otherwise."""
    c = doc["conditions"]
    gpu = (c.get("gpu") or {}).get("name", "no GPU")
    title = "%s benchmark on %s (%s; %s; torch %s, TensorRT %s, L4T %s)" % (
        "Z2Color" if c.get("model", "z2color") == "z2color" else c.get("model"),  # the user's model file by name
        c.get("board") or c.get("machine"),
        gpu,
        c.get("cpu"),
        c.get("torch"),
        c.get("tensorrt") or "-",
        c.get("l4t") or "-",
    )
    tables = [("results (batch %s, source %s)" % (c.get("batch"), (c.get("source") or {}).get("kind", "-")), rows(doc))]
    if any(r.get("end_to_end_pipelines") for r in doc["results"]):
        title_ = "end-to-end stage means, ms" + (" (GPU stages overlap in 'optimized')" if _overlaps(doc) else "")
        tables.append((title_, stage_rows(doc)))
    console = None
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table

            console = Console(file=stream)
        except ImportError:
            console = None
    if console is not None:
        console.print(title)
        for name, (head, body) in tables:
            t = Table(title=name)
            for h in head:
                t.add_column(h)
            for row in body:
                t.add_row(*row)
            console.print(t)
    else:
        stream.write(title + "\n")
        for name, (head, body) in tables:
            stream.write("\n" + name + "\n")
            widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
            for row in [head, *body]:
                stream.write("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() + "\n")
    lines = [*condition_lines(doc), telemetry_line(doc.get("telemetry")), *write_note(doc), *notes(doc)]
    for line in [*lines, *hints(doc)]:
        stream.write(line + "\n")
