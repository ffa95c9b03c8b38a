"""Process and mount inspection through /proc, and waiting on conditions with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (a zombie we fathered is reaped here)."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def all_pids() -> list[int]:
    return [int(d.name) for d in PROC.iterdir() if d.name.isdigit()]


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(pid)
    return kids


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    kids = children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pids_with_mount(fragment: str) -> list[int]:
    """Processes whose mount table mentions `fragment` (e.g. 'upperdir=/x/upper,')."""
    found = []
    for pid in all_pids():
        try:
            text = (PROC / str(pid) / "mountinfo").read_text(errors="replace")
        except OSError:
            continue
        if fragment in text:
            found.append(pid)
    return found


def ns_init(pids: list[int]) -> list[int]:
    """Of these pids, the ones that are PID 1 of their own (nested) PID namespace."""
    out = []
    for pid in pids:
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                parts = line.split()
                if len(parts) > 2 and parts[-1] == "1":
                    out.append(pid)
    return out


def signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def rss_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB from smaps_rollup; (0, 0) if the process is gone."""
    rss = pss = 0
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return 0, 0
    for line in text.splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def ssh_banner(address: str, port: int = 22, timeout: float = 0.5) -> bool:
    """True once an SSH server answers on address:port with its identification string."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def logins_open(top: int) -> bool:
    """True once the board whose launcher is `top` (unshare -> nspawn -> systemd) lets users
    log in: its /run/nologin is gone. systemd-tmpfiles creates that file at boot
    (tmpfiles.d/systemd-nologin.conf) and systemd-user-sessions.service removes it; until then
    pam_nologin(8) refuses every user but root."""
    kids = children_map()
    for nspawn in kids.get(top, []):
        for child in kids.get(nspawn, []):
            try:
                if (PROC / str(child) / "comm").read_text().strip() == "systemd":
                    return not (PROC / str(child) / "root" / "run" / "nologin").exists()
            except OSError:
                continue
    return False


def port_in_use(address: str, port: int) -> bool:
    """True if something listens on address:port (we try to bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a TIME_WAIT left by our own probes must not read as "in use";
        # Linux still refuses the bind while a listener holds the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def wait_for(cond: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `cond` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
