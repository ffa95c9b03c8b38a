"""The one SSH layer (tx2setup/connection.py): every ssh option the inventory gives Ansible
reaches the ssh_config that status, verify and testinfra use; host key checking stays on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tx2setup import fleet
from tx2setup.connection import SshTarget, write_ssh_config
from tx2setup.status import status_script, sudo_state


def _target(tmp_path: Path, common_args: str) -> SshTarget:
    (tmp_path / "lab.ini").write_text(
        "[b]\nb1 ansible_host=10.0.0.7 jetson_module=tx2 jetpack=4.6.4 ansible_user=nvidia"
        f" ansible_ssh_common_args='{common_args}'\n"
    )
    (board,) = fleet.load(tmp_path / "lab.ini").boards
    return SshTarget.from_board(board)


def test_every_ssh_option_of_the_inventory_reaches_the_ssh_config(tmp_path: Path) -> None:
    t = _target(tmp_path, "-o ProxyJump=bastion.lab -oServerAliveInterval=7 -J jump2 -o UserKnownHostsFile=/k/kh")
    cfg = write_ssh_config([t], tmp_path / "ssh").read_text()
    assert "  ProxyJump bastion.lab\n" in cfg and "  ServerAliveInterval 7\n" in cfg and "  ProxyJump jump2\n" in cfg
    assert "UserKnownHostsFile /k/kh" in cfg and "StrictHostKeyChecking yes" in cfg
    # OpenSSH itself reads the file and resolves the board as Ansible's ssh plugin would
    out = subprocess.run(
        ["ssh", "-G", "-F", str(tmp_path / "ssh" / "ssh_config"), "b1"], capture_output=True, text=True, check=True
    ).stdout
    assert "hostname 10.0.0.7" in out and "user nvidia" in out and "proxyjump bastion.lab" in out
    assert "stricthostkeychecking true" in out


def test_the_layer_keeps_its_own_host_key_policy_and_connection_sharing(tmp_path: Path) -> None:
    t = _target(tmp_path, "-o ControlPath=/tmp/x -o StrictHostKeyChecking=yes")
    assert ("ControlPath", "/tmp/x") not in t.options and t.strict


def test_status_script_reads_the_password_only_from_stdin() -> None:
    assert "sudo -k -S" in status_script(True) and "sudo -k -S" not in status_script(False)
    assert sudo_state("nopw=0\n", False) == "no password needed"
    assert sudo_state("nopw=1\npw=0\n", True) == "ok"
    assert sudo_state("nopw=1\npw=1\n", True) == "password refused"
    assert sudo_state("nopw=1\n", False) == "asks for a password (none given)"
