"""Renderers for verify results and history: table, JSON, JUnit XML, HTML (with plots).

Plots are inline SVG computed here, so the HTML report is one self-contained file that
opens offline (boards' labs often have no internet).
"""

from __future__ import annotations

import html
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tx2setup.results import BoardResult, Run

# Characters XML 1.0 does not allow (C0 but tab/newline/CR, U+FFFE/U+FFFF, lone surrogates)
# and the C1 controls and DEL, which HTML calls parse errors: a board's message, a model's
# name or an error text may carry them; the reports stay well-formed without them
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")


def _well_formed(text: str) -> str:
    return _UNPRINTABLE.sub("\ufffd", text)


STAGE_ORDER = ("capture", "stack", "preprocess", "h2d", "copy", "inference", "d2h", "postprocess")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def verdict_text(r: BoardResult) -> str:
    if r.margin_pct is None:
        return r.verdict
    return f"{r.verdict} ({r.margin_pct:+.1f}%)"


def table_rows(results: Sequence[BoardResult]) -> list[tuple[str, ...]]:
    return [
        (
            r.board,
            r.module,
            r.l4t or "-",
            r.power_mode or "-",
            str(r.checks_passed),
            str(r.checks_failed),
            fmt(r.inference_fps),
            fmt(r.e2e_fps),
            fmt(r.p99_ms, 2),
            f"{r.target_fps:g}",
            verdict_text(r),
        )
        for r in results
    ]


TABLE_COLUMNS = (
    "board",
    "module",
    "L4T",
    "power mode",
    "checks passed",
    "checks failed",
    "inference FPS",
    "end-to-end FPS",
    "p99 ms",
    "target",
    "result",
)


def latest_per_board(results: Sequence[BoardResult]) -> list[BoardResult]:
    """Each board's most recent result, by board name: a run limited to some boards
    (`verify --limit`) does not hide the others' last word."""
    latest: dict[str, BoardResult] = {}
    for r in sorted(results, key=lambda x: (x.finished_at, x.run_id or 0)):
        latest[r.board] = r
    return [latest[b] for b in sorted(latest)]


def result_dict(r: BoardResult) -> dict[str, Any]:
    # asdict() deep-copies every nested value: 4.4 s of `report --json` on 10,000 rows
    # (benchmarks/report_bench.py); the same dict, sharing conditions/bench, costs ~0.1 s
    d = {f.name: getattr(r, f.name) for f in fields(r)}
    d["checks"] = tuple(asdict(c) for c in r.checks)
    d["checks_passed"] = r.checks_passed
    d["checks_failed"] = r.checks_failed
    return d


# -- JUnit -----------------------------------------------------------------------------
def junit_xml(results: Sequence[BoardResult], suite_name: str = "tx2setup.verify") -> str:
    """One testsuite per board: a testcase per check plus one for the acceptance benchmark."""
    root = ET.Element("testsuites", name=suite_name)
    for r in results:
        cases: list[tuple[str, str, str]] = [(c.name, c.outcome, c.message) for c in r.checks]
        bench_msg = (
            f"end-to-end {fmt(r.e2e_fps)} FPS (inference-only {fmt(r.inference_fps)} FPS) vs target {r.target_fps:g}: "
            f"{verdict_text(r)}"
        )
        if r.reason:
            bench_msg += f"; {r.reason}"
        bench_outcome = {"PASS": "passed", "FAIL": "failed"}.get(r.verdict, "error")
        cases.append(("acceptance_benchmark", bench_outcome, bench_msg))
        suite = ET.SubElement(
            root,
            "testsuite",
            name=r.board,
            tests=str(len(cases)),
            failures=str(sum(o == "failed" for _, o, _ in cases)),
            errors=str(sum(o == "error" for _, o, _ in cases)),
            skipped=str(sum(o == "skipped" for _, o, _ in cases)),
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(r.finished_at or time.time())),
        )
        for name, outcome, message in cases:
            case = ET.SubElement(suite, "testcase", classname=f"{r.board}", name=name)
            if outcome in ("failed", "error", "skipped"):
                tag = {"failed": "failure", "error": "error", "skipped": "skipped"}[outcome]
                ET.SubElement(case, tag, message=message[:500]).text = message
            elif name == "acceptance_benchmark":
                ET.SubElement(case, "system-out").text = bench_msg
    return _well_formed(ET.tostring(root, encoding="unicode", xml_declaration=True))


