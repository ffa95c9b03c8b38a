"""Hostile inventories (issue 13): values with newlines or control characters, IPv6 scope
ids, over-long URL file names, rich and Jinja markup get one line naming file, host and
field, exit 2, and nothing is touched (the same check as tests/unit/test_inventory_errors.py).
What is accepted reaches ssh_config one value per line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.test_inventory_errors import check_error, write
from tx2setup import fleet
from tx2setup.connection import SshTarget, write_ssh_config

BASE = {"ansible_host": "10.0.0.1", "jetson_module": "tx2", "jetpack": "4.6.4"}


def yaml_inventory(tmp_path: Path, **hostvars: object) -> Path:
    """A YAML inventory of one board `b1` (JSON is YAML: every escape survives as is)."""
    doc = {"all": {"hosts": {"b1": {**BASE, **hostvars}}}}
    return write(tmp_path, "lab.yml", json.dumps(doc))


BAD = [
    # (case, host vars, field named in the error, words of the error)
    (
        "newline in ssh args",
        {"ansible_ssh_common_args": "-o Ciphers=aes128-ctr\nProxyCommand sh"},
        "ansible_ssh_common_args",
        "control character",
    ),
    ("carriage return in user", {"ansible_user": "nvidia\r"}, "ansible_user", "control character"),
    ("ESC sequence in power mode", {"power_mode": "\x1b[2J\x1b[31mMAXN"}, "power_mode", "control character"),
    ("C1 CSI in serial", {"board_serial": "\x9b31m1423"}, "board_serial", "control character"),
    (
        "NUL in a tx2setup_ var",
        {"tx2setup_cache_url": "http://10.0.0.2\x00:8000"},
        "tx2setup_cache_url",
        "control character",
    ),
    ("newline in a component", {"components": ["ros", "caffe\n"]}, "components", "control character"),
    (
        "newline in a key file",
        {"ansible_ssh_private_key_file": "/k\nHost *"},
        "ansible_ssh_private_key_file",
        "control character",
    ),
    ("IPv6 scope id with a command", {"ansible_host": "fe80::1%$(reboot)"}, "ansible_host", "scope id"),
    ("IPv6 scope id with a space", {"ansible_host": "fe80::1%eth0 -oProxyCommand=x"}, "ansible_host", "scope id"),
    ("IPv6 scope id too long", {"ansible_host": "fe80::1%" + "e" * 16}, "ansible_host", "scope id"),
    (
        "over-long URL file name",
        {"zed_sdk_url": "https://example.com/" + "z" * 230 + ".run"},
        "zed_sdk_url",
        "file name is 234 bytes",
    ),
    (
        "over-long URL",
        {"caffe_source_url": "https://example.com/" + "d/" * 1100 + "c.tar.gz"},
        "caffe_source_url",
        "characters long",
    ),
    (
        "Jinja in ssh args",
        {"ansible_ssh_common_args": "{{ lookup('pipe', 'touch /tmp/tx2-pwned') }}"},
        "ansible_ssh_common_args",
        "Jinja markup",
    ),
    (
        "Jinja comment in key file",
        {"ansible_private_key_file": "/k{# x #}"},
        "ansible_private_key_file",
        "Jinja markup",
    ),
    ("Jinja in module", {"jetson_module": "{{ 7*7 }}"}, "jetson_module", "unsafe"),
    ("rich markup in module", {"jetson_module": "[bold red]tx2[/]"}, "jetson_module", "unsafe"),
    ("rich markup in power mode", {"power_mode": "[link=file:///etc/shadow]MAXN[/link]"}, "power_mode", "unsafe"),
    ("shell in a URL", {"zed_sdk_url": "https://example.com/$(id).run"}, "zed_sdk_url", "unsafe"),
]


@pytest.mark.parametrize(("case", "hostvars", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_a_hostile_value_is_one_line_and_exit_2(
    cli: Callable[..., object], tmp_path: Path, case: str, hostvars: dict[str, object], field: str, words: str
) -> None:
    path = yaml_inventory(tmp_path, **hostvars)
    check_error(cli, tmp_path, path, "b1", field, words)
    assert not Path("/tmp/tx2-pwned").exists()


GOOD = [
    ("IPv6 scope id of an interface", {"ansible_host": "fe80::1%eth0"}),
    ("IPv6 scope id by index", {"ansible_host": "fe80::1%2"}),
    ("a multi-line value tx2setup does not read", {"motd": "line one\nline two\n"}),
    ("Jinja where Ansible templates it", {"ansible_become_password": "{{ vault_become_password }}"}),
    ("a URL file name of 200 bytes", {"zed_sdk_url": "https://example.com/" + "z" * 196 + ".run"}),
]


@pytest.mark.parametrize(("case", "hostvars"), GOOD, ids=[g[0] for g in GOOD])
def test_an_unusual_but_harmless_value_is_accepted(
    cli: Callable[..., object], tmp_path: Path, case: str, hostvars: dict[str, object]
) -> None:
    res = cli("inventory", "check", "-i", str(yaml_inventory(tmp_path, **hostvars)), "--json")
    assert res.code == 0, res.err  # type: ignore[attr-defined]


def test_what_is_accepted_reaches_ssh_config_one_value_per_line(tmp_path: Path) -> None:
    path = yaml_inventory(
        tmp_path,
        ansible_host="fe80::1%eth0",
        ansible_ssh_common_args="-o Ciphers=aes128-ctr -o 'SetEnv=A=1 B=2'",
        ansible_user="nvidia",
    )
    board = fleet.load(path).boards[0]
    cfg = write_ssh_config([SshTarget.from_board(board)], tmp_path / "ssh").read_text()
    keys = [line.split()[0] for line in cfg.splitlines()[1:]]
    assert keys.count("HostName") == 1 and "ProxyCommand" not in keys
    assert "  HostName fe80::1%eth0" in cfg.splitlines()
