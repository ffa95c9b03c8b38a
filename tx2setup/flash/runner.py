"""Run the BSP's tools: one log per board, a timeout, progress events, a result per board.

Each tool runs in its own session (process group), so a timeout kills it and everything
it started (tegraflash, the massflash children) and not us. Being in its own session also
means the terminal's Ctrl-C does not reach it: an interrupt (KeyboardInterrupt) or any
other exception while a tool runs kills its process group too, then goes on. Output is read line by line
into the board's log, with secrets (the default user's password) masked; every line is
also matched against the milestones the real tools print, which become progress events.

Mass flashing mirrors what `l4t_initrd_flash.sh --massflash` does: it starts one child
per board in recovery mode, prints "Start flashing device: <port>, rcm instance: <n>,
PID: <pid>" and "Log will be saved to Linux_for_Tegra/initrdlog/<file>", and writes each
board's output to that file. We follow those files while it runs, copy each into the
board's own log at the end, and decide per board from the line the child ends with
("Flash is successful" or "Flash failure"), because the tool's exit status only says
whether *all* succeeded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MASK = "********"
KILL_GRACE_S = 5.0
TAIL_INTERVAL_S = 0.25

# (pattern in the tools' output, the phase it starts), in the order the tools print them
MILESTONES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), phase)
    for p, phase in (
        (r"^# L4T BSP Information", "checking the BSP"),
        (
            r"Step 1: Build the flashing environment|^Generating flash package|flash_cmd.*--no-flash",
            "building the image",
        ),
        (r"Making system\.img|populating rootfs", "building the image"),
        (r"system\.img built successfully|Finish generating flash package", "image built"),
        (r"Start flashing device:", "starting"),
        (r"Step 2: Boot the device with flash initrd image|Sending bootloader|Boot Rom communication", "booting"),
        (r"Step 3: Start the flashing process|Writing partition|Flashing .* partition", "writing"),
        (r"Coldbooting the device", "rebooting"),
        (r"has been flashed successfully|^Flash is successful", "flashed"),
        (r"^Flash failure|Error: probing the target board failed|\*\*\* Error:|^Error:", "failed"),
    )
)
SUCCESS_LINE = re.compile(r"^Flash is successful|has been flashed successfully")
START_LINE = re.compile(r"Start flashing device: (\S+), rcm instance: (\d+), PID: (\d+)")
LOG_LINE = re.compile(r"Log (?:will be|is) saved to (?:\S*?Linux_for_Tegra/)?(initrdlog/\S+)")


def phase_of(line: str) -> str | None:
    for pattern, phase in MILESTONES:
        if pattern.search(line):
            return phase
    return None


@dataclass(frozen=True)
class Event:
    """Something a board's progress view should show."""

    board: str
    phase: str | None = None
    line: str | None = None
    status: str | None = None  # set once, when the board is done: flashed / failed / timed out


EventFn = Callable[[Event], None]


def _ignore(_: Event) -> None:
    return None


@dataclass(frozen=True)
class Target:
    """A board to flash: its inventory name, USB port, module key and board config."""

    name: str
    port: str
    module: str
    flash_board: str = ""  # "" = the module's default (matrix flash_board)


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    duration_s: float