# -- SVG plots ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]  # (time, fps)
    color: str


def fps_plot_svg(results: Sequence[BoardResult], width: int = 760, height: int = 300) -> str:
    """End-to-end FPS per board over time, one line per board, with the targets dashed."""
    by_board: dict[str, list[BoardResult]] = {}
    for r in sorted(results, key=lambda x: x.finished_at):
        if r.e2e_fps is not None:
            by_board.setdefault(r.board, []).append(r)
    if not by_board:
        return '<p class="empty">No benchmark results yet.</p>'
    series = [
        Series(board, [(r.finished_at, float(r.e2e_fps or 0.0)) for r in rs], PALETTE[i % len(PALETTE)])
        for i, (board, rs) in enumerate(sorted(by_board.items()))
    ]
    targets = {r.target_fps for r in results}
    xs = [t for s in series for t, _ in s.points]
    ys = [v for s in series for _, v in s.points] + list(targets)
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 1:
        x0, x1 = x0 - 1, x1 + 1
    y1 = max(ys) * 1.15 or 1.0
    left, right, top, bottom = 60, 150, 20, 40
    pw, ph = width - left - right, height - top - bottom

    def sx(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return top + ph - v / y1 * ph

    parts = [
        f'<svg class="plot" id="fps-plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="End-to-end FPS per board over time">',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>',
    ]
    for i in range(5):
        v = y1 * i / 4
        parts.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.0f}</text>')
        parts.append(f'<line x1="{left}" y1="{sy(v):.1f}" x2="{left + pw}" y2="{sy(v):.1f}" stroke="#eee"/>')
    parts.append(
        f'<text x="14" y="{top + ph / 2}" transform="rotate(-90 14 {top + ph / 2})" font-size="12">'
        "end-to-end FPS</text>"
    )
    for t in (x0, x1):
        label = time.strftime("%m-%d %H:%M", time.localtime(t))
        parts.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="11">{label}</text>')
    for target in sorted(targets):
        parts.append(
            f'<line class="target" x1="{left}" y1="{sy(target):.1f}" x2="{left + pw}" y2="{sy(target):.1f}"'
            f' stroke="#d62728" stroke-dasharray="6 4"/>'
            f'<text x="{left + pw + 4}" y="{sy(target) + 4:.1f}" font-size="11" fill="#d62728">target {target:g}</text>'
        )
    for i, s in enumerate(series):
        pts = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in s.points)
        if len(s.points) == 1:  # a single run: a short flat segment so the line has extent
            t, v = s.points[0]
            pts = f"{sx(t) - 4:.1f},{sy(v):.1f} {sx(t) + 4:.1f},{sy(v):.1f}"
        parts.append(
            f'<polyline class="series" data-board="{html.escape(s.name)}" points="{pts}" fill="none"'
            f' stroke="{s.color}" stroke-width="2"/>'
        )
        for t, v in s.points:
            parts.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="3" fill="{s.color}">'
                f"<title>{html.escape(s.name)}: {v:.1f} FPS</title></circle>"
            )
        parts.append(
            f'<text x="{left + pw + 4}" y="{top + 14 + 16 * i}" font-size="12" fill="{s.color}">'
            f"{html.escape(s.name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def stages_of(r: BoardResult) -> dict[str, float]:
    """Mean per-stage end-to-end times (ms) of the backend the verdict was made on."""
    bench = r.bench or {}
    chosen = (bench.get("verdict") or {}).get("backend")
    for res in bench.get("results", []):
        if chosen is None or res.get("backend") == chosen:
            stages = (res.get("end_to_end") or {}).get("stages") or {}
            return {k: float(v) for k, v in stages.items() if isinstance(v, (int, float))}
    return {}


def stage_bars_svg(results: Sequence[BoardResult], width: int = 760) -> str:
    """Per-board stacked bars of the end-to-end stages: where the time goes, at a glance."""
    rows = [(r.board, stages_of(r)) for r in results]
    rows = [(b, s) for b, s in rows if s]
    if not rows:
        return '<p class="empty">No per-stage timings in these results.</p>'
    names = [n for n in STAGE_ORDER if any(n in s for _, s in rows)]
    names += sorted({n for _, s in rows for n in s} - set(names))
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    left, right, bar_h, gap, top = 140, 20, 22, 10, 30
    height = top + len(rows) * (bar_h + gap) + 30
    longest = max(sum(s.values()) for _, s in rows) or 1.0
    pw = width - left - right
    parts = [
        f'<svg class="plot" id="stage-plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="Per-stage time per board">'
    ]
    x = left
    for n in names:  # legend
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colors[n]}"/>')
        parts.append(f'<text x="{x + 16}" y="16" font-size="11">{html.escape(n)}</text>')
        x += 24 + 7 * len(n)
    for i, (board, stages) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="12">{html.escape(board)}</text>')
        x0 = float(left)
        for n in names:
            ms = stages.get(n, 0.0)
            w = ms / longest * pw
            if w <= 0:
                continue
            parts.append(
                f'<rect class="stage" x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colors[n]}">'
                f"<title>{html.escape(board)} {html.escape(n)}: {ms:.2f} ms</title></rect>"
            )
            x0 += w
        parts.append(
            f'<text x="{min(x0 + 4, width - 60):.1f}" y="{y + 15}" font-size="11">{sum(stages.values()):.2f} ms</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    results: Sequence[BoardResult],
    runs: Sequence[Run],
    regressions: dict[tuple[int, str], float],
    title: str = "tx2setup verify report",
    links: dict[str, list[tuple[str, str]]] | None = None,
    generated: str | None = None,
) -> str:
    """The report: fleet overview first, then a section per board, then the fleet's history.
    `links` are per board (label, href) pairs: logs, the benchmark JSON, a profile trace."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    # tx2setup/templates is the top-level templates/ folder (a link in a checkout, a copy in the wheel)
    env = Environment(loader=PackageLoader("tx2setup", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.globals["anchor"] = anchor
    latest = latest_per_board(results)
    template = env.get_template("report.html.j2")
    page = template.render(
        title=title,
        generated=generated or time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        overview=overview(latest, regressions),
        columns=(*TABLE_COLUMNS[:-1], "slowest stage", TABLE_COLUMNS[-1], "run", "finished"),
        rows=_latest_rows(latest, regressions),
        boards=board_sections(latest, results, regressions, links or {}),
        history=_history_rows(results, regressions),
        history_columns=("finished", "run", *TABLE_COLUMNS),
        runs=runs,
        fps_plot=fps_plot_svg(results),
        stage_plot=stage_bars_svg(latest),
        n_pass=sum(r.verdict == "PASS" for r in latest),
        n_total=len(latest),
    )
    return _well_formed(page)


def _latest_rows(latest: Sequence[BoardResult], regressions: dict[tuple[int, str], float]) -> list[dict[str, Any]]:
    rows = []
    for r, cells in zip(latest, table_rows(latest), strict=True):
        stages = stages_of(r)
        slowest = max(stages, key=lambda k: stages[k]) if stages else None
        bottleneck = f"{slowest} {stages[slowest]:.2f} ms" if slowest else "-"
        rows.append(
            {
                "cells": (*cells[:-1], bottleneck, cells[-1], str(r.run_id), _when(r.finished_at)),
                "verdict": r.verdict,
                "regression": regressions.get((r.run_id or 0, r.board)),
                "reason": r.reason,
                "conditions": r.conditions,
            }
        )
    return rows


def _history_rows(results: Sequence[BoardResult], regressions: dict[tuple[int, str], float]) -> list[dict[str, Any]]:
    return [
        {
            "cells": (_when(r.finished_at), str(r.run_id), *table_rows([r])[0]),
            "verdict": r.verdict,
            "regression": regressions.get((r.run_id or 0, r.board)),
        }
        for r in sorted(results, key=lambda x: x.finished_at, reverse=True)
    ]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def write_text(path: str | Path, text: str) -> Path:
    """Write atomically: a reader never sees a half-written report."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p


