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
import shutil
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
from tx2setup.sim.procs import wait_for

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


def _agent_with(key: Path, passphrase_file: Path, sock: Path) -> subprocess.Popen[bytes]:
    """An ssh-agent on `sock` holding `key`; ssh-add reads the passphrase through SSH_ASKPASS
    (a script that prints the 0600 file: never an argv), SSH_ASKPASS_REQUIRE=force (ssh(1))."""
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    assert wait_for(sock.exists, 10), "ssh-agent did not start"
    askpass = sock.parent / "askpass"
    askpass.write_text(f"#!/bin/sh\ncat {passphrase_file}\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    subprocess.run(["ssh-add", str(key)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return agent


def test_a_key_passphrase_goes_through_ssh_agent_only(sim_fleet: SimFleetHandle, tmp_path: Path) -> None:
    """The boards' key, passphrase-protected: with ssh-agent holding it, status and provision
    reach the board and the passphrase is in no argv, output, record or artifact; with no
    agent, each verb refuses in one line naming the board and saying ssh-add (exit 2)."""
    board = sim_fleet.board(module="tx2")
    passphrase = "phrase-" + secrets.token_hex(12)
    lab = tmp_path / "lab"
    inv = sim_fleet.fleet.write_inventory(lab / "lab.ini", names=[board.name])
    key = lab / "id_locked"
    shutil.copy(board.key_path, key)
    key.chmod(0o600)
    # test setup, before any scan: ssh-keygen takes the new passphrase only as an argument
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", str(key)], check=True)
    secret = lab / "passphrase"
    secret.write_text(passphrase + "\n")
    secret.chmod(0o600)
    inv.write_text(
        re.sub(r"(?m)^ansible_ssh_private_key_file=.*$", f"ansible_ssh_private_key_file={key}", inv.read_text())
    )
    base = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    base |= {"TX2SETUP_CACHE": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}
    base["ANSIBLE_HOME"] = str(tmp_path / "ansible-home")
    tx = str(BIN / "tx2setup")
    verbs = {
        "status": [tx, "status", "-i", str(inv), "--json"],
        "provision": [tx, "provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache"],
    }
    for verb, argv in verbs.items():  # no agent: one line, exit 2, no prompt (stdin closed)
        p = subprocess.run(
            argv, env=base, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
        assert p.returncode == 2 and len(errors) == 1, (verb, p.returncode, p.stderr[-800:])
        assert f"error: {board.name}: SSH key {key} is passphrase-protected" in errors[0] and "ssh-add" in errors[0]
        assert "Traceback" not in p.stderr

    sock = tmp_path / "agent.sock"
    agent = _agent_with(key, secret, sock)
    seen: list[str] = []
    stop = threading.Event()
    scanner = threading.Thread(target=scan_argv, args=([passphrase.encode()], stop, seen), daemon=True)
    scanner.start()
    try:
        env = {**base, "SSH_AUTH_SOCK": str(sock)}
        procs = {
            verb: subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
            for verb, argv in verbs.items()
        }
    finally:
        stop.set()
        scanner.join()
        agent.terminate()
        agent.wait(timeout=10)
    assert procs["status"].returncode == 0, procs["status"].stdout + procs["status"].stderr
    assert procs["provision"].returncode == 0, procs["provision"].stderr[-1500:]
    assert not seen, f"the passphrase was in a process's argv: {seen[:3]}"
    assert not [v for v, p in procs.items() if passphrase in p.stdout + p.stderr]
    leaked = [*files_holding(tmp_path / "cache", [passphrase.encode()])]
    leaked += files_holding(tmp_path / "data", [passphrase.encode()])
    leaked += files_holding(tmp_path / "ansible-home", [passphrase.encode()])
    assert not leaked, f"the passphrase was written to {leaked[:5]}"
