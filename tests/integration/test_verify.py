"""`tx2setup verify`, `report` and `status` against provisioned emulated boards.

Real testinfra over real SSH, real torch running the benchmark on the boards, a real
SQLite history, the HTML report opened in real headless Chromium. The tests run in file
order on the session's two boards; the one that breaks a board repairs it at the end.
"""

from __future__ import annotations

import importlib.util
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tx2setup import provision
from tx2setup.results import History

pytestmark = pytest.mark.integration

FAST = ("--duration", "1")  # 1 s minimum measurement (and at least 100 iterations) per stage


@pytest.fixture(scope="module")
def fleet_ready(sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The session's boards, provisioned (a no-op when test_provision already did it)."""
    result = provision.run(sim_fleet.inventory, forks=8)
    assert result.ok, [(h.name, h.failed_task, h.message) for h in result.bad_hosts]
    out = tmp_path_factory.mktemp("verify")
    return {"fleet": sim_fleet, "inventory": str(sim_fleet.inventory), "db": str(out / "history.db"), "out": out}


def verify_cli(cli: Callable[..., Any], env: dict[str, Any], *extra: str) -> Any:
    return cli("verify", "-i", env["inventory"], "--db", env["db"], *FAST, *extra)


def test_passing_run_reports_real_fps_per_board(cli: Callable[..., Any], fleet_ready: dict[str, Any]) -> None:
    out = fleet_ready["out"]
    res = verify_cli(
        cli, fleet_ready, "--target-fps", "1", "--json", str(out / "run1.json"), "--junit", str(out / "run1.xml")
    )
    assert res.code == 0, res.out + res.err
    doc = json.loads((out / "run1.json").read_text())
    boards = {b["board"]: b for b in doc["boards"]}
    assert set(boards) == {b.name for b in fleet_ready["fleet"].boards}
    for name, b in boards.items():
        assert b["verdict"] == "PASS", (name, b["reason"])
        assert b["checks_failed"] == 0 and b["checks_passed"] >= 10, b["checks"]
        # figures real torch produced on the board, with both measurements present
        assert b["e2e_fps"] > 1 and b["inference_fps"] > b["e2e_fps"] * 0.5
        assert b["bench"]["conditions"], "the benchmark recorded no conditions"
        assert b["margin_pct"] == pytest.approx((b["e2e_fps"] - 1) / 1 * 100, rel=1e-6)
        # L4T and power mode as the benchmark measured them on the board
        assert b["l4t"] == b["bench"]["conditions"]["l4t"]
        assert b["power_mode"].endswith(b["bench"]["conditions"]["nvpmodel"]["name"])
        checks = {c["name"]: c for c in b["checks"]}
        assert "containers cannot swapon" in checks["test_swap"]["message"]  # the swap file was checked
    root = ET.fromstring((out / "run1.xml").read_text())
    assert {s.get("name") for s in root.iter("testsuite")} == set(boards)
    assert all(s.get("failures") == "0" and s.get("errors") == "0" for s in root.iter("testsuite"))


def test_target_out_of_reach_fails_with_the_margin(cli: Callable[..., Any], fleet_ready: dict[str, Any]) -> None:
    tx2 = fleet_ready["fleet"].board(module="tx2").name
    res = verify_cli(cli, fleet_ready, "--limit", tx2, "--target-fps", "100000")
    assert res.code == 1
    assert "did not pass" in res.err
    with History(fleet_ready["db"]) as h:
        last = h.last_result(tx2)
    assert last is not None and last.verdict == "FAIL"
    assert last.margin_pct is not None and -100 < last.margin_pct < -99
    assert "below the target 100000" in last.reason


def test_history_flags_a_regression(cli: Callable[..., Any], fleet_ready: dict[str, Any]) -> None:
    # the camera now delivers 3 frames/s: end to end cannot go faster, a real drop
    res = verify_cli(cli, fleet_ready, "--target-fps", "1", "--source", "synthetic:3")
    assert res.code == 0, res.out + res.err
    json_path = fleet_ready["out"] / "report.json"
    rep = cli("report", "--db", fleet_ready["db"], "--json", str(json_path))
    assert rep.code == 0
    doc = json.loads(json_path.read_text())
    with History(fleet_ready["db"]) as h:
        assert [r.status for r in h.runs()] == ["complete"] * 3
        last_run = h.runs()[-1].id
    flagged = {(run, board): drop for run, board, drop in doc["regressions"]}
    for b in fleet_ready["fleet"].boards:
        assert flagged.get((last_run, b.name), 0) > 50, f"{b.name}: no regression flagged: {flagged}"
    for b in fleet_ready["fleet"].boards:
        assert f"regression: {b.name} in run {last_run}: end-to-end FPS down" in rep.out


def _browser_helpers() -> Any:
    """tests/unit/test_report.py's headless Chromium driver (one copy of it)."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_report.py"
    spec = importlib.util.spec_from_file_location("tx2setup_report_browser", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_html_report_plots_draw_in_chromium(
    cli: Callable[..., Any], fleet_ready: dict[str, Any], tmp_path: Path
) -> None:
    html_path = fleet_ready["out"] / "report.html"
    assert cli("report", "--db", fleet_ready["db"], "--html", str(html_path)).code == 0
    page = _browser_helpers().page_in_headless_chromium(html_path, tmp_path / "profile")
    names = sorted(b.name for b in fleet_ready["fleet"].boards)
    lines = [s for s in page["shapes"] if s["tag"] == "polyline"]
    bars = [s for s in page["shapes"] if s["tag"] == "rect"]
    # one FPS line per board, with a real extent, over the runs so far
    assert sorted(s["board"] for s in lines) == names and all(s["width"] > 0 for s in lines)
    # per board, drawn stage bars for at least capture, stack, preprocess and inference
    for name in names:
        drawn = {s["title"].split(":")[0].split(" ", 1)[1] for s in bars if s["title"].startswith(name + " ")}
        assert {"capture", "preprocess", "inference"} <= drawn, (name, drawn)
    assert all(s["width"] > 0 and s["height"] > 0 for s in bars)
    assert f"/{len(names)} boards pass" in page["summary"]


def test_status_shows_boards_and_a_stopped_one_within_its_timeout(
    cli: Callable[..., Any], fleet_ready: dict[str, Any]
) -> None:
    fleet = fleet_ready["fleet"]
    victim = fleet.board(module="xavier-nx")
    fleet.fleet.stop_board(victim.name)
    try:
        t0 = time.monotonic()
        res = cli("status", "-i", fleet_ready["inventory"], "--db", fleet_ready["db"], "--timeout", "3", "--json")
        elapsed = time.monotonic() - t0
        # verify names the unreachable board at once (a refused connection is not retried)
        lost = verify_cli(cli, fleet_ready, "--limit", victim.name, "--json", str(fleet_ready["out"] / "lost.json"))
    finally:
        fleet.fleet.start_board(victim.name)
    assert res.code == 4  # one board unreachable
    assert elapsed < 3 + 5, f"status took {elapsed:.1f} s with a 3 s timeout"
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert rows[victim.name]["reachable"] is False and rows[victim.name]["error"]
    tx2 = rows[fleet.board(module="tx2").name]
    assert tx2["reachable"] and tx2["l4t"] == "32.7.4" and tx2["power_mode"].endswith("MAXP_CORE_ARM")
    assert tx2["gpu_load_pct"] is not None and tx2["gpu_temp_c"] is not None  # from the tegrastats stand-in
    assert tx2["last_verify"].startswith("PASS")
    assert lost.code == 1, lost.out + lost.err
    (row,) = json.loads((fleet_ready["out"] / "lost.json").read_text())["boards"]
    assert row["verdict"] == "ERROR" and "unreachable" in row["reason"] and "refused" in row["reason"], row["reason"]


def test_broken_board_fails_its_checks_and_the_other_passes(
    cli: Callable[..., Any], fleet_ready: dict[str, Any]
) -> None:
    fleet = fleet_ready["fleet"]
    broken = fleet.board(module="tx2")
    healthy = fleet.board(module="xavier-nx")
    rc, _, err = fleet.run(broken, "dpkg --force-depends -r tensorrt")
    assert rc == 0, err
    try:
        res = verify_cli(cli, fleet_ready, "--target-fps", "1")
        assert res.code == 1
        with History(fleet_ready["db"]) as h:
            bad = h.last_result(broken.name)
            good = h.last_result(healthy.name)
        assert bad is not None and good is not None
        assert bad.verdict == "FAIL" and good.verdict == "PASS"
        failed = [c for c in bad.checks if c.outcome == "failed"]
        assert [c.name for c in failed] == ["test_cuda_cudnn_tensorrt_at_matrix_versions"]
        assert "tensorrt is not installed" in failed[0].message
    finally:
        repaired = provision.run(fleet_ready["inventory"], limit=broken.name)
        assert repaired.ok and repaired.hosts[broken.name].changed > 0
