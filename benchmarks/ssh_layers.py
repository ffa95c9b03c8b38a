"""Connect + one command, per board, with each SSH layer the tool could use (issue 15).

    python benchmarks/ssh_layers.py -i INVENTORY [--repeat N]

For the first board of the inventory, N times each: OpenSSH (`ssh -F cfg`, a new connection
every time, as `status` would make one per board), OpenSSH through a control master (what
verify does: one connection per board, every later command a client of it), paramiko
(what `status` used) and fabric (the card's choice; it drives paramiko underneath).
Each run opens the connection, runs `true` and closes. Prints median and min in ms as JSON.
fabric is no dependency of tx2setup any more (this measurement is why): `pip install fabric`
to include it; without it, its row is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tx2setup import fleet
from tx2setup.connection import SshTarget, close_master, open_master, write_ssh_config


def _openssh(cfg: Path, name: str, master: bool) -> Callable[[], None]:
    extra = [] if master else ["-o", "ControlMaster=no", "-o", "ControlPath=none"]

    def once() -> None:
        subprocess.run(["ssh", "-F", str(cfg), *extra, name, "true"], check=True, stdin=subprocess.DEVNULL)

    return once


def _paramiko(t: SshTarget) -> Callable[[], None]:
    import paramiko

    def once() -> None:
        client = paramiko.SSHClient()
        client.load_host_keys(os.path.expanduser(t.known_hosts or "~/.ssh/known_hosts"))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(t.host, port=t.port, username=t.user, key_filename=t.key_file, allow_agent=False,
                       look_for_keys=False)  # fmt: skip
        _, out, _ = client.exec_command("true")
        out.channel.recv_exit_status()
        client.close()

    return once


def _fabric(t: SshTarget) -> Callable[[], None]:
    import fabric
    import paramiko

    def once() -> None:
        conn = fabric.Connection(
            t.host,
            user=t.user,
            port=t.port,
            connect_kwargs={"key_filename": t.key_file, "allow_agent": False, "look_for_keys": False},
        )
        conn.client.load_host_keys(os.path.expanduser(t.known_hosts or "~/.ssh/known_hosts"))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        conn.run("true", hide=True)
        conn.close()

    return once


def _time(fn: Callable[[], None], repeat: int) -> dict[str, float]:
    fn()  # first connection warms caches (key files, DNS) for every layer alike
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1), "n": repeat}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-i", "--inventory", required=True)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    board = fleet.load(args.inventory).boards[0]
    target = SshTarget.from_board(board)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_ssh_config([target], Path(tmp))
        out = {"board": board.name, "openssh_new_connection": _time(_openssh(cfg, board.name, False), args.repeat)}
        if open_master(cfg, board.name, 30) is None:
            out["openssh_control_master"] = _time(_openssh(cfg, board.name, True), args.repeat)
            close_master(cfg, board.name)
        out["paramiko"] = _time(_paramiko(target), args.repeat)
        try:
            out["fabric"] = _time(_fabric(target), args.repeat)
        except ImportError:
            out["fabric"] = {"skipped": "fabric is not installed"}  # type: ignore[dict-item]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
