"""A board whose SSH host key changed after it was first trusted is refused by every verb
that connects (issue 13): `provision`, `verify`, `status`, `flash --then-provision` (its
provisioning seam) and the plain `ansible-playbook` run. Host key checking is never
switched off behind the user's back: ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False
unless told otherwise (ansible_runner/config/_base.py, `_prepare_env`), and Ansible's ssh
plugin then passes `-o StrictHostKeyChecking=no` before the inventory's own options, so
the inventory's `StrictHostKeyChecking=yes` lost (ssh_config(5): the first value wins).

The key is changed on the running board, within ControlPersist (120 s, ansible.cfg) of a
trusted run: a tx2setup run must not reach the board over an earlier run's SSH master
either (each run has its own control path dir: connection.private_control_dir)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import SimFleetHandle
from tests.secret_scan import process_argvs
from tx2setup import fleet, provision
from tx2setup.errors import RemoteError
from tx2setup.flash import session
from tx2setup.sim.board import SimBoard

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ONLY_FIRST_ROLE = "validate_inventory"  # tag `always`: facts, then the first sudo task
# what OpenSSH prints for a changed key with StrictHostKeyChecking=yes (sshconnect.c)
CHANGED = ("host key verification failed", "remote host identification has changed", "host key")


def _scan_for_disabled_checks(address: str, stop: threading.Event, seen: list[str]) -> None:
    """Every ssh process to the board whose argv switches host key checking off."""
    while not stop.is_set():
        for raw in process_argvs():
            argv = raw.replace(b"\0", b" ").decode(errors="replace")
            if address in argv and "StrictHostKeyChecking=no" in argv:
                seen.append(argv)


def _change_host_key(sim_fleet: SimFleetHandle, board: SimBoard) -> None:
    """A new ed25519 host key on the running board (as after a reflash); the fleet's known_hosts keeps the old one."""
    key = "/etc/ssh/ssh_host_ed25519_key"
    code, _, err = sim_fleet.run(board, f"rm -f {key} {key}.pub && ssh-keygen -q -t ed25519 -N '' -f {key}")
    assert code == 0, err
    # each connection's sshd reads the key afresh (ssh.socket); the board now shows the new key
    scan = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", board.address], capture_output=True, text=True, timeout=30, check=False
    )
    new = scan.stdout.split()
    assert len(new) >= 3, scan.stderr
    assert new[2] not in board.known_hosts_path.read_text(), "the board's host key did not change"


def _end_masters(control_dir: Path) -> None:
    for sock in control_dir.iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=30)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tx2setup"), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _plain_play(inv: Path, vault: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inv),
            str(ROOT / "playbooks" / "site.yml"),
            "--tags",
            ONLY_FIRST_ROLE,
            "--vault-password-file",
            vault,
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _refused(proc: subprocess.CompletedProcess[str], board: str) -> str:
    text = proc.stdout + proc.stderr
    lines = [ln for ln in text.splitlines() if board in ln and any(c in ln.lower() for c in CHANGED)]
    return lines[0] if lines else ""


def test_a_changed_host_key_is_refused_by_every_verb(
    sim_fleet: SimFleetHandle,
    fresh_board: Callable[..., tuple[SimBoard, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    board, inv = fresh_board("tx2", "4.6.4")
    vault = fleet.load(inv).vault_password_file
    assert vault
    env = {
        **os.environ,
        "TX2SETUP_CACHE": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),  # the history DB, apart from the user's
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        # one control path dir for every run before and after (what ~/.ansible/cp is for a
        # user): the plain runs' ControlPersist masters stay there
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    env.pop("ANSIBLE_HOST_KEY_CHECKING", None)  # the defaults, as a new user has them
    # trusted: both kinds of run reach the board and leave their SSH masters behind
    first_play = _plain_play(inv, vault, env)
    assert first_play.returncode == 0, first_play.stdout[-2000:]
    first = _cli("provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    known = board.known_hosts_path.read_bytes()

    _change_host_key(sim_fleet, board)
    seen: list[str] = []
    stop = threading.Event()
    scanner = threading.Thread(target=_scan_for_disabled_checks, args=(board.address, stop, seen), daemon=True)
    scanner.start()
    try:
        # A reflash reboots the board, which ends the SSH masters (ControlPersist) that the
        # plain run left in its control path dir; here the board keeps running, so they are ended
        # by hand. (Through a live master the plain run still reaches the board: that master
        # is the connection authenticated with the old key, to the same sshd.)
        _end_masters(tmp_path / "cp")
        play = _plain_play(inv, vault, env)
        prov = _cli("provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache", env=env)
        ver = _cli("verify", "-i", str(inv), "--duration", "1", env=env)
        stat = _cli("status", "-i", str(inv), env=env)
        # the flash seam provisions the whole stack: only its first role here
        monkeypatch.setattr(provision, "run", functools.partial(provision.run, tags=ONLY_FIRST_ROLE, use_cache=False))
        with pytest.raises(RemoteError, match=rf"provisioning failed on: {board.name} \(unreachable\)"):
            session.run_provision(inv, [board.name])
    finally:
        stop.set()
        scanner.join()
    wrong = {
        verb: f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}"
        for verb, proc, code in (("provision", prov, 4), ("verify", ver, 1), ("status", stat, 4), ("play", play, 4))
        if proc.returncode != code or not _refused(proc, board.name)
    }
    assert not seen, f"host key checking switched off: {seen[:2]}"
    assert not wrong, wrong
    assert board.known_hosts_path.read_bytes() == known, "a verb rewrote the fleet's known_hosts"
