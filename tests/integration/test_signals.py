"""SIGINT and SIGKILL of `tx2setup provision` and `verify` (issue 13), timed by events, never
by sleeps: when dpkg configures packages on a board, when a board's progress line for a
stage appears on the CLI's stderr (off a terminal it prints one timestamped line per board
per stage), when the benchmark runs on a board.

For each: the documented exit code (130 for SIGINT, cli.py; SIGKILL is -9, nothing can
run), one line per affected board, nothing committed lost (run records, the history's runs
and boards), no stray process left (ansible-playbook and its ssh, the run's ssh masters,
apt-cacher-ng: read from /proc after the kill), and a plain re-run converges with the run
after it at changed=0 (`--tags jetson_base` runs, as test_faults.py does).

SIGINT goes to the CLI's whole process group, as Ctrl-C in a terminal does; SIGKILL to the
CLI's process alone, as the OOM killer or `kill -9` does.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tx2setup import cache, provision
from tx2setup.results import History
from tx2setup.sim import SimBoard, fault, procs

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
CONTROL_DIR = re.compile(r"ControlPath=\"?(/[^\"\s]*/tx2cp-[^/\"\s]+)/")


class Cli:
    """A `tx2setup` process whose stderr lines are collected as they come, so a test can
    act on the moment a line appears."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "tx2setup"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: the Ctrl-C stand-in reaches it alone
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # EOF marker
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float) -> str:
        """The first stderr line matching `pattern`, waiting for it (raises on EOF/timeout)."""
        rx = re.compile(pattern)
        hit: list[str] = []

        def found() -> bool:
            hit.extend(ln for ln in self.lines if rx.search(ln))
            return bool(hit) or (bool(self.lines) and self.lines[-1] == "" and self.proc.poll() is not None)

        with self._cond:
            self._cond.wait_for(found, timeout)
        if not hit:
            raise AssertionError(f"no line matching {pattern!r}; stderr so far: {self.lines[-20:]}")
        return hit[0]

    def tree(self) -> dict[int, str]:
        """The CLI's live processes (itself and everything below it) plus the run's ssh
        masters (daemonized by ssh, so not below it: found by their control directory)."""
        found = {p: " ".join(procs.cmdline(p)) for p in procs.descendants(self.proc.pid)}
        dirs = {m.group(1) for argv in found.values() for m in CONTROL_DIR.finditer(argv)}
        for pid in procs.all_pids():
            argv = " ".join(procs.cmdline(pid))
            if any(d in argv for d in dirs):
                found[pid] = argv
        return {p: a for p, a in found.items() if a}

    def finish(self, timeout: float = 300) -> tuple[int, str, list[str]]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return rc, out, [ln for ln in self.lines if ln]


def strays(before: dict[int, str], cli_pid: int) -> dict[int, str]:
    """Which of `before` still run (same pid, same argv), once they have had up to 20 s to
    go: a master told to exit takes a moment; a process nobody told to stop stays."""

    def left() -> dict[int, str]:
        return {p: a for p, a in before.items() if p != cli_pid and " ".join(procs.cmdline(p)) == a}

    procs.wait_for(lambda: not left(), 20, interval=0.1)
    return left()


def board_line(lines: list[str], board: str) -> list[str]:
    return [ln for ln in lines if ln.startswith(f"{board}: ")]


@pytest.fixture
def private_cache(tmp_path: Path) -> Iterator[Path]:
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(tmp_path / "cache")
    yield tmp_path / "cache"
    if old is None:
        os.environ.pop(cache.CACHE_ENV, None)
    else:
        os.environ[cache.CACHE_ENV] = old


def _converges_then_no_change(inventory: Path, names: list[str]) -> None:
    second = provision.run(inventory, tags="jetson_base")
    assert second.ok, {h.name: (h.status, h.failed_task, h.message) for h in second.bad_hosts}
    third = provision.run(inventory, tags="jetson_base")
    assert third.ok
    assert {n: third.hosts[n].changed for n in names} == dict.fromkeys(names, 0)


def _records(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "runs").glob("provision-*/provision.json"))