# -- per-board sections -------------------------------------------------------------------
# Telemetry fields the per-board plot draws, grouped by unit: (label, unit, fields).
# Field names are the benchmark's (tx2setup/bench/telemetry.py: tegrastats, nvidia-smi, /proc).
TELEMETRY_PANELS = (
    ("load", "%", ("cpu_util_pct", "gpu_util_pct")),
    ("temperature", "°C", ("gpu_temp_c",)),
    ("power", "W", ("power_w",)),
)


def telemetry_windows(r: BoardResult) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """The benchmark's telemetry in run order: per backend its inference window, then each
    end-to-end pipeline's window. Each is {field: {min, mean, max}} (docs/bench.md, TELEMETRY):
    the benchmark keeps summaries per window, so the plot is one point (mean, min-max) each."""
    out: list[tuple[str, dict[str, dict[str, float]]]] = []
    for res in (r.bench or {}).get("results", []):
        backend = str(res.get("backend", "?"))
        windows = [("inference", (res.get("inference") or {}).get("telemetry"))]
        pipelines = res.get("end_to_end_pipelines") or {}
        if isinstance(pipelines, dict) and pipelines:
            windows += [(f"e2e {name}", (e2e or {}).get("telemetry")) for name, e2e in pipelines.items()]
        elif res.get("end_to_end"):
            windows.append(("e2e", (res.get("end_to_end") or {}).get("telemetry")))
        for label, tel in windows:
            fields = (tel or {}).get("fields") or {}
            if fields:
                out.append((f"{backend} {label}", fields))
    return out


