"""Boards that log in as a sudo user with a password, as a freshly flashed Jetson does
(l4t_create_default_user.sh; design.md section 9): the become password reaches Ansible
in each way a user gives it, a board without it fails with one line while the others go
on, and the password never shows in argv, logs, records or ansible-runner's artifacts."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import SimFleetHandle
from tests.secret_scan import files_holding, scan_argv
from tx2setup import provision
from tx2setup.sim.board import SimBoard

# only the validate_inventory role runs (tag `always`): fact gathering, the first task
# that needs sudo, is what these tests are about
ONLY_FIRST_ROLE = "validate_inventory"


def _copy_without_become(inventory: Path, dest: Path, extra: dict[str, str]) -> Path:
    """The sim inventory in a dir without its vaulted group_vars, with host vars added."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in inventory.read_text().splitlines():
        if line.startswith("tx2setup_vault_password_file="):
            continue
        name = line.split(" ", 1)[0]
        lines.append(f"{line} {extra[name]}" if name in extra and "ansible_host=" in line else line)
    out = dest / "lab.ini"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_a_board_without_its_password_fails_alone_with_one_line(
    sim_fleet: SimFleetHandle, fresh_board: Callable[..., tuple[SimBoard, Path]], tmp_path: Path
) -> None:
    given, _ = fresh_board("tx2", "4.6.4")
    missing, _ = fresh_board("tx2", "4.6.4")
    both = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / "become-pair.ini", names=[given.name, missing.name])
    inv = _copy_without_become(both, tmp_path / "lab", {given.name: "ansible_become_password=nvidia"})
    result = provision.run(inv, tags=ONLY_FIRST_ROLE, use_cache=False)
    assert result.hosts[given.name].status == "ok", result.hosts[given.name]
    bad = result.hosts[missing.name]
    assert bad.status == "failed"
    assert bad.message.startswith("sudo on the board asks for a password and none was given")
    assert "-K/--ask-become-pass" in bad.message and "\n" not in bad.message
    wrong = _copy_without_become(both, tmp_path / "wrong", {missing.name: "ansible_become_password=not-it"})
    result = provision.run(inv if False else wrong, limit=missing.name, tags=ONLY_FIRST_ROLE, use_cache=False)
    assert result.hosts[missing.name].message.startswith("sudo on the board refused the become password")


def test_the_become_password_never_shows_in_argv_logs_or_records(
    sim_fleet: SimFleetHandle, fresh_board: Callable[..., tuple[SimBoard, Path]], tmp_path: Path
) -> None:
    board, _ = fresh_board("tx2", "4.6.4")
    password = "pw-" + secrets.token_hex(12)
    # chpasswd reads the new password on stdin (as root through sudo: no root login)
    code, _, err = sim_fleet.run(board, f"echo 'nvidia:{password}' | chpasswd")
    assert code == 0, err
    inv = _copy_without_become(
        sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / f"{board.name}-pw.ini", names=[board.name]),
        tmp_path / "lab",
        {},
    )
    pw_file = tmp_path / "become-pass"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o600)
    run_dir = tmp_path / "runs"
    env = {**os.environ, "TX2SETUP_CACHE": str(run_dir)}
    exe = str(Path(sys.executable).with_name("tx2setup"))
    needles = [password.encode()]
    seen: list[str] = []
    stop = threading.Event()
    scanner = threading.Thread(target=scan_argv, args=(needles, stop, seen), daemon=True)
    scanner.start()
    try:
        by_file = subprocess.run(
            [exe, "provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache", "--json"],
            env={**env, "ANSIBLE_BECOME_PASSWORD_FILE": str(pw_file)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        # -K: the prompt reads the password from stdin when there is no terminal
        by_prompt = subprocess.run(
            [exe, "provision", "-i", str(inv), "--tags", ONLY_FIRST_ROLE, "--no-cache", "-K", "--json"],
            env=env,
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        stop.set()
        scanner.join()
    assert by_file.returncode == 0, by_file.stderr
    assert by_prompt.returncode == 0, by_prompt.stderr
    assert not seen, f"the password was in a process's argv: {seen[:3]}"
    for out in (by_file.stdout, by_file.stderr, by_prompt.stdout, by_prompt.stderr):
        assert password not in out
    assert not files_holding(run_dir, needles)
    # the -K answer went through a private file that is gone once the run ended
    assert not [p for p in Path("/tmp").glob("tx2setup-become-*") if p.stat().st_uid == os.getuid()]
    shutil.rmtree(run_dir)
