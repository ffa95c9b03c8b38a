"""`flash --write-become-vault`: the sudo password, vaulted for Ansible, and never in argv or logs."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from flash_helpers import TX2_PAIR, hooks, sysfs

from tx2setup import fleet
from tx2setup.errors import UserError
from tx2setup.flash import session
from tx2setup.flash.session import FlashOptions

PASSWORD = "s3cret-pass"  # TX2_PAIR's flash_password
VAULT_PASS = "v4ult-key"


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch, calls: Path) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("two-tx2")))
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)


@pytest.fixture
def vault_pass(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(VAULT_PASS + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def openssl_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `openssl` first on PATH: records its argv, then runs the real one."""
    record = tmp_path / "openssl-argv.txt"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "openssl"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {record}\nexec /usr/bin/openssl "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin")
    return record


def _decrypt(value: Any) -> str:
    text = value["__ansible_vault"] if isinstance(value, dict) else str(value)
    return bytes(VaultLib([("default", VaultSecret(VAULT_PASS.encode()))]).decrypt(text.encode())).decode()


def _flash_args(inv: Path, bsp: Path, tmp_path: Path, *extra: str) -> list[str]:
    args = ["flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp), "--accept-license"]
    return [*args, "--log-dir", str(tmp_path / "logs"), "--min-free-gib", "0", "--one-by-one", *extra]


def test_vault_written_and_the_password_nowhere_else(  # type: ignore[no-untyped-def]
    cli,
    write_inventory: Callable[..., Path],
    bsp: Path,
    calls: Path,
    tmp_path: Path,
    vault_pass: Path,
    openssl_argv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ps_dump = tmp_path / "ps.txt"
    monkeypatch.setenv("STANDIN_PS_DUMP", str(ps_dump))
    inv = write_inventory(TX2_PAIR)
    target = inv.parent / "group_vars" / "tx2" / "become.yml"
    args = _flash_args(inv, bsp, tmp_path, "--no-wait", "--json", "--write-become-vault", str(target))
    res = cli(*args, "--vault-password-file", str(vault_pass))
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["ok"] and summary["become_vault"] == str(target)
    assert summary["next"].endswith(f"--limit car-tx2-01,car-tx2-02 --vault-password-file {vault_pass}")

    # the file: 0600, one inline-vaulted variable, and Ansible reads it for both boards
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert "ansible_become_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n" in text and PASSWORD not in text
    boards = fleet.load(inv, vault_password_file=str(vault_pass)).boards
    assert {b.name: _decrypt(b.hostvars["ansible_become_password"]) for b in boards} == {
        "car-tx2-01": PASSWORD,
        "car-tx2-02": PASSWORD,
    }
    assert not list(target.parent.glob(".become.yml.*"))  # no temporary file left

    # never in an argv: the BSP tools', every process's while they ran, openssl's
    assert calls.read_text().count("l4t_create_default_user.sh") == 2 and PASSWORD not in calls.read_text()
    assert "l4t_create_default_user.sh -u nvidia" in ps_dump.read_text() and PASSWORD not in ps_dump.read_text()
    assert "passwd -6 -stdin" in openssl_argv.read_text() and PASSWORD not in openssl_argv.read_text()
    # nor in a log, the output or the summary
    logs = list((tmp_path / "logs").rglob("*"))
    assert len(logs) >= 2 and all(PASSWORD not in p.read_text() for p in logs if p.is_file())
    assert PASSWORD not in res.out + res.err


def test_then_provision_gets_the_vault_password_file(  # type: ignore[no-untyped-def]
    cli,
    write_inventory: Callable[..., Path],
    bsp: Path,
    tmp_path: Path,
    vault_pass: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chained provision runs with the vault password file the vault was written with (env here)."""
    import socket

    from tx2setup import provision
    from tx2setup.provision import HostResult, ProvisionResult

    target = tmp_path / "inv" / "group_vars" / "all.yml"
    seen: list[tuple[str, str | None, str]] = []

    def run(inventory_path: str, limit: str, vault_password_file: str | None = None) -> ProvisionResult:
        seen.append((limit, vault_password_file, target.read_text()))
        host = HostResult(limit, "ok", 40, 3, 0, 2, "", "", "log", 1.0)
        return ProvisionResult("successful", 0, False, {limit: host}, 1.0, str(tmp_path), "", False, 0, 0)

    monkeypatch.setattr(provision, "run", run)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(vault_pass))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        inv = TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", "")
        inv_path = write_inventory(inv.replace("usb_port=1-2.1", f"usb_port=1-2.1 ansible_port={port}"))
        args = _flash_args(inv_path, bsp, tmp_path, "--then-provision", "--wait-timeout", "5", "--json")
        res = cli(*args, "--write-become-vault", str(target))
    assert res.code == 0, res.err
    assert len(seen) == 1 and seen[0][:2] == ("car-tx2-01", str(vault_pass))
    assert "ansible_become_password: !vault |" in seen[0][2]  # written before provisioning started


@pytest.fixture
def opts(tmp_path: Path, bsp: Path, write_inventory: Callable[..., Path]) -> Callable[..., FlashOptions]:
    def make(target: Path, **kw: object) -> FlashOptions:
        base: dict[str, object] = {
            "inventory": write_inventory(TX2_PAIR),
            "sysfs_root": sysfs("two-tx2"),
            "bsp": bsp,
            "log_dir": tmp_path / "logs",
            "accept_license": True,
            "wait": False,
            "one_by_one": True,
            "become_vault": target,
        }
        base.update(kw)
        return FlashOptions(**base)  # type: ignore[arg-type]

    return make


def test_refusals_before_anything_runs(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path, vault_pass: Path
) -> None:
    gv = tmp_path / "inv" / "group_vars"
    with pytest.raises(UserError, match=r"needs a vault password to encrypt with: pass --vault-password-file") as exc:
        session.prepare(opts(gv / "tx2.yml"), hooks())
    assert exc.value.exit_code == 2
    shared = gv / "tx2.yml"
    shared.parent.mkdir(parents=True)
    shared.write_text("ntp_server: 10.0.0.1\nansible_become_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  00\n")
    with pytest.raises(UserError, match=r"tx2\.yml: holds other variables \(ntp_server\); give it a file of its own"):
        session.prepare(opts(shared, vault_password_file=str(vault_pass)), hooks())
    with pytest.raises(UserError, match=r"elsewhere\.yml: Ansible would not read it for car-tx2-01, car-tx2-02"):
        session.prepare(opts(tmp_path / "elsewhere.yml", vault_password_file=str(vault_pass)), hooks())
    with pytest.raises(UserError, match=r"Ansible would not read it for car-tx2-01, car-tx2-02"):
        session.prepare(opts(gv / "nx" / "become.yml", vault_password_file=str(vault_pass)), hooks())
    with pytest.raises(UserError, match=r"Ansible would not read it"):  # one host's file, two boards
        session.prepare(opts(tmp_path / "inv/host_vars/car-tx2-01.yml", vault_password_file=str(vault_pass)), hooks())
    assert not calls.exists() and not (tmp_path / "logs").exists()
    # accepted: a file of its own in the group's folder, in all's, or an earlier one of ours
    for ok in (gv / "tx2" / "become.yml", gv / "all" / "become.yml", gv / "all.yaml"):
        session.prepare(opts(ok, vault_password_file=str(vault_pass)), hooks())
    shared.write_text("ansible_become_password: x\n")
    session.prepare(opts(shared, vault_password_file=str(vault_pass)), hooks())
