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

import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tx2setup import aptproxy, cache, provision
from tx2setup.results import History
from tx2setup.sim import BoardSpec, SimBoard, fault, procs

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
# a run's private ssh directories: provision's control dir (in ansible's ssh argv) and
# verify's work dir (its ssh_config, `ssh -F DIR/...`)
CONTROL_DIR = re.compile(r"(/[^\"\s]*/tx2(?:cp|v)-[^/\"\s]+)/")


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


def _bench_started(fleet: Any, name: str, timeout: float = 900) -> None:
    fault.wait_for_process(fleet, name, ("python3",), timeout=timeout, argv_has="tx2setup.bench")


def _bench_gone(fleet: Any, name: str) -> bool:
    return not any("tx2setup.bench" in " ".join(argv) for _, _, argv in fault.board_processes(fleet.board(name)))


@pytest.fixture(scope="module")
def session_boards(sim_fleet: Any) -> tuple[Path, list[str]]:
    """The session's two boards, provisioned (a no-op in the whole suite: this module runs
    after test_verify's): the verify tests need torch on two boards, and booting and
    provisioning two more cost CI ~10 minutes."""
    result = provision.run(sim_fleet.inventory, forks=8)
    assert result.ok, [(h.name, h.failed_task, h.message) for h in result.bad_hosts]
    return sim_fleet.inventory, [b.name for b in sim_fleet.boards]


@pytest.fixture
def torch_pair(sim_fleet: Any, session_boards: tuple[Path, list[str]]) -> Iterator[tuple[Path, list[str]]]:
    """A new board that plans pytorch alone (it downloads the torch wheel: nothing else is
    worth the minutes here) and the session's Xavier, provisioned already, as its line in
    the session inventory has it (the board that must finish while the other's download dies)."""
    name = f"torch-{uuid.uuid4().hex[:6]}"
    xavier = sim_fleet.board(module="xavier-nx").name
    sim_fleet.fleet.up([BoardSpec("xavier-nx", "5.1.2", name)])
    try:
        inventory = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / "signals-torch.ini", names=[name, xavier])
        text = inventory.read_text()
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        text = text.replace(line, line + " components=pytorch", 1)
        session_line = next(ln for ln in session_boards[0].read_text().splitlines() if ln.startswith(xavier + " "))
        line = next(ln for ln in text.splitlines() if ln.startswith(xavier + " "))
        inventory.write_text(text.replace(line, session_line, 1))
        yield inventory, [name, xavier]
    finally:
        sim_fleet.fleet.destroy_board(name)


