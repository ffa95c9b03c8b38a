"""Report renderers: JUnit parses, the HTML opens in real headless Chromium and its plots draw."""

from __future__ import annotations

import base64
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


def telemetry(fps: float, warm: float) -> dict[str, Any]:
    """A TELEMETRY block as the benchmark writes it (docs/bench.md): {field: {min, mean, max}}
    from tegrastats' fields (tx2setup/bench/telemetry.py parse_tegrastats)."""

    def span(mean: float, half: float) -> dict[str, float]:
        return {"min": mean - half, "mean": mean, "max": mean + half}

    return {
        "source": "tegrastats",
        "samples": 25,
        "interval_ms": 200,
        "fields": {
            "cpu_util_pct": span(40.0 + warm, 8.0),
            "gpu_util_pct": span(min(95.0, 2 * fps + warm), 4.0),
            "gpu_temp_c": span(45.0 + warm, 1.5),
            "temp_cpu_c": span(43.0 + warm, 1.0),
            "power_w": span(6.0 + fps / 10, 0.6),
        },
    }


def board(name: str, fps: float, run_id: int, t: float, target: float = 15.0, with_stages: bool = True) -> BoardResult:
    stages = {"capture": 1.0, "preprocess": 5.0, "h2d": 0.5, "inference": 10.0, "d2h": 0.1, "postprocess": 0.2}
    bench = {
        "verdict": {"backend": "torch-fp32"},
        "results": [
            {
                "backend": "torch-fp32",
                "inference": {"telemetry": telemetry(fps, 0.0)},
                "end_to_end": {"stages": stages, "telemetry": telemetry(fps, 5.0)},
                "end_to_end_pipelines": {"optimized": {"stages": stages, "telemetry": telemetry(fps, 5.0)}},
            }
        ],
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


def page_in_headless_chromium(
    html_file: Path,
    profile: Path,
    script: str = SHAPES_SCRIPT,
    screenshot: Path | None = None,
    baseline: Path | None = None,
) -> Any:
    """Open the file in headless Chromium through chromedriver (WebDriver over HTTP, no
    client library) and return the script's result (SHAPES_SCRIPT's by default). Navigation
    returns once the page's load event has run. With `screenshot`, the whole page is saved
    there as PNG, in a 1200 px wide window; with `baseline` too, the result is instead
    Chromium's own comparison of the two images (COMPARE_SCRIPT)."""
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
            result = call("POST", f"/session/{session}/execute/sync", {"script": script, "args": []})
            if screenshot is not None:
                _screenshot(call, session, screenshot)
            if screenshot is not None and baseline is not None and baseline.is_file():
                images = [
                    f"data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" for p in (screenshot, baseline)
                ]
                result = call("POST", f"/session/{session}/execute/async", {"script": COMPARE_SCRIPT, "args": images})
            return result
        finally:
            call("DELETE", f"/session/{session}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _screenshot(call: Callable[..., Any], session: str, dest: Path) -> None:
    """The whole page: the window is made as tall as the document, then captured."""
    call("POST", f"/session/{session}/window/rect", {"width": 1200, "height": 800})  # the width sets the height
    height = call("POST", f"/session/{session}/execute/sync", {"script": PAGE_HEIGHT, "args": []})
    call("POST", f"/session/{session}/window/rect", {"width": 1200, "height": int(height)})
    dest.write_bytes(base64.b64decode(call("GET", f"/session/{session}/screenshot")))


# the window's height less its viewport's, added so the viewport holds the whole page
PAGE_HEIGHT = "return document.documentElement.scrollHeight + (window.outerHeight - window.innerHeight);"

# Two PNGs (data: URLs) drawn on canvases; the share of pixels whose R, G or B differ by more
# than 48 levels, or the two sizes when they differ. Chromium decodes: no imaging library here.
COMPARE_SCRIPT = """
var done = arguments[arguments.length - 1];
function load(src) {
  return new Promise(function (ok) { var i = new Image(); i.onload = function () { ok(i); }; i.src = src; });
}
function pixels(img) {
  var c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
  var g = c.getContext("2d"); g.drawImage(img, 0, 0); return g.getImageData(0, 0, img.width, img.height).data;
}
Promise.all([load(arguments[0]), load(arguments[1])]).then(function (im) {
  var a = im[0], b = im[1];
  if (a.width !== b.width || a.height !== b.height) { done({sizes: [a.width, a.height, b.width, b.height]}); return; }
  var pa = pixels(a), pb = pixels(b), n = 0;
  for (var i = 0; i < pa.length; i += 4) {
    var d = Math.max(Math.abs(pa[i] - pb[i]), Math.abs(pa[i + 1] - pb[i + 1]), Math.abs(pa[i + 2] - pb[i + 2]));
    if (d > 48) { n++; }
  }
  done({sizes: [a.width, a.height], differ: n / (a.width * a.height)});
});
"""


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


# -- the report a lab lead opens first (issue 15) ---------------------------------------------
def lab_history() -> list[BoardResult]:
    """Three boards, three runs: car-tx2-01 regressed in run 3, car-nx-02 fails its target."""
    return [
        board("car-tx2-01", 19.0, 1, 1000.0),
        board("car-nx-02", 13.0, 1, 1001.0, target=30.0),
        board("car-orin-03", 60.0, 1, 1002.0, target=30.0),
        board("car-tx2-01", 18.5, 2, 2000.0),
        board("car-nx-02", 14.0, 2, 2001.0, target=30.0),
        board("car-orin-03", 61.0, 2, 2002.0, target=30.0),
        board("car-tx2-01", 15.5, 3, 3000.0),
        board("car-nx-02", 14.5, 3, 3001.0, target=30.0),
        board("car-orin-03", 62.0, 3, 3002.0, target=30.0),
    ]


def lab_report(tmp_path: Path) -> Path:
    history = lab_history()
    flagged = {(3, "car-tx2-01"): 16.2}
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    links: dict[str, list[tuple[str, str]]] = {}
    for r in report.latest_per_board(history):
        (logs / f"{r.board}.log").write_text(f"{r.board}: verify log\n")
        links[r.board] = [("verify log (run 3)", (logs / f"{r.board}.log").as_uri())]
    page = report.render_html(history, [], flagged, links=links, generated="2026-12-06 03:00:00 UTC")
    return report.write_text(tmp_path / "report.html", page)


def test_the_report_opens_with_the_fleet_overview(tmp_path: Path) -> None:
    page = lab_report(tmp_path).read_text()
    overview = page.index('id="overview"')
    assert overview < page.index('class="board ') < page.index('id="history"')
    ov = report.overview(report.latest_per_board(lab_history()), {(3, "car-tx2-01"): 16.2})
    assert (ov.passing, ov.total) == (2, 3)
    assert ov.worst_board == "car-nx-02" and ov.worst_margin_pct == pytest.approx((14.5 - 30) / 30 * 100)
    assert ov.regressed == (("car-tx2-01", 16.2),)
    cards = page[overview : page.index("</div>\n\n", overview)]
    assert "2/3" in cards and "-51.7%" in cards and 'href="#board-car-nx-02"' in cards
    assert 'href="#board-car-tx2-01"' in cards and "-16.2% FPS" in cards


def test_the_report_is_one_self_contained_file(tmp_path: Path) -> None:
    page = lab_report(tmp_path).read_text()
    # nothing is fetched: no external script, style sheet, image or font
    assert not re.search(r"<(script|img|link|iframe)[^>]*\b(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert not re.search(r"""(src|href)=["']https?:""", page)


SECTIONS_SCRIPT = """
var out = [];
document.querySelectorAll("section.board").forEach(function (sec) {
  function boxes(sel) {
    return Array.prototype.map.call(sec.querySelectorAll(sel), function (el) {
      var b = el.getBBox(); return {w: b.width, h: b.height,
        title: (el.querySelector("title") || {}).textContent || ""}; });
  }
  out.push({id: sec.id, heading: sec.querySelector("h3").textContent,
            stages: boxes("svg.stages rect.bstage"), tele_lines: boxes("svg.telemetry polyline.tele"),
            tele_points: boxes("svg.telemetry circle.tele-point"), history: boxes("svg.fps-history circle.hist-point"),
            links: Array.prototype.map.call(sec.querySelectorAll("ul.links a"), function (a) { return a.href; })});
});
return {sections: out, overview: document.getElementById("overview").innerText};
"""


def test_each_board_section_draws_stages_telemetry_history_and_links(tmp_path: Path) -> None:
    html_path = lab_report(tmp_path)
    page = page_in_headless_chromium(html_path, tmp_path / "profile", SECTIONS_SCRIPT)
    sections = {s["id"]: s for s in page["sections"]}
    assert sorted(sections) == ["board-car-nx-02", "board-car-orin-03", "board-car-tx2-01"]
    for name, sec in sections.items():
        board_name = name.removeprefix("board-")
        # six stages, drawn, in proportion: inference (10 ms) is twice preprocess (5 ms)
        widths = {s["title"].split(": ")[0].split(" ", 1)[1]: s["w"] for s in sec["stages"]}
        assert len(widths) == 6 and all(s["w"] > 0 and s["h"] > 0 for s in sec["stages"])
        assert widths["inference"] == pytest.approx(2 * widths["preprocess"], rel=0.02)
        # load (cpu, gpu), temperature (gpu, cpu) and power: a line each over the two windows
        assert len(sec["tele_lines"]) == 5 and all(s["w"] > 0 for s in sec["tele_lines"])
        assert len(sec["tele_points"]) == 10
        assert any("gpu_temp_c: mean" in s["title"] for s in sec["tele_points"])
        assert len(sec["history"]) == 3  # one point per run
        assert sec["links"] == [(tmp_path / "logs" / f"{board_name}.log").as_uri()]
    assert "regressed" in sections["board-car-tx2-01"]["heading"]
    assert "FAIL" in sections["board-car-nx-02"]["heading"]
    assert "2/3" in page["overview"] and "car-nx-02" in page["overview"]


BASELINE = Path(__file__).resolve().parents[1] / "fixtures" / "report" / "report-baseline.png"
# Up to 1% of the pixels may differ by more than 48 levels (font hinting, anti-aliasing);
# a missing section, plot or a moved layout changes far more than that.
SCREENSHOT_TOLERANCE = 0.01


def test_report_screenshot_matches_the_stored_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the report prints local times
    time.tzset()
    try:
        html_path = lab_report(tmp_path)
    finally:
        monkeypatch.undo()
        time.tzset()
    shot = tmp_path / "report.png"
    compared = page_in_headless_chromium(html_path, tmp_path / "profile", "return 0;", shot, BASELINE)
    if os.environ.get("TX2SETUP_UPDATE_SCREENSHOTS"):  # after a deliberate change of the report's look
        BASELINE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, BASELINE)
        shutil.copy(shot, Path(__file__).resolve().parents[2] / "docs" / "report.png")
        return
    assert BASELINE.is_file(), f"no baseline: run with TX2SETUP_UPDATE_SCREENSHOTS=1 to store {BASELINE}"
    assert "differ" in compared, f"screenshot {shot} and baseline {BASELINE} differ in size: {compared['sizes']}"
    assert compared["differ"] <= SCREENSHOT_TOLERANCE, (
        f"{compared['differ']:.2%} of the pixels differ from {BASELINE} (see {shot})"
    )
