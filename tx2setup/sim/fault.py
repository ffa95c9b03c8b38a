"""Faults injected into one emulated board (`tx2setup sim fault BOARD KIND`), and undone.

    from tx2setup.sim import Fleet, fault
    fleet = Fleet(sim_dir)
    fault.wait_for_process(fleet, "tx2-1", ("dpkg",))   # time it by an event on the board
    fault.inject(fleet, "tx2-1", "power-cut")
    fault.clear(fleet, "tx2-1")                          # power back on, network back, ...

What each kind does (and what it cannot do on this host) is in KINDS. A board is a
systemd-nspawn container sharing the host's network namespace and clock, so:
- network faults are nftables rules on the board's own loopback address (the kernel here
  has no netem qdisc, so "flaky" is random packet loss, which TCP turns into delays);
  the board's own connections to 127.0.0.1 (the stand-in upstream) are not affected;
- a board's clock cannot be set apart from the host's (CLOCK_REALTIME has no namespace;
  time namespaces cover only the monotonic and boot-time clocks, time_namespaces(7)), so
  `clock-wrong` is refused with that reason instead of being faked.

Every active fault is recorded in the board's dir (faults.json) so `clear` knows what to
undo, also from another process. `--for S` hands the undo to a detached helper process
(`python -m tx2setup.sim.fault expire ...`) that clears that one fault after S seconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tx2setup.errors import EnvironmentProblem, UserError
from tx2setup.sim import board as boardmod
from tx2setup.sim.board import SimBoard
from tx2setup.sim.control import Fleet
from tx2setup.sim.procs import children_map, cmdline, signal_pid, ssh_banner, wait_for

KINDS = {
    "power-cut": "kills the board's whole process tree at once; down until `sim up` or `sim fault BOARD clear`",
    "net-down": "drops every packet to and from the board's address (nftables)",
    "net-flaky": "drops a share of the packets to and from the board's address at random (nftables)",
    "disk-full": "the board's writable layer is full: every write fails with ENOSPC",
    "apt-locked": "a process on the board holds apt's and dpkg's locks, as unattended-upgrades at first boot",
    "clock-wrong": "not emulated: a container shares the host's clock",
    "sshd-down": "stops the board's SSH listener (ssh.socket); open sessions stay, as with `systemctl stop ssh`",
    "reboot": "shuts the board down cleanly and boots it again; returns when it answers SSH",
}
FLAKY_LOSS_PERCENT = 15
APT_LOCK_SECONDS = 60.0  # how long apt-locked holds the locks unless --for says otherwise
FULL_DIRS = ("etc", "usr", "var", "opt", "home", "root", "srv", "tmp")  # every writable dir of the board
FULL_MOUNT = "/run/tx2sim-full"  # inside the board: the tiny tmpfs its full overlays write to
APT_LOCK_UNIT = "tx2sim-fault-apt-lock"
APT_LOCK_MARK = "/run/tx2sim-apt-locked"
# Named like the real holder: a script's comm is its file name cut to 15 characters, so
# apt says "It is held by process N (unattended-upgr)", as on a fresh Ubuntu board.
APT_LOCK_SCRIPT = "/run/tx2sim-fault/unattended-upgrade"
# apt's and dpkg's lock files, taken in apt's order; fcntl (lockf) locks, as apt and dpkg
# take them (apt-pkg/contrib/fileutl.cc GetLock: fcntl F_SETLK F_WRLCK).
APT_LOCKS = (
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/cache/apt/archives/lock",
    "/var/lib/apt/lists/lock",
)
APT_LOCK_PY = f"""#!/usr/bin/python3
# tx2setup sim fault apt-locked: holds apt's and dpkg's locks for argv[1] seconds
import fcntl, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `systemctl stop` ends it through finally
fds = []
for path in {APT_LOCKS!r}:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    fds.append(fd)
open({APT_LOCK_MARK!r}, "w").close()
try:
    time.sleep(float(sys.argv[1]))
finally:
    os.unlink({APT_LOCK_MARK!r})