def _panel_svg(
    title: str, unit: str, fields: Sequence[str], windows: Sequence[tuple[str, dict[str, dict[str, float]]]]
) -> str:
    """One telemetry panel: per field, the mean of each window joined by a line, the window's
    min-max as a whisker. Empty when the board reported none of these fields."""
    present = [f for f in fields if any(f in w for _, w in windows)]
    if not present:
        return ""
    width, height, left, right, top, bottom = 360, 150, 44, 10, 22, 24
    pw, ph = width - left - right, height - top - bottom
    values = [w[f][k] for f in present for _, w in windows if f in w for k in ("min", "max")]
    lo = min(0.0, min(values))
    hi = max(values) * 1.1 or 1.0
    if unit == "%":
        lo, hi = 0.0, max(100.0, hi)

    def sx(i: int) -> float:
        return left + (i + 0.5) * pw / len(windows)

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo or 1.0) * ph

    parts = [
        f'<svg class="board-plot telemetry" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)} during the benchmark">',
        f'<text x="{left}" y="14" font-size="12" font-weight="bold">{html.escape(title)} ({html.escape(unit)})</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>',
        f'<text x="{left - 4}" y="{sy(hi) + 4:.1f}" text-anchor="end" font-size="10">{hi:.0f}</text>',
        f'<text x="{left - 4}" y="{sy(lo) + 4:.1f}" text-anchor="end" font-size="10">{lo:.0f}</text>',
    ]
    for n, f in enumerate(present):
        color = PALETTE[(n + 1) % len(PALETTE)]
        pts = [(i, w[f]) for i, (_, w) in enumerate(windows) if f in w]
        line = " ".join(f"{sx(i):.1f},{sy(s['mean']):.1f}" for i, s in pts)
        parts.append(f'<polyline class="tele" data-field="{f}" points="{line}" fill="none" stroke="{color}"/>')
        for i, s in pts:
            label = f"{windows[i][0]} {f}: mean {s['mean']:.1f}, {s['min']:.1f} to {s['max']:.1f} {unit}"
            parts.append(
                f'<line x1="{sx(i):.1f}" y1="{sy(s["min"]):.1f}" x2="{sx(i):.1f}" y2="{sy(s["max"]):.1f}"'
                f' stroke="{color}" stroke-opacity="0.5" stroke-width="3"/>'
                f'<circle class="tele-point" cx="{sx(i):.1f}" cy="{sy(s["mean"]):.1f}" r="3" fill="{color}">'
                f"<title>{html.escape(label)}</title></circle>"
            )
        parts.append(
            f'<text x="{left + pw - 4}" y="{top + 12 + 12 * n}" text-anchor="end" font-size="10"'
            f' fill="{color}">{html.escape(f)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def telemetry_svg(r: BoardResult) -> str:
    """Load, temperature and power panels over the benchmark's windows (where reported)."""
    windows = telemetry_windows(r)
    # every temperature sensor the board names (tegrastats: CPU@, GPU@, Tboard@, tj@ ...)
    temps = sorted({f for _, w in windows for f in w if f.startswith("temp_") and f.endswith("_c")})
    specs = [(t, u, (*f, *temps[:4]) if t == "temperature" else f) for t, u, f in TELEMETRY_PANELS]
    panels = [_panel_svg(t, u, f, windows) for t, u, f in specs] if windows else []
    panels = [p for p in panels if p]
    if not panels:
        return '<p class="empty">No telemetry in this result (the benchmark ran with --no-telemetry).</p>'
    order = " · ".join(html.escape(label) for label, _ in windows)
    return "".join(panels) + f'<p class="note">Benchmark windows, left to right: {order}.</p>'


def board_stages_svg(r: BoardResult, width: int = 720) -> str:
    """One stacked bar of the board's end-to-end stages, labelled with each stage's ms."""
    stages = stages_of(r)
    if not stages:
        return '<p class="empty">No per-stage timings in this result.</p>'
    names = [n for n in STAGE_ORDER if n in stages] + sorted(set(stages) - set(STAGE_ORDER))
    total = sum(stages.values()) or 1.0
    left, bar_h, top = 10, 26, 6
    pw = width - 2 * left
    parts = [
        f'<svg class="board-plot stages" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + bar_h + 40}"'
        f' viewBox="0 0 {width} {top + bar_h + 40}" role="img" aria-label="Per-stage time of {html.escape(r.board)}">'
    ]
    x = float(left)
    for i, n in enumerate(names):
        w = stages[n] / total * pw
        color = PALETTE[STAGE_ORDER.index(n) % len(PALETTE)] if n in STAGE_ORDER else PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect class="bstage" x="{x:.1f}" y="{top}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{html.escape(r.board)} {html.escape(n)}: {stages[n]:.2f} ms</title></rect>"
        )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{top + bar_h + 14 + 12 * (i % 2)}" text-anchor="middle" font-size="10">'
            f"{html.escape(n)} {stages[n]:.1f}</text>"
        )
        x += w
    parts.append("</svg>")
    return "".join(parts)