def test_provision_sigint_while_dpkg_configures_then_sigkill_at_a_stage_line(
    sim_fleet: Any, fresh_board: Callable[..., tuple[SimBoard, Path]], private_cache: Path
) -> None:
    fresh = fresh_board("tx2", "4.6.4")[0]
    other = sim_fleet.board(module="xavier-nx")
    names = [fresh.name, other.name]
    inventory = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / "signals.ini", names=names)
    env = {cache.CACHE_ENV: str(private_cache)}

    # Ctrl-C while dpkg configures packages on the fresh board
    run = Cli("provision", "-i", str(inventory), "--tags", "jetson_base", env=env)
    fault.wait_for_process(sim_fleet.fleet, fresh.name, ("dpkg",), timeout=900, argv_has="--configure")
    before = run.tree()
    assert any("ansible-playbook" in a for a in before.values()), before
    assert any(a.startswith("ssh ") for a in before.values()), before  # the run's ssh to the boards
    assert any("apt-cacher-ng" in a for a in before.values()), before
    os.killpg(run.proc.pid, signal.SIGINT)
    rc, _, lines = run.finish()
    assert "Traceback" not in "\n".join(lines), lines
    assert rc == 130, lines
    mid = board_line(lines, fresh.name)
    assert len(mid) == 1 and "interrupted" in mid[0] and "provision" in mid[0], lines
    assert strays(before, run.proc.pid) == {}
    first_records = _records(private_cache)
    assert len(first_records) == 1, "the interrupted run left no record"

    # kill -9 when the xavier's jetson_base line appears: nothing can run; what is left?
    run = Cli("provision", "-i", str(inventory), "--tags", "jetson_base", env=env)
    run.wait_line(rf"{other.name} provision jetson_base: started", timeout=600)
    before = run.tree()
    run.proc.kill()
    rc, _, lines = run.finish()
    assert rc == -signal.SIGKILL
    left = strays(before, run.proc.pid)
    assert left == {}, left
    assert _records(private_cache)[:1] == first_records  # the earlier record is kept

    # the next plain run finishes dpkg's interrupted work and converges; the one after: no change
    _converges_then_no_change(inventory, names)


def _bench_started(fleet: Any, name: str, timeout: float = 600) -> None:
    fault.wait_for_process(fleet, name, ("python3",), timeout=timeout, argv_has="tx2setup.bench")


def test_verify_sigint_then_sigkill_while_the_benchmark_runs(
    sim_fleet: Any, fresh_board: Callable[..., tuple[SimBoard, Path]], tmp_path: Path
) -> None:
    board, inventory = fresh_board("xavier-nx", "5.1.2")
    text = inventory.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(board.name + " "))
    inventory.write_text(text.replace(line, line + " components=pytorch", 1))
    prov = provision.run(inventory)
    assert prov.ok, [(h.name, h.failed_task, h.message) for h in prov.bad_hosts]
    db = tmp_path / "history.db"
    args = ("verify", "-i", str(inventory), "--db", str(db), "--duration", "30")

    for sig in (signal.SIGINT, signal.SIGKILL):
        run = Cli(*args)
        _bench_started(sim_fleet.fleet, board.name)
        before = run.tree()
        if sig == signal.SIGINT:
            os.killpg(run.proc.pid, sig)
        else:
            run.proc.kill()
        rc, _, lines = run.finish()
        assert "Traceback" not in "\n".join(lines), lines
        if sig == signal.SIGINT:
            assert rc == 130, lines
            mine = board_line(lines, board.name)
            assert len(mine) == 1 and "interrupted" in mine[0] and "benchmark" in mine[0], lines
        else:
            assert rc == -signal.SIGKILL
        assert strays(before, run.proc.pid) == {}
        # and nothing left on the board: the benchmark ends with its ssh session
        assert procs.wait_for(lambda: not _bench_running(sim_fleet, board), 30), "benchmark still runs"

    with History(str(db)) as history:
        runs = history.runs() if hasattr(history, "runs") else []
    assert runs == [] or all(r["status"] == "interrupted" for r in runs)  # type: ignore[index]


def _bench_running(sim_fleet: Any, board: SimBoard) -> bool:
    b = sim_fleet.fleet.board(board.name)
    return any("tx2setup.bench" in " ".join(argv) for _, _, argv in fault.board_processes(b))