"""


# ---- the board's insides, from the host -------------------------------------------------
def _running(b: SimBoard) -> int:
    pid = boardmod.recorded_pid(b)
    if pid is None:
        raise UserError(f"board {b.name}: is down (`tx2setup sim up` first)")
    return pid


def init_pid(b: SimBoard) -> int:
    """Host pid of the board's systemd (PID 1 of the container): unshare -> nspawn -> systemd."""
    top = _running(b)
    kids = children_map()
    for nspawn in kids.get(top, []):
        for child in kids.get(nspawn, []):
            if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                return child
    raise EnvironmentProblem(f"board {b.name}: its systemd is not running yet (still booting?)")


def in_board(b: SimBoard, argv: Sequence[str], what: str, input_text: str | None = None) -> str:
    """Run argv inside the board (its mount, UTS, IPC, PID and cgroup namespaces and root) as root."""
    pid = init_pid(b)
    nsenter = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-p", "-C", "-r", "-w", "--"]
    proc = subprocess.run([*nsenter, *argv], input=input_text, capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise EnvironmentProblem(f"board {b.name}: {what} failed: {tail[-1] if tail else proc.returncode}")
    return proc.stdout


def board_path(b: SimBoard, path: str) -> Path:
    """A path inside the running board, seen from the host (through /proc/PID/root)."""
    return Path(f"/proc/{init_pid(b)}/root") / path.lstrip("/")


def board_processes(b: SimBoard) -> list[tuple[int, str, list[str]]]:
    """(pid inside the board, comm, argv) of every process of the board.

    Read from the board's own /proc (through its root), which lists only its processes:
    polling that every 10 ms costs little, unlike walking the host's whole process table."""
    try:
        proc = board_path(b, "/proc")
        entries = [e for e in proc.iterdir() if e.name.isdigit()]
    except (UserError, EnvironmentProblem, OSError):
        return []
    out = []
    for entry in entries:
        try:
            comm = (entry / "comm").read_text().strip()
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended while we looked
        out.append((int(entry.name), comm, [a.decode(errors="replace") for a in raw.split(b"\0") if a]))
    return out


def wait_for_process(
    fleet: Fleet, name: str, comms: Sequence[str], timeout: float = 300.0, argv_has: str | None = None
) -> int:
    """Block until a process named one of `comms` (and with `argv_has` in its argv) runs on
    the board; return its pid inside the board. The event tests time faults by."""
    b = fleet.board(name)
    found: list[int] = []

    def seen() -> bool:
        for pid, comm, argv in board_processes(b):
            if comm in comms and (argv_has is None or any(argv_has in a for a in argv)):
                found.append(pid)
                return True
        return False

    if not wait_for(seen, timeout, interval=0.01):
        raise TimeoutError(f"board {name}: no {'/'.join(comms)} process within {timeout:g} s")
    return found[0]


# ---- records of active faults ------------------------------------------------------------
def _record_path(b: SimBoard) -> Path:
    return b.board_dir / "faults.json"


@contextmanager
def _records(b: SimBoard) -> Iterator[dict[str, dict[str, object]]]:
    """The board's active faults (kind -> details), read and written under the board's fault lock."""
    with (b.board_dir / "faults.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, dict[str, object]] = json.loads(_record_path(b).read_text())
        except (OSError, ValueError):
            data = {}
        yield data
        tmp = _record_path(b).with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, _record_path(b))


def active(fleet: Fleet, name: str) -> dict[str, dict[str, object]]:
    b = fleet.board(name)
    with _records(b) as data:
        return dict(data)


# ---- the kinds ---------------------------------------------------------------------------
def _nft_table(b: SimBoard) -> str:
    return "tx2sim_" + b.address.replace(".", "_")


def _net(b: SimBoard, loss_percent: int | None) -> None:
    """nftables rules on the board's address only; loss_percent None drops everything."""
    if shutil.which("nft") is None:
        raise EnvironmentProblem("nft not found: install the Debian package nftables (scripts/setup.sh does)")
    match = "" if loss_percent is None else f"numgen random mod 100 < {loss_percent} "
    table = _nft_table(b)
    # a loopback packet passes the output hook once, so one chain sees both directions
    rules = (
        f"table inet {table} {{\n  chain out {{\n    type filter hook output priority -10; policy accept;\n"
        f"    ip saddr {b.address} {match}drop\n    ip daddr {b.address} {match}drop\n  }}\n}}\n"
    )
    _nft_delete(table)
    proc = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"board {b.name}: nft refused the fault rules: {proc.stderr.strip()}")


