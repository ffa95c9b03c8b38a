"""SQLite history of verify runs: embedded, no server, WAL, versioned schema.

A run is opened before any board is touched and closed when it ends. Each board's
result (checks, benchmark, verdict) is written in ONE transaction when that board has
finished, so a run interrupted halfway never stores a PASS for a board that did not finish.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup.errors import UserError

# Each entry migrates the schema from version i to i+1, one statement per string (run in
# one transaction; no splitting of SQL text). Never edit a shipped entry: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,
            finished_at REAL,
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted')),
            inventory TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            options_json TEXT NOT NULL DEFAULT '{}'
        )
        """,
        """
        CREATE TABLE board_results (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            board TEXT NOT NULL,
            module TEXT NOT NULL,
            l4t TEXT,
            power_mode TEXT,
            checks_passed INTEGER NOT NULL,
            checks_failed INTEGER NOT NULL,
            inference_fps REAL,
            e2e_fps REAL,
            p99_ms REAL,
            target_fps REAL NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL', 'ERROR')),
            margin_pct REAL,
            reason TEXT NOT NULL DEFAULT '',
            conditions_json TEXT NOT NULL DEFAULT '{}',
            bench_json TEXT,
            finished_at REAL NOT NULL,
            PRIMARY KEY (run_id, board)
        )
        """,
        """
        CREATE TABLE check_results (
            run_id INTEGER NOT NULL,
            board TEXT NOT NULL,
            name TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('passed', 'failed', 'skipped', 'error')),
            message TEXT NOT NULL DEFAULT '',
            FOREIGN KEY (run_id, board) REFERENCES board_results(run_id, board) ON DELETE CASCADE
        )
        """,
        """
        CREATE INDEX board_results_by_board ON board_results(board, finished_at)
        """,
    ),
    (
        # the process that runs a run: "host boot_id pid start_ticks" (see _owner); a run
        # whose process is gone (SIGKILL, power loss) is marked interrupted on the next open
        "ALTER TABLE runs ADD COLUMN owner TEXT",
    ),
    (
        # a board's checks are read by (run_id, board): without it every board read scanned
        # all check rows (`report` on 10,000 board rows took minutes; benchmarks/report_bench.py)
        "CREATE INDEX check_results_by_run_board ON check_results(run_id, board)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, the process's start time in clock ticks since boot (proc(5)):
    with the boot id it tells a live run's process from a later one that reuses its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its last ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _boot_id() -> str:
    try:  # random(4): "a UUID ... generated once per boot"
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _owner(pid: int) -> str:
    return f"{socket.gethostname()} {_boot_id()} {pid} {_start_ticks(pid) or '-'}"


def _owner_gone(owner: str) -> bool:
    """True when the process recorded in `owner` has certainly ended. A run recorded on
    another host (a history on a shared disk) is never judged from here."""
    parts = owner.split()
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[2].isdigit():
        return False
    host_boot, pid, ticks = parts[1], int(parts[2]), parts[3]
    if host_boot != _boot_id():
        return True  # the machine rebooted since: no process of that boot lives
    return _start_ticks(pid) != ticks  # gone, or the pid now belongs to another process


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tx2setup" / "history.db"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: str  # passed | failed | skipped | error
    message: str = ""


@dataclass(frozen=True)
class BoardResult:
    board: str
    module: str
    l4t: str | None
    power_mode: str | None
    checks: tuple[CheckResult, ...]
    inference_fps: float | None
    e2e_fps: float | None
    p99_ms: float | None
    target_fps: float
    verdict: str  # PASS | FAIL | ERROR
    margin_pct: float | None
    reason: str = ""
    conditions: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] | None = None
    finished_at: float = 0.0
    run_id: int | None = None

    @property
    def checks_passed(self) -> int:
        return sum(c.outcome == "passed" for c in self.checks)

    @property
    def checks_failed(self) -> int:
        return sum(c.outcome in ("failed", "error") for c in self.checks)


@dataclass(frozen=True)
class Run:
    id: int
    started_at: float
    finished_at: float | None
    status: str
    inventory: str
    tool_version: str
    options: dict[str, Any]


