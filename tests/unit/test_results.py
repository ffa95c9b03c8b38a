"""The SQLite history: real database files, migrations, atomic board results."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tx2setup import results
from tx2setup.errors import UserError
from tx2setup.results import SCHEMA_VERSION, BoardResult, CheckResult, History, regressions


def result(board: str, fps: float, verdict: str = "PASS", t: float = 0.0, target: float = 15.0) -> BoardResult:
    return BoardResult(
        board=board,
        module="tx2",
        l4t="32.7.4",
        power_mode="0 MAXN",
        checks=(CheckResult("test_l4t", "passed"), CheckResult("test_torch", "failed", "torch 1.9 != 1.10")),
        inference_fps=fps * 2,
        e2e_fps=fps,
        p99_ms=12.5,
        target_fps=target,
        verdict=verdict,
        margin_pct=(fps - target) / target * 100,
        conditions={"power_mode": "MAXN", "torch": "2.13.0"},
        bench={"schema_version": 1, "results": []},
        finished_at=t,
    )


def test_new_db_is_wal_and_at_the_current_schema(tmp_path: Path) -> None:
    with History(tmp_path / "h.db") as h:
        assert h.schema_version == SCHEMA_VERSION
        assert h.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_round_trip_of_a_run(tmp_path: Path) -> None:
    with History(tmp_path / "h.db") as h:
        run = h.start_run("lab.ini", "0.1.0", {"duration": 5})
        h.record_board(run, result("b1", 20.0, t=100.0))
        h.finish_run(run)
    with History(tmp_path / "h.db") as h:  # reopened: nothing lost, no second migration
        (r,) = h.runs()
        assert (r.status, r.inventory, r.options) == ("complete", "lab.ini", {"duration": 5})
        (b,) = h.board_results()
        assert (b.board, b.e2e_fps, b.verdict, b.checks_passed, b.checks_failed) == ("b1", 20.0, "PASS", 1, 1)
        assert b.checks[1].message == "torch 1.9 != 1.10"
        assert b.conditions["torch"] == "2.13.0"
        assert h.last_result("b1") == b
        assert h.last_result("nope") is None


def test_interrupted_run_stores_no_unfinished_board(tmp_path: Path) -> None:
    h = History(tmp_path / "h.db")
    run = h.start_run("lab.ini", "0.1.0")
    h.record_board(run, result("b1", 20.0, t=1.0))
    bad = result("b2", 30.0, t=2.0)
    # a board whose write fails halfway (here: a check row breaks a constraint) leaves no trace
    broken = BoardResult(**{**bad.__dict__, "checks": (CheckResult("x", "exploded"),)})
    with pytest.raises(sqlite3.IntegrityError):
        h.record_board(run, broken)
    h.close()  # the process dies before finish_run()
    with History(tmp_path / "h.db") as h2:
        assert [b.board for b in h2.board_results()] == ["b1"]
        assert h2.runs()[0].status == "running"


def test_regression_is_measured_against_the_previous_pass(tmp_path: Path) -> None:
    with History(tmp_path / "h.db") as h:
        for i, (fps, verdict) in enumerate([(30.0, "PASS"), (10.0, "FAIL"), (25.0, "PASS"), (29.0, "PASS")]):
            run = h.start_run("lab.ini", "0.1.0")
            h.record_board(run, result("b1", fps, verdict, t=float(i + 1)))
            h.finish_run(run)
        flagged = regressions(h.board_results(), threshold_pct=10.0)
    # run 2 dropped 66.7% vs run 1; run 3 dropped 16.7% vs run 1 (run 2 was no pass); run 4 rose
    assert sorted(flagged) == [(2, "b1"), (3, "b1")]
    assert flagged[(2, "b1")] == pytest.approx(66.67, abs=0.01)
    assert flagged[(3, "b1")] == pytest.approx(16.67, abs=0.01)
    assert regressions([], 10.0) == {}


def test_a_db_from_a_newer_tx2setup_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "h.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError, match="newer than this tx2setup"):
        History(tmp_path / "h.db")


def test_a_file_that_is_not_a_db_is_refused(tmp_path: Path) -> None:
    (tmp_path / "h.db").write_text("not sqlite at all, just text " * 100)
    with pytest.raises(UserError, match="not a tx2setup history database"):
        History(tmp_path / "h.db")


# The schema that tx2setup shipped as version 1, as it was written then (one script).
SHIPPED_V1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted')), inventory TEXT NOT NULL,
    tool_version TEXT NOT NULL, options_json TEXT NOT NULL DEFAULT '{}');
CREATE TABLE board_results (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, board TEXT NOT NULL,
    module TEXT NOT NULL, l4t TEXT, power_mode TEXT, checks_passed INTEGER NOT NULL, checks_failed INTEGER NOT NULL,
    inference_fps REAL, e2e_fps REAL, p99_ms REAL, target_fps REAL NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL', 'ERROR')), margin_pct REAL,
    reason TEXT NOT NULL DEFAULT '', conditions_json TEXT NOT NULL DEFAULT '{}', bench_json TEXT,
    finished_at REAL NOT NULL, PRIMARY KEY (run_id, board));
CREATE TABLE check_results (run_id INTEGER NOT NULL, board TEXT NOT NULL, name TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('passed', 'failed', 'skipped', 'error')), message TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (run_id, board) REFERENCES board_results(run_id, board) ON DELETE CASCADE);
CREATE INDEX board_results_by_board ON board_results(board, finished_at);
INSERT INTO runs (started_at, status, inventory, tool_version) VALUES (1.0, 'complete', 'old.ini', '0.0.1');
PRAGMA user_version = 1;
"""