def _nft_delete(table: str) -> None:
    if shutil.which("nft") is not None:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, check=False)


def _power_cut(b: SimBoard) -> None:
    pid = _running(b)
    # SIGKILL to unshare: --kill-child takes nspawn, and with it the board's PID namespace
    signal_pid(pid, signal.SIGKILL)
    boardmod.kill_strays(b)
    wait_for(lambda: boardmod.recorded_pid(b) is None, 10.0)


def _disk_full(b: SimBoard) -> None:
    """Overlays over every writable dir of the board whose upper layer is a full tmpfs: a
    write anywhere fails with ENOSPC and statvfs shows 0 bytes free, as on a full disk."""
    script = (
        'set -e\nmkdir -p "$1"\nmount -t tmpfs -o size=64k,nr_inodes=64,mode=700 tx2sim-full "$1"\n'
        'shift_root="$1"; shift\nfor d in "$@"; do\n  [ -d "/$d" ] || continue\n'
        '  mkdir "$shift_root/$d" "$shift_root/$d.work"\n'
        '  mount -t overlay tx2sim-full -o "lowerdir=/$d,upperdir=$shift_root/$d,workdir=$shift_root/$d.work" "/$d"\n'
        "done\n"
        # fill the blocks, then the inodes: root's reserve is gone too
        'dd if=/dev/zero of="$shift_root/filler" bs=4k 2>/dev/null || true\n'
        'i=0; while touch "$shift_root/i$i" 2>/dev/null; do i=$((i+1)); done\n'
    )
    in_board(b, ["sh", "-c", script, "sh", FULL_MOUNT, *FULL_DIRS], "filling the disk")


def _disk_unfull(b: SimBoard) -> None:
    script = (
        'for d in "$@"; do grep -q "^tx2sim-full /$d overlay " /proc/mounts && umount -l "/$d"; done\n'
        f"grep -q '^tx2sim-full {FULL_MOUNT} tmpfs ' /proc/mounts && umount -l {FULL_MOUNT}\n"
        f"rmdir {FULL_MOUNT} 2>/dev/null\ntrue\n"
    )
    in_board(b, ["sh", "-c", script, "sh", *reversed(FULL_DIRS)], "freeing the disk")


def _apt_lock(b: SimBoard, seconds: float) -> None:
    script = board_path(b, APT_LOCK_SCRIPT)
    script.parent.mkdir(mode=0o700, exist_ok=True)
    script.write_text(APT_LOCK_PY)
    script.chmod(0o755)
    board_path(b, APT_LOCK_MARK).unlink(missing_ok=True)  # a holder killed harder left it
    in_board(
        b,
        ["systemd-run", "--quiet", f"--unit={APT_LOCK_UNIT}", "--collect", APT_LOCK_SCRIPT, f"{seconds:g}"],
        "starting the lock holder",
    )
    # return once the locks are held, so the caller's next step really meets them
    if not wait_for(lambda: board_path(b, APT_LOCK_MARK).exists(), 30.0):
        raise EnvironmentProblem(f"board {b.name}: the apt lock holder did not take the locks within 30 s")


def _sshd(b: SimBoard, on: bool) -> None:
    in_board(b, ["systemctl", "start" if on else "stop", "ssh.socket"], "switching ssh.socket")
    if not on:  # stopped means nothing answers on port 22 any more
        wait_for(lambda: not ssh_banner(b.address), 10.0)


def _reboot(fleet: Fleet, b: SimBoard) -> None:
    _running(b)
    boardmod.stop(b)
    fleet.start_board(b.name)