class History:
    """The history database. Use as a context manager or call close()."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"{self.path}: cannot open the history database ({exc})") from exc
        self.conn.row_factory = sqlite3.Row
        try:
            _set_wal(self.conn)
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._mark_dead_runs()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise UserError(f"{self.path}: not a tx2setup history database ({exc})") from exc
        except UserError:
            self.conn.close()
            raise

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise UserError(
                f"{self.path}: schema version {version} is newer than this tx2setup ({SCHEMA_VERSION});"
                " upgrade tx2setup"
            )
        for target in range(version, SCHEMA_VERSION):
            try:
                with self._tx() as conn:
                    # another process may have migrated while this one waited for the write
                    # lock (several first opens of a new history at once): read it again
                    if int(conn.execute("PRAGMA user_version").fetchone()[0]) > target:
                        continue
                    # statement by statement: executescript() would COMMIT mid-migration
                    for statement in MIGRATIONS[target]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {target + 1}")
            except sqlite3.Error as exc:
                raise UserError(
                    f"{self.path}: upgrading the history to schema version {target + 1} failed ({exc});"
                    f" it is left at version {target}"
                ) from exc

    def _mark_dead_runs(self) -> None:
        """Runs left `running` by a process that no longer lives (SIGKILL, a crash, a power
        cut) become `interrupted`, finished when their last board was stored."""
        rows = self.conn.execute("SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL")
        dead = [int(r["id"]) for r in rows.fetchall() if _owner_gone(str(r["owner"]))]
        if not dead:
            return
        with self._tx() as conn:
            for run_id in dead:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = COALESCE("
                    "(SELECT max(finished_at) FROM board_results WHERE run_id = runs.id), started_at)"
                    " WHERE id = ? AND status = 'running'",
                    (run_id,),
                )

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    # -- writing ---------------------------------------------------------------------
    def start_run(self, inventory: str, tool_version: str, options: dict[str, Any] | None = None) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started_at, status, inventory, tool_version, options_json, owner)"
                " VALUES (?, 'running', ?, ?, ?, ?)",
                (time.time(), inventory, tool_version, json.dumps(options or {}), _owner(os.getpid())),
            )
            return int(cur.lastrowid or 0)

    def record_board(self, run_id: int, result: BoardResult) -> None:
        """Store one finished board, its checks and its verdict, atomically."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO board_results (run_id, board, module, l4t, power_mode, checks_passed, checks_failed,"
                " inference_fps, e2e_fps, p99_ms, target_fps, verdict, margin_pct, reason, conditions_json, bench_json,"
                " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    result.board,
                    result.module,
                    result.l4t,
                    result.power_mode,
                    result.checks_passed,
                    result.checks_failed,
                    result.inference_fps,
                    result.e2e_fps,
                    result.p99_ms,
                    result.target_fps,
                    result.verdict,
                    result.margin_pct,
                    result.reason,
                    json.dumps(result.conditions),
                    None if result.bench is None else json.dumps(result.bench),
                    result.finished_at or time.time(),
                ),
            )
            conn.executemany(
                "INSERT INTO check_results (run_id, board, name, outcome, message) VALUES (?, ?, ?, ?, ?)",
                [(run_id, result.board, c.name, c.outcome, c.message) for c in result.checks],
            )

    def finish_run(self, run_id: int, status: str = "complete") -> None:
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, time.time(), run_id))

    # -- reading ---------------------------------------------------------------------
    def runs(self, since: float | None = None) -> list[Run]:
        rows = self.conn.execute(
            "SELECT * FROM runs WHERE started_at >= ? ORDER BY started_at, id", (since or 0.0,)
        ).fetchall()
        return [
            Run(
                r["id"],
                r["started_at"],
                r["finished_at"],
                r["status"],
                r["inventory"],
                r["tool_version"],
                json.loads(r["options_json"]),
            )
            for r in rows
        ]

    def board_results(
        self, board: str | None = None, since: float | None = None, run_id: int | None = None
    ) -> list[BoardResult]:
        sql = "SELECT * FROM board_results WHERE finished_at >= ?"
        args: list[Any] = [since or 0.0]
        if board is not None:
            sql += " AND board = ?"
            args.append(board)
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        rows = self.conn.execute(sql + " ORDER BY finished_at, board", args).fetchall()
        return [self._board_from_row(r) for r in rows]

    def last_result(self, board: str) -> BoardResult | None:
        row = self.conn.execute(
            "SELECT * FROM board_results WHERE board = ? ORDER BY finished_at DESC LIMIT 1", (board,)
        ).fetchone()
        return None if row is None else self._board_from_row(row)

    def _board_from_row(self, r: sqlite3.Row) -> BoardResult:
        checks = tuple(
            CheckResult(c["name"], c["outcome"], c["message"])
            for c in self.conn.execute(
                "SELECT name, outcome, message FROM check_results WHERE run_id = ? AND board = ? ORDER BY rowid",
                (r["run_id"], r["board"]),
            )
        )
        return BoardResult(
            board=r["board"],
            module=r["module"],
            l4t=r["l4t"],
            power_mode=r["power_mode"],
            checks=checks,
            inference_fps=r["inference_fps"],
            e2e_fps=r["e2e_fps"],
            p99_ms=r["p99_ms"],
            target_fps=r["target_fps"],
            verdict=r["verdict"],
            margin_pct=r["margin_pct"],
            reason=r["reason"],
            conditions=json.loads(r["conditions_json"]),
            bench=None if r["bench_json"] is None else json.loads(r["bench_json"]),
            finished_at=r["finished_at"],
            run_id=r["run_id"],
        )


def regressions(results: Sequence[BoardResult], threshold_pct: float) -> dict[tuple[int, str], float]:
    """(run_id, board) -> FPS drop in percent against that board's previous PASS.

    Only drops larger than `threshold_pct` are returned. End-to-end FPS is compared (the
    number the verdict is made on).
    """
    flagged: dict[tuple[int, str], float] = {}
    last_pass: dict[str, BoardResult] = {}
    for res in sorted(results, key=lambda r: r.finished_at):
        prev = last_pass.get(res.board)
        if prev is not None and prev.e2e_fps and res.e2e_fps is not None and res.run_id is not None:
            drop = (prev.e2e_fps - res.e2e_fps) / prev.e2e_fps * 100.0
            if drop > threshold_pct:
                flagged[(res.run_id, res.board)] = drop
        if res.verdict == "PASS":
            last_pass[res.board] = res
    return flagged


def _set_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch to WAL. Changing the journal mode needs the database to itself, and SQLite
    answers "database is locked" at once rather than through the busy timeout when several
    processes open a new history together: try again until `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
