"""Report renderers: JUnit parses, the HTML opens in real headless Chromium and its plots draw."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tx2setup import report
from tx2setup.results import BoardResult, CheckResult, History


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


BROWSER_REQUIRED_ENV = ("CI", "TX2SETUP_FULL_SUITE")

# Runs in the page once it has loaded: every plot shape with its rendered geometry.
SHAPES_SCRIPT = """
var shapes = [];
document.querySelectorAll("svg.plot polyline, svg.plot rect.stage").forEach(function (el) {
  var box = el.getBBox();
  var title = el.querySelector("title");
  shapes.push({tag: el.tagName, board: el.getAttribute("data-board"),
               title: title ? title.textContent : "", width: box.width, height: box.height});
});
return {shapes: shapes, drawn: document.body.getAttribute("data-plots-drawn"),
        summary: (document.getElementById("summary") || {}).textContent || "",
        text: document.body.innerText};
"""


def browser() -> tuple[str, str]:
    """(chromium, chromedriver), or skip when absent; in the project's suite (CI or
    TX2SETUP_FULL_SUITE set) a missing browser fails instead, so the check cannot vanish."""
    found = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if found[0] and found[1]:
        return found[0], found[1]
    why = "chromium and chromium-driver are needed (scripts/setup.sh installs them)"
    if any(os.environ.get(v) for v in BROWSER_REQUIRED_ENV):
        pytest.fail(why)
    pytest.skip(why)


def page_in_headless_chromium(html_file: Path, profile: Path) -> dict[str, Any]:
    """Open the file in headless Chromium through chromedriver (WebDriver over HTTP, no
    client library) and return SHAPES_SCRIPT's result. Navigation returns once the page's
    load event has run."""
    chromium, chromedriver = browser()
    proc = subprocess.Popen([chromedriver, "--port=0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:  # blocks until chromedriver says where it listens
            m = re.search(r"started successfully on port (\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None, "chromedriver did not start"

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                data=None if body is None else json.dumps(body).encode(),
                method=method,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - local chromedriver
                return json.load(resp)["value"]

        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}"]  # fmt: skip
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": chromium, "args": args}}}}
        session = call("POST", "/session", caps)["sessionId"]
        try:
            call("POST", f"/session/{session}/url", {"url": html_file.as_uri()})
            result: dict[str, Any] = call(
                "POST", f"/session/{session}/execute/sync", {"script": SHAPES_SCRIPT, "args": []}
            )
            return result
        finally:
            call("DELETE", f"/session/{session}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_html_report_renders_in_headless_chromium_and_the_plots_draw(tmp_path: Path) -> None:
    flagged = {(2, "b1"): 33.3}
    html_path = report.write_text(tmp_path / "report.html", report.render_html(HISTORY, [], flagged))
    page = page_in_headless_chromium(html_path, tmp_path / "profile")
    lines = [s for s in page["shapes"] if s["tag"] == "polyline"]
    bars = [s for s in page["shapes"] if s["tag"] == "rect"]
    # one FPS line per board, each with a real extent
    assert sorted(s["board"] for s in lines) == ["b1", "b2"]
    assert all(s["width"] > 0 for s in lines)
    # 2 boards x 6 stages, each bar drawn, and their widths in proportion to the times
    assert len(bars) == 12 and all(s["width"] > 0 and s["height"] > 0 for s in bars)
    width = {s["title"]: s["width"] for s in bars}
    assert width["b1 inference: 10.00 ms"] == pytest.approx(2 * width["b1 preprocess: 5.00 ms"], rel=0.02)
    assert width["b2 capture: 1.00 ms"] == pytest.approx(10 * width["b2 d2h: 0.10 ms"], rel=0.05)
    assert page["drawn"] == "14"  # the page's own self-check agrees
    assert "2/2 boards pass" in page["summary"]
    assert "-33.3% FPS" in page["text"]


def test_latest_result_per_board_survives_a_limited_run() -> None:
    # run 3 verified b1 only (verify --limit b1): b2's last word is still run 2
    history = [*HISTORY, board("b1", 25.0, 3, 3000.0)]
    latest = report.latest_per_board(history)
    assert [(r.board, r.run_id) for r in latest] == [("b1", 3), ("b2", 2)]
    html = report.render_html(history, [], {})
    assert "2/2</b> boards pass" in html
    root = ET.fromstring(report.junit_xml(latest))
    assert sorted(s.get("name") or "" for s in root.iter("testsuite")) == ["b1", "b2"]


def test_table_has_checks_passed_and_failed_columns() -> None:
    (row,) = report.table_rows([board("b1", 30.0, 1, 1.0)])
    cells = dict(zip(report.TABLE_COLUMNS, row, strict=True))
    assert (cells["checks passed"], cells["checks failed"]) == ("1", "1")


def test_report_flags_a_regression_whose_previous_pass_is_older_than_since(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    db = tmp_path / "h.db"
    now = time.time()
    with History(db) as h:
        for fps, age_s, name in ((100.0, 3 * 86400, "b1"), (50.0, 60, "b1"), (30.0, 60, "b2")):
            run = h.start_run("lab.ini", "0")
            h.record_board(run, replace(board(name, fps, run, now - age_s), run_id=None))
            h.finish_run(run)
    out = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    res = cli("report", "--db", str(db), "--since", "1d", "--board", "b1", "--json", str(out), "--junit", str(junit))
    assert res.code == 0, res.err
    doc = json.loads(out.read_text())
    assert [r["e2e_fps"] for r in doc["results"]] == [50.0]  # the view is filtered
    assert [(run, b) for run, b, _ in doc["regressions"]] == [(2, "b1")]  # the 3-day-old pass still counts
    assert doc["regressions"][0][2] == pytest.approx(50.0)
    assert "regression: b1 in run 2: end-to-end FPS down 50.0%" in res.out
    assert [s.get("name") for s in ET.fromstring(junit.read_text()).iter("testsuite")] == ["b1"]
