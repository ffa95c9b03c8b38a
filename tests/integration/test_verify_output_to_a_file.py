"""The demo's verbs with their output sent to files, as CI and users' scripts do (issue 15).

The real CLI runs as a child process whose stdout and stderr are files (no terminal), on the
session's two emulated boards (provisioned by test_provision first; see STAGES in
conftest.py). Each verb also writes `--json FILE`, the ground truth: every board name,
status and message in it must appear whole in the text output, with no '…', and the long
verbs must print a timestamped line per board per stage.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tx2setup import report

pytestmark = pytest.mark.integration

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


def _run(out_dir: Path, name: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`tx2setup ARGS` with stdout and stderr going to files, as in `tx2setup ... > log 2>&1`."""
    exe = Path(sys.executable).parent / "tx2setup"
    out, err = out_dir / f"{name}.out", out_dir / f"{name}.err"
    with out.open("w") as fo, err.open("w") as fe:
        rc = subprocess.run(
            [str(exe), *args], stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env, timeout=3600, check=False
        ).returncode
    text, errors = out.read_text(), err.read_text()
    assert "…" not in text + errors, f"{name}: something was cut:\n{text}{errors}"
    return rc, text, errors


def _row(text: str, board: str) -> str:
    """The one line of a table that is about `board` (its name whole, as a word)."""
    rows = [ln for ln in text.splitlines() if re.match(rf"{re.escape(board)}(\s|$)", ln)]
    assert len(rows) == 1, f"{board}: expected one table row, got {rows}:\n{text}"
    return rows[0]


@pytest.fixture(scope="module")
def files(sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("output")
    return {"out": out, "inv": str(sim_fleet.inventory), "boards": [b.name for b in sim_fleet.boards]}


def test_provision_to_a_file_prints_whole_rows_and_a_line_per_board_per_role(files: dict[str, Any]) -> None:
    out = files["out"]
    rc, text, errors = _run(out, "provision", "provision", "-i", files["inv"], "--json", str(out / "provision.json"))
    assert rc == 0, text + errors
    doc = json.loads((out / "provision.json").read_text())
    for name, host in doc["hosts"].items():
        row = _row(text, name)
        assert f" {host['status']} " in row and row.rstrip().endswith(host["message"] or "")
        # progress: a timestamped line when each role starts, and one when the board is done
        roles = re.findall(rf"^{STAMP} {re.escape(name)} provision (\S+): started", errors, re.M)
        assert len(set(roles)) >= 3, roles
        assert re.search(rf"^{STAMP} {re.escape(name)} provision: done \(ok=\d+ changed=\d+, \d+s\)$", errors, re.M)


def test_verify_report_status_and_check_to_files_keep_every_name_status_and_message(files: dict[str, Any]) -> None:
    out, inv, boards = files["out"], files["inv"], files["boards"]
    db = str(out / "history.db")
    # an unreachable target: no board passes, and each one's long reason must print whole
    rc, text, errors = _run(
        out, "verify", "verify", "-i", inv, "--db", db, "--duration", "1", "--target-fps", "100000",
        "--json", str(out / "verify.json"), "--html", str(out / "report.html"),
    )  # fmt: skip
    assert rc == 1, text + errors
    doc = json.loads((out / "verify.json").read_text())
    assert sorted(b["board"] for b in doc["boards"]) == sorted(boards)
    for b in doc["boards"]:
        result = report.verdict_text(_result(b))
        assert b["verdict"] in ("FAIL", "ERROR") and _row(text, b["board"]).endswith(result)
        assert b["reason"] and f"{b['board']}: {b['verdict']}: {b['reason']}\n" in text
        assert re.search(rf"^{STAMP} {re.escape(b['board'])} verify: ", errors, re.M)

    rc, text, _ = _run(out, "report", "report", "--db", db, "--json", str(out / "report.json"))
    assert rc == 0
    for r in json.loads((out / "report.json").read_text())["results"]:
        line = next(ln for ln in text.splitlines() if f" {r['board']} " in ln)
        assert report.verdict_text(_result(r)) in line

    rc, text, _ = _run(out, "status", "status", "-i", inv, "--db", db, "--json", str(out / "status.json"))
    assert rc == 0, text
    for s in json.loads((out / "status.json").read_text()):
        row = _row(text, s["name"])
        assert " yes " in row and f" {s['l4t']} " in row and s["model"] in row and row.endswith(s["sudo"])

    rc, text, _ = _run(out, "check", "inventory", "check", "-i", inv, "--json", str(out / "check.json"))
    assert rc == 0
    for p in json.loads((out / "check.json").read_text())["boards"]:
        assert f"\n{p['name']}\n" in f"\n{text}"  # each plan's title, whole
        assert re.search(rf"^JetPack / L4T +{re.escape(p['jetpack'])} / {re.escape(p['l4t'])}$", text, re.M)


def test_sim_status_and_matrix_to_files(files: dict[str, Any], sim_fleet: Any) -> None:
    out = files["out"]
    env = {**os.environ, "TX2SETUP_SIM_DIR": str(sim_fleet.sim_dir)}
    rc, text, _ = _run(out, "sim-status", "sim", "status", "--json", str(out / "sim.json"), env=env)
    assert rc == 0
    for b in json.loads((out / "sim.json").read_text())["boards"]:
        assert _row(text, b["name"]).split()[-1] == b["state"] == "running"
    rc, text, _ = _run(out, "matrix", "matrix")
    assert rc == 0
    header = next(ln for ln in text.splitlines() if ln.startswith("JetPack "))
    assert header.split("  ")[-1].strip() == "Modules"  # the last column is there, whole
    assert re.search(r"^4\.6\.4(?: \[\d+\])? +32\.7\.4 +18\.04 ", text, re.M)


def _result(d: dict[str, Any]) -> Any:
    """The fields verdict_text reads, from a result's JSON."""
    from types import SimpleNamespace

    return SimpleNamespace(verdict=d["verdict"], margin_pct=d["margin_pct"])