def _serve(inventory: Path, port: int) -> subprocess.Popen[str]:
    """`tx2setup cache serve` (what a plain ansible-playbook or AWX run downloads from),
    returned once it says where it listens."""
    proc = subprocess.Popen(
        [str(BIN / "tx2setup"), "cache", "serve", "-i", str(inventory), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("serving "):
            return proc
    raise AssertionError(f"cache serve exited {proc.wait()} without serving")


def _bytes_sent(port: int) -> int:
    """Bytes this host has sent on established TCP connections from `port`: the kernel's own
    count (ss(8) -i, tcp_info's bytes_sent), so the event is the server's bytes on the wire
    (a socket's send() is not in /proc/PID/io)."""
    out = subprocess.run(
        ["ss", "-tniH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    ).stdout
    return sum(int(n) for n in re.findall(r"\bbytes_sent:(\d+)", out))


def _kill_after(proc: subprocess.Popen[str], port: int, nbytes: int, done: list[int]) -> None:
    """SIGKILL `proc` once it has sent `nbytes` to the boards: mid-download."""
    procs.wait_for(lambda: proc.poll() is not None or _bytes_sent(port) >= nbytes, 900, interval=0.05)
    if proc.poll() is None:
        proc.kill()
        done.append(nbytes)
    proc.wait()


def test_the_artifact_server_dying_mid_download(
    sim_fleet: Any, torch_pair: tuple[Path, list[str]], private_cache: Path
) -> None:
    inventory, (served, direct) = torch_pair
    sync = subprocess.run(
        [str(BIN / "tx2setup"), "cache", "sync", "-i", str(inventory)], capture_output=True, text=True, timeout=900
    )
    assert sync.returncode == 0, sync.stderr
    port = aptproxy.free_port("127.0.0.1")
    text = original = inventory.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(served + " "))
    inventory.write_text(text.replace(line, f"{line} tx2setup_cache_url=http://127.0.0.1:{port}", 1))
    lock = (inventory.parent / "tx2setup.lock").read_bytes()

    server = _serve(inventory, port)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_after, args=(server, port, 1 << 20, killed), daemon=True)
    killer.start()
    try:
        first = provision.run(inventory, use_cache=False, forks=2)
    finally:
        if server.poll() is None:  # never reached its event: no server left behind
            server.kill()
        killer.join(timeout=30)
    assert killed, "the server was not killed mid-download"
    bad = first.hosts[served]
    assert bad.status == "failed" and "Download the torch wheel" in bad.failed_task, bad
    assert bad.message and "\n" not in bad.message, bad.message
    # get_url saw a short file fail the pin: the line says so and what to do
    assert bad.message.startswith("the download does not match its pinned sha256 (cut short"), bad.message
    assert first.hosts[direct].status == "ok", first.hosts[direct]  # the other board finished
    assert (inventory.parent / "tx2setup.lock").read_bytes() == lock  # nothing committed lost

    server = _serve(inventory, port)  # the fault clears: the server is back
    try:
        second = provision.run(inventory, use_cache=False, forks=2)
        assert second.ok, {h.name: (h.status, h.failed_task, h.message) for h in second.bad_hosts}
        third = provision.run(inventory, use_cache=False, forks=2)
        assert third.ok and {n: third.hosts[n].changed for n in (served, direct)} == {served: 0, direct: 0}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        inventory.write_text(original)


def test_verify_sigint_then_sigkill_while_the_second_benchmark_runs(
    sim_fleet: Any, session_boards: tuple[Path, list[str]], tmp_path: Path
) -> None:
    inventory, (first, second) = session_boards
    db = tmp_path / "history.db"
    # one board at a time: the first is judged and stored before the second's benchmark starts
    args = ("verify", "-i", str(inventory), "--db", str(db), "--duration", "20", "--forks", "1")

    for sig in (signal.SIGINT, signal.SIGKILL):
        run = Cli(*args)
        judged = run.wait_line(r"^\S+ \S+ verify: (PASS|FAIL)$", timeout=900).split()[1]
        first, second = judged, second if judged == first else first
        _bench_started(sim_fleet.fleet, second)
        before = run.tree()
        assert any(a.startswith("ssh ") for a in before.values()), before
        if sig == signal.SIGINT:
            os.killpg(run.proc.pid, sig)
        else:
            run.proc.kill()
        rc, _, lines = run.finish()
        assert "Traceback" not in "\n".join(lines), lines
        if sig == signal.SIGINT:
            assert rc == 130, lines
            cut = board_line(lines, second)
            assert len(cut) == 1 and "interrupted during benchmark" in cut[0], lines
            assert board_line(lines, first) == [], lines  # judged and stored: no line
            assert strays(before, run.proc.pid) == {}
            # nothing left on the board either: the benchmark had a terminal, it got SIGHUP
            gone = functools.partial(_bench_gone, sim_fleet.fleet, second)
            assert procs.wait_for(gone, 30), "the benchmark still runs"
        else:
            assert rc == -signal.SIGKILL
            # what a kill -9 leaves (docs/reliability.md): ssh processes only, the benchmark's
            # session runs to its end and its ssh with it; the masters go after ControlPersist
            left = strays(before, run.proc.pid)
            assert all(a.startswith("ssh ") for a in left.values()), left
            gone = functools.partial(_bench_gone, sim_fleet.fleet, second)
            assert procs.wait_for(gone, 300), "the benchmark did not end"

    with History(str(db)) as history:  # opening it marks the SIGKILLed run: its owner is dead
        runs = history.runs()
        assert [r.status for r in runs] == ["interrupted", "interrupted"], runs
        for r in runs:  # the first board's result, stored before each interrupt, is kept
            assert [b.board for b in history.board_results(run_id=r.id)] == [first], r


def test_net_flaky_during_the_benchmark_gives_a_measured_verdict_or_unreachable(
    sim_fleet: Any, session_boards: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Packets to and from the board lost (net-flaky, 30 %) from the moment its benchmark
    starts: the verdict is one the benchmark measured (it ran on the board, whole), or the
    board is `unreachable`; never a PASS/FAIL without figures, never a traceback."""
    inventory, _ = session_boards
    board = sim_fleet.board(module="xavier-nx").name
    out = tmp_path / "v.json"
    args = ("verify", "-i", str(inventory), "--limit", board, "--db", str(tmp_path / "h.db"))
    run = Cli(*args, "--duration", "10", "--target-fps", "1", "--json", str(out))
    _bench_started(sim_fleet.fleet, board)
    fault.inject(sim_fleet.fleet, board, "net-flaky", loss_percent=30)
    try:
        rc, _, lines = run.finish(timeout=600)
    finally:
        fault.clear(sim_fleet.fleet, board)
    assert "Traceback" not in "\n".join(lines), lines
    result = json.loads(out.read_text())["boards"][0]
    if result["verdict"] in ("PASS", "FAIL"):
        assert result["bench"] and result["e2e_fps"] and result["e2e_fps"] > 0, result
        assert rc == (0 if result["verdict"] == "PASS" else 1)
    else:
        assert result["verdict"] == "ERROR" and result["reason"].startswith("unreachable"), result
        assert rc == 1
