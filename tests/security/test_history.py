"""The history database under process death and concurrency (issue 13): a run whose
process was killed with SIGKILL is marked interrupted on the next open, not left running;
a run of a live process stays running; several processes opening a new history at once
all succeed, with one schema."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tx2setup.results import SCHEMA_VERSION, History

# a process that starts a run, stores one board and then waits to be killed
RUNNER = """
import sys, time
from tx2setup.results import BoardResult, History
h = History(sys.argv[1])
run = h.start_run("lab.ini", "0.1.0")
h.record_board(run, BoardResult("b1", "tx2", None, None, (), 20.0, 20.0, 1.0, 15.0, "PASS", 33.0, finished_at=5.0))
print(run, flush=True)
sys.stdin.read()  # until the test kills it
"""


def _start_runner(db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())  # the run is stored once its id is printed


def test_a_run_killed_with_sigkill_is_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    proc, run_id = _start_runner(db)
    with History(db) as h:  # the process lives: its run is running
        assert {r.id: r.status for r in h.runs()}[run_id] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with History(db) as h:
        run = {r.id: r for r in h.runs()}[run_id]
        assert run.status == "interrupted"
        assert run.finished_at == 5.0  # when its last board was stored
        assert [b.board for b in h.board_results(run_id=run_id)] == ["b1"]  # nothing committed lost


def test_a_pid_reused_by_another_process_does_not_keep_a_dead_run_running(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with History(db) as h:
        run_id = h.start_run("lab.ini", "0.1.0")
        owner = h.conn.execute("SELECT owner FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        host, boot, _pid, _ticks = owner.split()
        # this test's own pid, alive, but with another start time: a later process on a reused pid
        h.conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (f"{host} {boot} {os.getpid()} 1", run_id))
        other = h.start_run("lab.ini", "0.1.0")
        h.conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (f"other-host {boot} 1 1", other))
    with History(db) as h:
        status = {r.id: r.status for r in h.runs()}
        assert status[run_id] == "interrupted"
        assert status[other] == "running"  # another host's run is not judged from here


def _open(path: str, barrier: Any, out: Any) -> None:
    barrier.wait()  # all processes open the new file at the same moment
    try:
        with History(path) as h:
            h.start_run("lab.ini", "0.1.0")
        out.put("ok")
    except Exception as exc:  # reported to the test as text
        out.put(f"{type(exc).__name__}: {exc}")


def test_several_processes_opening_a_new_history_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(5):  # five new databases: the race is narrow
        db = tmp_path / f"h{attempt}.db"
        ctx = multiprocessing.get_context("fork")
        barrier, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(db), barrier, out)) for _ in range(8)]
        for p in procs:
            p.start()
        outcomes = sorted(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join()
        assert outcomes == ["ok"] * 8, outcomes
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 8
        conn.close()
