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


def stage_rows(doc):
    # type: (dict) -> tuple
    from .pipeline import STAGES

    head = ["backend", "pipeline", *list(STAGES), "fps"]
    body = []
    for r in doc["results"]:
        for name, e2e in sorted((r.get("end_to_end_pipelines") or {}).items()):
            body.append([r["backend"], name] + ["%.3f" % e2e["stages"][s] for s in STAGES] + ["%.1f" % e2e["fps"]])
    return head, body


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


def render(doc, stream, use_rich=True):
    # type: (dict, object, bool) -> None
    """Print the result tables; rich when it imports, plain columns otherwise."""
    c = doc["conditions"]
    gpu = (c.get("gpu") or {}).get("name", "no GPU")
    title = "Z2Color benchmark on %s (%s; %s; torch %s, TensorRT %s, L4T %s)" % (
        c.get("board") or c.get("machine"),
        gpu,
        c.get("cpu"),
        c.get("torch"),
        c.get("tensorrt") or "-",
        c.get("l4t") or "-",
    )
    tables = [("results (batch %s, source %s)" % (c.get("batch"), (c.get("source") or {}).get("kind", "-")), rows(doc))]
    if any(r.get("end_to_end_pipelines") for r in doc["results"]):
        tables.append(("end-to-end stage means, ms (stages overlap in 'optimized')", stage_rows(doc)))
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
    for line in notes(doc):
        stream.write(line + "\n")
