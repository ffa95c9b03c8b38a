"""Report renderers: JUnit parses, the HTML opens in real headless Chromium and its plots draw."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tx2setup import report
from tx2setup.results import BoardResult, CheckResult


def board(name: str, fps: float, run_id: int, t: float, target: float = 15.0, with_stages: bool = True) -> BoardResult:
    stages = {"capture": 1.0, "preprocess": 5.0, "h2d": 0.5, "inference": 10.0, "d2h": 0.1, "postprocess": 0.2}
    bench = {
        "verdict": {"backend": "torch-fp32"},
        "results": [{"backend": "torch-fp32", "end_to_end": {"stages": stages}}],
    }
    return BoardResult(
        board=name,
        module="tx2",
        l4t="32.7.4",
        power_mode="0 MAXN",
        checks=(
            CheckResult("test_l4t_matches_plan", "passed"),
            CheckResult("test_torch_version", "failed", "1.9 != 1.10"),
        ),
        inference_fps=fps * 3,
        e2e_fps=fps,
        p99_ms=80.0,
        target_fps=target,
        verdict="PASS" if fps >= target else "FAIL",
        margin_pct=(fps - target) / target * 100,
        conditions={"power_mode": "MAXN"},
        bench=bench if with_stages else None,
        finished_at=t,
        run_id=run_id,
    )


HISTORY = [
    board("b1", 30.0, 1, 1000.0),
    board("b2", 12.0, 1, 1001.0),
    board("b1", 20.0, 2, 2000.0),
    board("b2", 16.0, 2, 2001.0),
]


def test_junit_parses_and_counts_failures() -> None:
    root = ET.fromstring(report.junit_xml(HISTORY[2:]))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"b1", "b2"}
    for s in suites.values():
        assert s.get("tests") == "3" and s.get("failures") == "1"  # the torch check
    b2_bench = next(c for c in suites["b2"].iter("testcase") if c.get("name") == "acceptance_benchmark")
    assert b2_bench.find("failure") is None and "16.0 FPS" in (b2_bench.findtext("system-out") or "")
    fail = report.junit_xml([board("b3", 5.0, 3, 3000.0)])
    b3 = ET.fromstring(fail).find("testsuite")
    assert b3 is not None and b3.get("failures") == "2"


def test_stage_bars_follow_the_chosen_backend() -> None:
    assert report.stages_of(HISTORY[0])["inference"] == 10.0
    assert report.stages_of(board("x", 1.0, 1, 1.0, with_stages=False)) == {}
    svg = report.stage_bars_svg(HISTORY[:2])
    assert svg.count('class="stage"') == 12


def test_fps_plot_has_one_line_per_board_and_the_target() -> None:
    svg = report.fps_plot_svg(HISTORY)
    assert svg.count("<polyline") == 2 and 'class="target"' in svg
    assert "No benchmark" in report.fps_plot_svg([])


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (scripts/setup.sh installs it)")
def test_html_report_renders_in_headless_chromium_and_the_plots_draw(tmp_path: Path) -> None:
    flagged = {(2, "b1"): 33.3}
    html_path = report.write_text(tmp_path / "report.html", report.render_html(HISTORY, [], flagged))
    proc = subprocess.run(
        [
            str(chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            html_path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    dom = proc.stdout
    m = re.search(r'data-plots-drawn="(\d+)"', dom)
    assert m is not None, "the page's load handler did not run"
    # 2 FPS lines + 2 boards x 6 stages in the latest run, each with a real rendered size
    assert int(m.group(1)) == 14
    assert "1/2</b> boards pass" not in dom and "2/2</b> boards pass" in dom
    assert "-33.3% FPS" in dom
