"""The one HTTP server a fleet runs while it is up: serves the upstream stand-ins.

A plain `python -m http.server` bound to 127.0.0.1 (boards share the host's network, so
they reach it there), started as its own session so it outlives `tx2setup sim up`, and
stopped by `sim down`. Its pid is only ever signalled after its command line is checked.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tx2setup.errors import EnvironmentProblem
from tx2setup.sim.procs import alive, cmdline, port_in_use, signal_pid, wait_for

DEFAULT_PORT = 8470
ADDRESS = "127.0.0.1"


def is_ours(pid: int | None, root: Path) -> bool:
    if pid is None or not alive(pid):
        return False
    argv = cmdline(pid)
    return "http.server" in argv and str(root) in argv


def pick_port(preferred: int = DEFAULT_PORT) -> int:
    for port in range(preferred, preferred + 100):
        if not port_in_use(ADDRESS, port):
            return port
    raise EnvironmentProblem(f"no free TCP port on {ADDRESS} from {preferred} to {preferred + 99}")


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{ADDRESS}:{port}/", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start(root: Path, port: int, log: Path) -> int:
    if port_in_use(ADDRESS, port):
        raise EnvironmentProblem(
            f"{ADDRESS}:{port} is taken by another program; the fleet's boards expect their stand-in "
            "repository there (stop that program, or `tx2setup sim down --destroy` and start a new fleet)"
        )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", ADDRESS, "--directory", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if not wait_for(lambda: answers(port) or proc.poll() is not None, 10.0) or proc.poll() is not None:
        proc.kill()
        raise EnvironmentProblem(f"the sim's HTTP server did not come up on {ADDRESS}:{port} (log: {log})")
    return proc.pid


def stop(pid: int | None, root: Path) -> None:
    if pid is None or not is_ours(pid, root):
        return
    signal_pid(pid, signal.SIGTERM)
    if not wait_for(lambda: not alive(pid), 5.0):
        signal_pid(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 5.0)
