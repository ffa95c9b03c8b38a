"""Secrets never show (issue 13): the vault password and the become password (vaulted in
the inventory's group_vars, as the emulated fleet and a real lab keep it) are in no
process's argv while `provision`, `verify`, `status` and the plain `ansible-playbook` run,
nor in their output, run records, ansible-runner's artifacts (including any environment it
saves), the history database or the reports. Files that hold them are 0600.

The become password by file and by -K during provision is covered by
tests/integration/test_become.py; the flash user's password by tests/flash/test_flash_credentials.py."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import SimFleetHandle
from tests.secret_scan import files_holding, scan_argv
from tx2setup.sim import inventory as siminv
from tx2setup.sim.board import SimBoard

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ONLY_FIRST_ROLE = "validate_inventory"


def _lab_with_secrets(sim_fleet: SimFleetHandle, board: SimBoard, lab: Path, become: str, vault: str) -> Path:
    """The board's inventory in `lab`, its sudo password `become` vaulted with `vault`."""
    inv = sim_fleet.fleet.write_inventory(lab / "lab.ini", names=[board.name])
    vault_file = lab / "vault-pass"
    vault_file.write_text(vault + "\n")
    vault_file.chmod(0o600)
    vars_file = lab / siminv.BECOME_VARS
    vars_file.write_text(siminv.become_vars(become, vault, sim_fleet.fleet.layout.fleet))
    text = re.sub(
        r"(?m)^tx2setup_vault_password_file=.*$", f"tx2setup_vault_password_file={vault_file}", inv.read_text()
    )
    inv.write_text(text)
    return inv


def test_vault_and_become_passwords_show_nowhere(
    sim_fleet: SimFleetHandle, fresh_board: Callable[..., tuple[SimBoard, Path]], tmp_path: Path
) -> None:
    board, _ = fresh_board("tx2", "4.6.4")
    become = "become-" + secrets.token_hex(12)
    vault = "vault-" + secrets.token_hex(12)
    code, _, err = sim_fleet.run(board, f"echo 'nvidia:{become}' | chpasswd")  # stdin, not argv
    assert code == 0, err
    inv = _lab_with_secrets(sim_fleet, board, tmp_path / "lab", become, vault)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "TX2SETUP_CACHE": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    tx = str(BIN / "tx2setup")
    verbs = {
        "provision": [tx, "provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache"],
        "verify": [
            tx,
            "verify",
            "-i",
            str(inv),
            "--duration",
            "1",
            "--json",
            str(out / "v.json"),
            "--junit",
            str(out / "v.xml"),
            "--html",
            str(out / "v.html"),
        ],
        "status": [tx, "status", "-i", str(inv), "--json"],
        "report": [tx, "report", "--json", str(out / "r.json"), "--html", str(out / "r.html")],
        "plain play": [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inv),
            str(ROOT / "playbooks" / "site.yml"),
            "--tags",
            ONLY_FIRST_ROLE,
            "--vault-password-file",
            str(tmp_path / "lab" / "vault-pass"),
        ],
    }
    needles = [become.encode(), vault.encode()]
    seen: list[str] = []
    stop = threading.Event()
    scanner = threading.Thread(target=scan_argv, args=(needles, stop, seen), daemon=True)
    scanner.start()
    procs = {}
    try:
        for verb, argv in verbs.items():
            procs[verb] = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        stop.set()
        scanner.join()
    # the verbs did reach the board and used sudo (else nothing here was tested)
    assert procs["provision"].returncode == 0, procs["provision"].stderr[-1500:]
    assert procs["plain play"].returncode == 0, procs["plain play"].stdout[-1500:]
    assert procs["status"].returncode == 0, procs["status"].stdout + procs["status"].stderr
    assert (out / "v.json").exists() and (tmp_path / "data" / "tx2setup" / "history.db").exists()
    assert not seen, f"a secret was in a process's argv: {seen[:3]}"
    shown = [verb for verb, p in procs.items() for n in (become, vault) if n in p.stdout + p.stderr]
    assert not shown, f"a secret in the output of {shown}"
    # run records, ansible-runner's artifacts, the history (WAL included), the reports
    leaked = [
        *files_holding(tmp_path / "cache", needles),
        *files_holding(tmp_path / "data", needles),
        *files_holding(out, needles),
    ]
    leaked += files_holding(tmp_path / "ansible-home", needles)
    assert not leaked, f"a secret was written to {leaked[:5]}"
    for secret_file in (tmp_path / "lab" / "vault-pass", tmp_path / "lab" / siminv.BECOME_VARS):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600, secret_file
    # what ansible-runner keeps of the environment: nothing (suppress_env_files), else private
    for env_dir in (tmp_path / "cache").rglob("runner/env"):
        for f in env_dir.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