def columns(db: Path) -> dict[str, list[tuple[str, str, int]]]:
    conn = sqlite3.connect(db)
    try:
        return {
            t: [(c[1], c[2], c[3]) for c in conn.execute(f"PRAGMA table_info({t})")]
            for t in ("runs", "board_results", "check_results")
        }
    finally:
        conn.close()


def test_a_shipped_v1_db_opens_at_the_current_schema_with_its_data(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.executescript(SHIPPED_V1)
    conn.close()
    with History(tmp_path / "old.db") as h:
        assert h.schema_version == SCHEMA_VERSION
        assert [(r.inventory, r.status) for r in h.runs()] == [("old.ini", "complete")]
        run = h.start_run("lab.ini", "0.1.0")  # and it takes new results
        h.record_board(run, result("b1", 20.0, t=2.0))
    with History(tmp_path / "new.db"):
        pass
    assert columns(tmp_path / "old.db") == columns(tmp_path / "new.db")


def test_a_migration_is_applied_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with History(tmp_path / "h.db") as h:
        h.start_run("lab.ini", "0.1.0")
    broken = ("CREATE TABLE notes (run_id INTEGER, text TEXT)", "ALTER TABLE no_such_table ADD COLUMN x TEXT")
    monkeypatch.setattr(results, "MIGRATIONS", (*results.MIGRATIONS, broken))
    monkeypatch.setattr(results, "SCHEMA_VERSION", len(results.MIGRATIONS))
    with pytest.raises(
        UserError, match=f"schema version {SCHEMA_VERSION + 1} failed .* left at version {SCHEMA_VERSION}"
    ):
        History(tmp_path / "h.db")
    conn = sqlite3.connect(tmp_path / "h.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # still the old version
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'notes'").fetchone()[0] == 0
    conn.close()
    good = ("CREATE TABLE notes (run_id INTEGER, text TEXT)", "INSERT INTO notes VALUES (1, 'kept')")
    monkeypatch.setattr(results, "MIGRATIONS", (*results.MIGRATIONS[:-1], good))
    with History(tmp_path / "h.db") as h:
        assert h.schema_version == SCHEMA_VERSION + 1
        assert h.conn.execute("SELECT text FROM notes").fetchone()[0] == "kept"
        assert len(h.runs()) == 1
