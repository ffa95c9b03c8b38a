"""`status`: the fleet at a glance, over SSH (the OpenSSH client, as Ansible), in parallel, never hanging.

Every board gets one SSH connection that runs one read-only probe script; each host has
its own deadline, so a dead or stopped board shows as unreachable within the timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tx2setup import board, sshkeys
from tx2setup.connection import SshTarget, run, write_ssh_config
from tx2setup.errors import Tx2SetupError
from tx2setup.matrix import l4t_from_release_line
from tx2setup.results import History

# Read-only probe; sections separated by a marker line. tegrastats runs until killed, so
# take its first line under a timeout.
PROBE = r"""
m=@@tx2setup@@
# the board's uptime is its init's age (a container's /proc/uptime is its host's)
ps -o etimes= -p 1 2>/dev/null || cut -d' ' -f1 /proc/uptime; echo $m
head -n1 /etc/nv_tegra_release 2>/dev/null; echo $m
tr -d '\000' < /sys/firmware/devicetree/base/model 2>/dev/null; echo; echo $m
nvpmodel -q 2>/dev/null; echo $m
timeout 3 tegrastats --interval 500 2>/dev/null | head -n1; echo $m
df -Pk / | tail -n1; echo $m
grep -E '^MemAvailable' /proc/meminfo
"""


@dataclass(frozen=True)
class BoardStatus:
    name: str
    address: str
    reachable: bool
    error: str = ""
    uptime_s: float | None = None
    model: str | None = None
    l4t: str | None = None
    power_mode: str | None = None
    gpu_load_pct: float | None = None
    gpu_temp_c: float | None = None
    disk_free_gb: float | None = None
    mem_free_mb: float | None = None
    last_verify: str | None = None
    sudo: str | None = None  # does the become password open sudo (what provisioning needs)


def parse_probe(text: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split("@@tx2setup@@")]
    parts += [""] * (7 - len(parts))
    uptime, release, model, nvp, tegra, df, mem = parts[:7]
    out: dict[str, Any] = {}
    if uptime:
        out["uptime_s"] = float(uptime.split()[0])
    l4t = l4t_from_release_line(release)
    if l4t:
        out["l4t"] = l4t
    if model:
        out["model"] = model
    mode = parse_nvpmodel_query(nvp)
    if mode is not None:
        out["power_mode"] = f"{mode[1]} {mode[0]}"
    out.update(parse_tegrastats(tegra))
    df_fields = df.split()
    if len(df_fields) >= 4 and df_fields[3].isdigit():
        out["disk_free_gb"] = int(df_fields[3]) / 1024 / 1024
    m = re.search(r"MemAvailable:\s+(\d+)", mem)
    if m:
        out["mem_free_mb"] = int(m.group(1)) / 1024
    return out


def parse_nvpmodel_query(text: str) -> tuple[str, int] | None:
    """(name, id) from `nvpmodel -q`: the "NV Power Mode: NAME" line and the id on the line
    after it. The login user on L4T R32 gets NVPM ERROR lines after the id
    (tests/fixtures/real/nvpmodel-q-r32-nano-default.txt), so the id is not the last line;
    jetson-stats reads it the same way (jtop/core/nvpmodel.py, nvpmodel_query)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.startswith("NV Power Mode:") and lines[i + 1].isdigit():
            return line.split(":", 1)[1].strip(), int(lines[i + 1])
    return None


# A sensor of a power-gated engine reads -256C (AGX Orin's idle GPU and CV engines,
# tests/fixtures/real/tegrastats-r35plus-agx-orin.txt): that is "no reading", not a temperature.
GATED_C = -256.0


def parse_tegrastats(line: str) -> dict[str, float]:
    """GPU load and temperature from one tegrastats line (JetPack 4 to 6 spellings)."""
    out: dict[str, float] = {}
    m = re.search(r"GR3D_FREQ (\d+)%", line)
    if m:
        out["gpu_load_pct"] = float(m.group(1))
    m = re.search(r"\b(?:GPU|gpu)@(-?[\d.]+)C", line)
    if m and float(m.group(1)) != GATED_C:
        out["gpu_temp_c"] = float(m.group(1))
    return out