@dataclass
class BoardResult:
    board: str
    port: str
    module: str
    status: str  # flashed / failed / timed out
    duration_s: float
    log: Path
    detail: str = ""
    network: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "flashed"


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, from /proc (Linux, like the BSP tools)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "pid (comm)": state ppid pgrp ...
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_group_gone(pgid: int, grace_s: float) -> bool:
    deadline = time.monotonic() + grace_s
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the tool's process group, then SIGKILL; return once the leader and every child are gone.

    The leader exiting is not enough: massflash children run in the background with their
    output in files, and would go on writing to a board after we report it killed.
    """
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            if _wait_group_gone(proc.pid, grace):
                return
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C while waiting: no more grace
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def _reap_stragglers(proc: subprocess.Popen[str], reader: threading.Thread) -> None:
    """Wait for the output reader; a child still holding the pipe gets SIGKILL."""
    reader.join(timeout=KILL_GRACE_S)
    if reader.is_alive():  # a straggler in the group still holds the pipe
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=KILL_GRACE_S)


def run_logged(
    argv: Sequence[str],
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    *,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    secrets: Sequence[str] = (),
    mask_line: Callable[[str], str] | None = None,
) -> Outcome:
    """Run `argv` in `cwd`, append its output (masked) to `log_path`, kill it after `timeout_s`.

    `mask_line` masks what `secrets` cannot name in advance (a password the tool makes up).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log:
        log.write(mask(f"$ cd {shlex.quote(str(cwd))} && {shlex.join(argv)}\n", secrets))
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else dict(env),
            text=True,
            errors="replace",
        )

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = mask(raw.rstrip("\n"), secrets)
                if mask_line is not None:
                    line = mask_line(line)
                log.write(line + "\n")
                log.flush()
                if on_line is not None:
                    on_line(line)

        reader = threading.Thread(target=pump, name=f"log:{log_path.name}", daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            # Ctrl-C (KeyboardInterrupt) or any other way out: the tool runs in its own
            # session, so the terminal's SIGINT never reached it; end it and its children
            # before letting the exception go on, or a flash keeps writing unattended.
            _kill_group(proc)
            _reap_stragglers(proc, reader)
            log.write(f"tx2setup: interrupted: killed {argv[0]} and its children\n")
            raise
        _reap_stragglers(proc, reader)
        duration = time.monotonic() - start
        if timed_out:
            log.write(f"tx2setup: no result after {timeout_s:g} s: killed {argv[0]} and its children (timeout)\n")
        else:
            log.write(f"tx2setup: {argv[0]} exited with status {proc.returncode} after {duration:.1f} s\n")
    return Outcome(None if timed_out else proc.returncode, timed_out, duration)


ERROR_LINE = re.compile(r"error|fail", re.I)


def _last_line(path: Path) -> str:
    """The line that says why: the last one that mentions an error, else the last one."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    lines = [ln for ln in lines if not ln.startswith(("tx2setup:", "$ "))]
    errors = [ln for ln in lines if ERROR_LINE.search(ln)]
    return (errors or lines or [""])[-1]


def flash_one(
    target: Target,
    argv: Sequence[str],
    bsp: Path,
    log_path: Path,
    timeout_s: float,
    on_event: EventFn = _ignore,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
) -> BoardResult:
    """One board with flash.sh (or the initrd path); its output is its log."""

    def line(text: str) -> None:
        on_event(Event(target.name, phase=phase_of(text), line=text))

    outcome = run_logged(argv, bsp, log_path, timeout_s, env=env, on_line=line, secrets=secrets)
    if outcome.timed_out:
        status, detail = "timed out", f"no result after {timeout_s:g} s"
    elif outcome.returncode == 0:
        status, detail = "flashed", ""
    else:
        status, detail = "failed", f"exit status {outcome.returncode}: {_last_line(log_path)}"
    on_event(Event(target.name, status=status))
    return BoardResult(target.name, target.port, target.module, status, outcome.duration_s, log_path, detail)


class _DeviceLogs:
    """Follows the per-device logs l4t_initrd_flash.sh --massflash writes, while it runs."""

    def __init__(self, bsp: Path, by_port: Mapping[str, Target], on_event: EventFn) -> None:
        self.bsp = bsp
        self.by_port = by_port
        self.on_event = on_event
        self.paths: dict[str, Path] = {}  # port -> device log
        self._offsets: dict[str, int] = {}
        self._pending_port: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="massflash-logs", daemon=True)

    def on_line(self, line: str) -> None:
        started = START_LINE.search(line)
        if started:
            port = started.group(1)
            with self._lock:
                self._pending_port = port
            if port in self.by_port:
                self.on_event(Event(self.by_port[port].name, phase="starting", line=line))
            return
        logged = LOG_LINE.search(line)
        if logged:
            with self._lock:
                if self._pending_port is not None:
                    self.paths[self._pending_port] = self.bsp / logged.group(1)
                    self._pending_port = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()  # whatever was written after the last poll

    def _loop(self) -> None:
        while not self._stop.wait(TAIL_INTERVAL_S):
            self._drain()

    def _drain(self) -> None:
        with self._lock:
            paths = dict(self.paths)
        for port, path in paths.items():
            target = self.by_port.get(port)
            if target is None:
                continue
            try:
                with path.open("r", errors="replace") as fh:
                    fh.seek(self._offsets.get(port, 0))
                    chunk = fh.read()
                    # only consume whole lines; a partial one is read again next time
                    cut = chunk.rfind("\n") + 1
                    self._offsets[port] = self._offsets.get(port, 0) + len(chunk[:cut].encode())
            except OSError:
                continue
            for text in chunk[:cut].splitlines():
                self.on_event(Event(target.name, phase=phase_of(text), line=text))


def flash_mass(
    targets: Sequence[Target],
    build_argv: Sequence[str],
    flash_argv: Sequence[str],
    bsp: Path,
    log_dir: Path,
    timeout_s: float,
    on_event: EventFn = _ignore,
    env: Mapping[str, str] | None = None,
) -> list[BoardResult]:
    """Build the massflash package once, flash every board with it, one result per board."""
    build_log = log_dir / "massflash-build.log"

    def build_line(text: str) -> None:
        phase = phase_of(text)
        for t in targets:
            on_event(Event(t.name, phase=phase, line=text))

    built = run_logged(build_argv, bsp, build_log, timeout_s, env=env, on_line=build_line)
    if built.timed_out or built.returncode != 0:
        why = "timed out" if built.timed_out else f"exit status {built.returncode}: {_last_line(build_log)}"
        results = []
        for t in targets:
            log = log_dir / f"{t.name}.log"
            log.write_text(f"tx2setup: building the massflash package failed ({why}); see {build_log}\n")
            status = "timed out" if built.timed_out else "failed"
            on_event(Event(t.name, status=status))
            results.append(
                BoardResult(t.name, t.port, t.module, status, built.duration_s, log, f"package build: {why}")
            )
        return results

    by_port = {t.port: t for t in targets}
    follower = _DeviceLogs(bsp, by_port, on_event)
    follower.start()
    try:
        flashed = run_logged(flash_argv, bsp, log_dir / "massflash.log", timeout_s, env=env, on_line=follower.on_line)
    except BaseException:
        # run_logged has killed the tool's process group; leave each board a log that says so
        follower.stop()
        for t in targets:
            device_log = follower.paths.get(t.port)
            text = device_log.read_text(errors="replace") if device_log and device_log.exists() else ""
            (log_dir / f"{t.name}.log").write_text(
                f"tx2setup: board {t.name} at USB port {t.port}, massflash\n{text}"
                "tx2setup: interrupted: the flash was killed; the board needs flashing again\n"
            )
        raise
    follower.stop()
    results = []
    for t in targets:
        log = log_dir / f"{t.name}.log"
        device_log = follower.paths.get(t.port)
        header = f"tx2setup: board {t.name} at USB port {t.port}, massflash"
        if device_log is None or not device_log.exists():
            log.write_text(f"{header}\ntx2setup: {flash_argv[0]} never started this board; see massflash.log\n")
            status = "timed out" if flashed.timed_out else "failed"
            detail = "not started by the massflash tool (was it still in recovery mode?)"
        else:
            text = device_log.read_text(errors="replace")
            log.write_text(f"{header}; copied from {device_log}\n{text}")
            if any(SUCCESS_LINE.search(ln) for ln in text.splitlines()):
                status, detail = "flashed", ""
            elif flashed.timed_out:
                status, detail = "timed out", f"no result after {timeout_s:g} s"
            else:
                status, detail = "failed", _last_line(device_log)
        on_event(Event(t.name, status=status))
        results.append(BoardResult(t.name, t.port, t.module, status, flashed.duration_s, log, detail))
    return results