def board_fps_history_svg(board: str, results: Sequence[BoardResult], width: int = 360, height: int = 150) -> str:
    """This board's end-to-end and inference-only FPS over its runs, target dashed."""
    mine = sorted((r for r in results if r.board == board and r.e2e_fps is not None), key=lambda x: x.finished_at)
    if not mine:
        return '<p class="empty">No FPS history for this board.</p>'
    left, right, top, bottom = 44, 10, 22, 24
    pw, ph = width - left - right, height - top - bottom
    hi = max([float(r.e2e_fps or 0) for r in mine] + [r.target_fps for r in mine]) * 1.15 or 1.0

    def sx(i: int) -> float:
        return left + (i + 0.5) * pw / len(mine)

    def sy(v: float) -> float:
        return top + ph - v / hi * ph

    target = mine[-1].target_fps
    e2e = " ".join(f"{sx(i):.1f},{sy(float(r.e2e_fps or 0)):.1f}" for i, r in enumerate(mine))
    if len(mine) == 1:  # one run: a short segment, so the line has extent
        y = sy(float(mine[0].e2e_fps or 0))
        e2e = f"{sx(0) - 4:.1f},{y:.1f} {sx(0) + 4:.1f},{y:.1f}"
    parts = [
        f'<svg class="board-plot fps-history" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="FPS history of {html.escape(board)}">',
        f'<text x="{left}" y="14" font-size="12" font-weight="bold">end-to-end FPS per run</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>',
        f'<text x="{left - 4}" y="{sy(hi) + 4:.1f}" text-anchor="end" font-size="10">{hi:.0f}</text>',
        f'<text x="{left - 4}" y="{top + ph + 4}" text-anchor="end" font-size="10">0</text>',
        f'<line class="target" x1="{left}" y1="{sy(target):.1f}" x2="{left + pw}" y2="{sy(target):.1f}"'
        f' stroke="#d62728" stroke-dasharray="6 4"><title>target {target:g} FPS</title></line>',
        f'<polyline class="hist" data-board="{html.escape(board)}" points="{e2e}" fill="none" stroke="{PALETTE[0]}"'
        ' stroke-width="2"/>',
    ]
    for i, r in enumerate(mine):
        fill = "#1a7f37" if r.verdict == "PASS" else "#b42318"
        parts.append(
            f'<circle class="hist-point" cx="{sx(i):.1f}" cy="{sy(float(r.e2e_fps or 0)):.1f}" r="3.5" fill="{fill}">'
            f"<title>run {r.run_id}: {float(r.e2e_fps or 0):.1f} FPS, {html.escape(r.verdict)}</title></circle>"
        )
        parts.append(f'<text x="{sx(i):.1f}" y="{top + ph + 14}" text-anchor="middle" font-size="10">{r.run_id}</text>')
    parts.append("</svg>")
    return "".join(parts)


def anchor(board: str) -> str:
    """The id of a board's section: its name with anything but [A-Za-z0-9-_] made '_'."""
    return "board-" + "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in board)