def status_script(with_password: bool) -> str:
    """The probe, then how sudo answers, in one remote shell: one connection per board.
    The probe reads nothing (stdin is /dev/null for it); sudo -S reads the password that
    ssh's stdin carries. Fixed text: no user value is ever put in it."""
    script = "{\n" + PROBE + "\n} </dev/null\necho @@tx2setup@@\n"
    script += "sudo -n true 2>/dev/null </dev/null; echo nopw=$?\n"
    if with_password:
        # -S: the password from stdin; -p '': no prompt text; -k: no cached credential counts
        script += "sudo -k -S -p '' true 2>/dev/null; echo pw=$?\n"
    return script


def sudo_state(text: str, password_given: bool) -> str:
    """How sudo answered the login user: without a password, with the one given, or not."""
    if re.search(r"^nopw=0$", text, re.M):
        return "no password needed"
    if not password_given:
        return "asks for a password (none given)"
    return "ok" if re.search(r"^pw=0$", text, re.M) else "password refused"


def probe_board(target: SshTarget, timeout: float, password: str | None = None, cfg: Path | None = None) -> BoardStatus:
    """One board's status within `timeout` seconds overall, whatever the board does: one
    ssh process (tx2setup/connection.py, configured as Ansible connects) that is killed at
    the deadline, so a board that answers slowly, or never, cannot hold `status`."""
    if target.known_hosts:
        known_hosts = os.path.expanduser(target.known_hosts)  # ssh expands ~ too; the message names the file
        if not os.path.isfile(known_hosts):
            return BoardStatus(
                target.name, target.host, False, error=f"known_hosts file {known_hosts} is missing (UserKnownHostsFile)"
            )
    with tempfile.TemporaryDirectory(prefix="tx2setup-status-") as tmp:
        config = cfg or write_ssh_config([target], Path(tmp))
        try:
            proc = run(
                config,
                target.name,
                status_script(password is not None),
                timeout,
                stdin=None if password is None else password + "\n",
                share=False,
            )
        except subprocess.TimeoutExpired:
            return BoardStatus(target.name, target.host, False, error=f"no answer within {timeout:g} s")
    if proc.returncode == 255:  # ssh's own failure: connection, host key, authentication
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return BoardStatus(target.name, target.host, False, error=lines[-1][:160] if lines else "ssh failed")
    text = proc.stdout
    probe, _, sudo = text.rpartition("@@tx2setup@@")
    return BoardStatus(
        target.name, target.host, True, sudo=sudo_state(sudo, password is not None), **parse_probe(probe)
    )


def _last_verify(names: list[str], db: str | None) -> dict[str, str]:
    """Each board's last verify result, as one cell."""
    last: dict[str, str] = {}
    try:
        with History(db) as history:
            for name in names:
                r = history.last_result(name)
                if r is not None:
                    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.finished_at))
                    last[name] = f"{r.verdict} {r.e2e_fps or 0:.1f} FPS ({when})"
    except Tx2SetupError:  # an unreadable history must not hide the fleet's state
        return {}
    return last


def fleet_status(
    inventory: str | Path | board.Fleet,
    limit: str | None = None,
    timeout: float = 5.0,
    db: str | None = None,
    on_result: Callable[[BoardStatus], None] | None = None,
    vault_password_file: str | None = None,
    become_password_file: str | None = None,
) -> list[BoardStatus]:
    """Probe every board. `inventory` is a path, or a fleet already loaded (then `limit`
    and `vault_password_file` were applied when it was loaded). Plans are not resolved:
    status shows every board, whatever its plan says."""
    if isinstance(inventory, board.Fleet):
        fleet = inventory
    else:
        fleet = board.load(inventory, limit=limit, vault_password_file=vault_password_file, plans=False)
    boards = fleet.with_become_passwords(become_password_file).boards
    sshkeys.require_usable((b.name, b.ssh.key_file) for b in fleet.boards)  # no passphrase prompt mid-run
    last = _last_verify(fleet.names, db)
    results: list[BoardStatus] = []
    with (
        tempfile.TemporaryDirectory(prefix="tx2setup-status-") as tmp,
        ThreadPoolExecutor(max_workers=max(1, min(32, len(boards)))) as pool,
    ):
        cfg = write_ssh_config([b.ssh for b in boards], Path(tmp))
        futures = [pool.submit(probe_board, b.ssh, timeout, b.become_password, cfg) for b in boards]
        for fut in as_completed(futures):
            st = fut.result()
            st = BoardStatus(**{**st.__dict__, "last_verify": last.get(st.name)})
            results.append(st)
            if on_result:
                on_result(st)
    return sorted(results, key=lambda s: s.name)