# ---- the API -----------------------------------------------------------------------------
def inject(
    fleet: Fleet, name: str, kind: str, duration: float | None = None, loss_percent: int = FLAKY_LOSS_PERCENT
) -> str:
    """Inject one fault; return the one line that says what was done."""
    if kind not in KINDS:
        raise UserError(f"fault kind {kind!r}: not one of {', '.join(KINDS)}")
    if kind == "clock-wrong":
        raise UserError(
            "clock-wrong: an emulated board shares the host's clock (CLOCK_REALTIME has no namespace, "
            "see time_namespaces(7)); it cannot run years behind without changing the host's clock"
        )
    if duration is not None and (duration <= 0 or kind in ("power-cut", "reboot")):
        raise UserError(f"--for: give a positive number of seconds, and only for faults that last ({kind} does not)")
    b = fleet.board(name)
    _inject(fleet, b, kind, duration, loss_percent)
    helper = None
    if duration is not None and kind != "apt-locked":  # the lock holder ends by itself
        helper = _expire_later(fleet, name, kind, duration)
    if kind != "reboot":
        with _records(b) as data:
            data[kind] = {"since": time.time(), "for": duration, "helper": helper}
    tail = f" for {duration:g} s" if duration is not None else ""
    return f"board {name}: {kind}{tail}: {KINDS[kind]}"


def _inject(fleet: Fleet, b: SimBoard, kind: str, duration: float | None, loss_percent: int) -> None:
    if kind == "power-cut":
        _power_cut(b)
    elif kind == "net-down":
        _net(b, None)
    elif kind == "net-flaky":
        if not 0 < loss_percent < 100:
            raise UserError(f"--loss {loss_percent}: give a percentage between 1 and 99")
        _net(b, loss_percent)
    elif kind == "disk-full":
        _running(b)
        _disk_unfull(b)  # at most one layer of it
        _disk_full(b)
    elif kind == "apt-locked":
        _apt_lock(b, duration if duration is not None else APT_LOCK_SECONDS)
    elif kind == "sshd-down":
        _sshd(b, on=False)
    elif kind == "reboot":
        _reboot(fleet, b)


def clear(fleet: Fleet, name: str, kind: str | None = None) -> list[str]:
    """Undo the board's faults (or the one of `kind`); return one line per fault undone."""
    b = fleet.board(name)
    with _records(b) as data:
        kinds = [k for k in list(data) if kind is None or k == kind]
        for k in kinds:
            _stop_helper(data.pop(k).get("helper"))
    # network rules are undone whatever the records say: they outlive a lost record
    if kind in (None, "net-down", "net-flaky"):
        _nft_delete(_nft_table(b))
    up = boardmod.recorded_pid(b) is not None
    for k in kinds:
        if k == "power-cut" and not up:
            fleet.start_board(name)
        elif k == "disk-full" and up:
            _disk_unfull(b)
        elif k == "apt-locked" and up:
            subprocess.run(
                ["nsenter", "-t", str(init_pid(b)), "-m", "-p", "-r", "--", "systemctl", "stop", APT_LOCK_UNIT],
                capture_output=True,
                check=False,
            )
        elif k == "sshd-down" and up:
            _sshd(b, on=True)
    return [f"board {name}: {k} cleared" for k in kinds]


def _stop_helper(pid: object) -> None:
    """End the --for helper of a fault cleared early (never this process: the helper clears too)."""
    if isinstance(pid, int) and pid != os.getpid() and "tx2setup.sim.fault" in cmdline(pid):
        signal_pid(pid, signal.SIGTERM)


def _expire_later(fleet: Fleet, name: str, kind: str, seconds: float) -> int:
    return subprocess.Popen(
        [sys.executable, "-m", "tx2setup.sim.fault", "expire", str(fleet.layout.fleet), name, kind, f"{seconds:g}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command that injected the fault
    ).pid


def _expire_main(argv: list[str]) -> int:
    """`python -m tx2setup.sim.fault expire FLEET BOARD KIND SECONDS`: the --for helper."""
    fleet_dir, name, kind, seconds = argv
    started = time.time()
    time.sleep(float(seconds))  # the fault's length is the point here, not a synchronisation
    fleet = Fleet(fleet_dir)
    rec = active(fleet, name).get(kind)
    since = rec.get("since") if rec else None
    # clear only the fault this helper was started for, not a later one of the same kind
    if isinstance(since, float) and since <= started:
        clear(fleet, name, kind)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["expire"]:
        sys.exit(_expire_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} expire FLEET BOARD KIND SECONDS")