@dataclass(frozen=True)
class Overview:
    """What a lab lead reads first: how many pass, the worst margin, who regressed."""

    passing: int
    total: int
    worst_board: str | None
    worst_margin_pct: float | None
    regressed: tuple[tuple[str, float], ...]  # (board, FPS drop %) of each board's latest run


def overview(latest: Sequence[BoardResult], regressions: dict[tuple[int, str], float]) -> Overview:
    margins = [(r.margin_pct, r.board) for r in latest if r.margin_pct is not None]
    worst = min(margins) if margins else None
    regressed = tuple(
        (r.board, regressions[(r.run_id or 0, r.board)]) for r in latest if (r.run_id or 0, r.board) in regressions
    )
    return Overview(
        passing=sum(r.verdict == "PASS" for r in latest),
        total=len(latest),
        worst_board=worst[1] if worst else None,
        worst_margin_pct=worst[0] if worst else None,
        regressed=regressed,
    )


def board_sections(
    latest: Sequence[BoardResult],
    results: Sequence[BoardResult],
    regressions: dict[tuple[int, str], float],
    links: dict[str, list[tuple[str, str]]],
) -> list[dict[str, Any]]:
    """The template's per-board sections, each with its plots already rendered as SVG."""
    return [
        {
            "name": r.board,
            "anchor": anchor(r.board),
            "verdict": r.verdict,
            "headline": f"{fmt(r.e2e_fps)} FPS end-to-end against {r.target_fps:g} ({verdict_text(r)})",
            "facts": (r.module, r.l4t or "-", r.power_mode or "-", f"run {r.run_id}", _when(r.finished_at)),
            "reason": r.reason,
            "regression": regressions.get((r.run_id or 0, r.board)),
            "stages": board_stages_svg(r),
            "telemetry": telemetry_svg(r),
            "history": board_fps_history_svg(r.board, results),
            "links": links.get(r.board, []),
            "failed_checks": [(c.name, c.message) for c in r.checks if c.outcome in ("failed", "error")],
        }
        for r in latest
    ]


# -- per-board files the report links to ----------------------------------------------------
def artifact_dir(db: Path, run_id: int | None) -> Path:
    """Where `verify` keeps one run's per-board files: beside the history database, so
    two databases (a lab's and a test's) never share a run's folder."""
    return db.parent / f"{db.stem}-runs" / f"run-{run_id}"


def newest_provision_log(board: str) -> Path | None:
    """The board's log of the newest `tx2setup provision` run (tx2setup/provision.py writes
    <cache>/runs/provision-<stamp>-<pid>/logs/<board>.log)."""
    from tx2setup.cache import cache_root

    logs = sorted(cache_root().glob(f"runs/provision-*/logs/{board}.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def board_links(latest: Sequence[BoardResult], db: Path) -> dict[str, list[tuple[str, str]]]:
    """(label, file URI) per board, for the files that exist: the verify log and benchmark
    JSON of its latest run, a profile trace if one was kept, its newest provision log."""
    links: dict[str, list[tuple[str, str]]] = {}
    for r in latest:
        run_dir = artifact_dir(db, r.run_id)
        found = [
            (f"verify log (run {r.run_id})", run_dir / f"{r.board}.log"),
            ("benchmark JSON", run_dir / f"{r.board}.bench.json"),
            ("profile trace (chrome://tracing, ui.perfetto.dev)", run_dir / f"{r.board}.trace.json"),
            ("provision log", newest_provision_log(r.board)),
        ]
        links[r.board] = [(label, p.resolve().as_uri()) for label, p in found if p is not None and p.is_file()]
    return links


def write_board_files(
    db: Path, run_id: int | None, results: Sequence[BoardResult], lines: dict[str, list[str]]
) -> None:
    """A verify run's per-board log (its progress lines, checks and verdict) and benchmark JSON."""
    import json

    run_dir = artifact_dir(db, run_id)
    for r in results:
        log = [*lines.get(r.board, [])]
        log += [f"check {c.name}: {c.outcome}" + (f": {c.message}" if c.message else "") for c in r.checks]
        log.append(f"verdict: {verdict_text(r)}" + (f": {r.reason}" if r.reason else ""))
        write_text(run_dir / f"{r.board}.log", "\n".join(log) + "\n")
        if r.bench:
            write_text(run_dir / f"{r.board}.bench.json", json.dumps(r.bench, indent=1, default=str))
