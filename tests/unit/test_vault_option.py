"""--vault-password-file on every verb that loads an inventory: a real vaulted group_vars
file (encrypted with ansible-vault), and provision's hand-over to ansible-runner, which is
replaced by a recorder (stand-in: no playbook runs, no board is needed)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest


def _one_error(res: Any) -> str:
    assert res.code == 2, res.err
    assert res.out == ""
    (line,) = res.err.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in line
    return str(line)


VERBS = [("status",), ("verify",), ("provision",), ("cache", "sync"), ("flash",)]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: "-".join(v))
def test_missing_password_file_is_one_line_naming_it(cli, tmp_path: Path, verb: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-such-pass"
    line = _one_error(cli(*verb, "-i", str(tmp_path / "lab.ini"), "--vault-password-file", str(missing)))
    assert f"vault password file {missing}: No such file or directory" in line, line


def test_password_file_from_the_environment_is_checked_too(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path))
    line = _one_error(cli("status", "-i", str(tmp_path / "lab.ini")))
    assert f"vault password file {tmp_path}: is a directory" in line, line


def test_status_with_wrong_password_is_one_line(cli, vaulted: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    line = _one_error(cli("status", "-i", str(vaulted["inv"]), "--vault-password-file", str(vaulted["wrong"])))
    assert line.startswith(f"error: {vaulted['group_vars']}: ") and "does not decrypt it" in line, line
    line = _one_error(cli("status", "-i", str(vaulted["inv"])))
    assert "vault-encrypted; pass --vault-password-file" in line, line


class _Recorder:
    """Stand-in for ansible_runner: records what provision hands it and reports every
    board as processed without running anything."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def run(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return types.SimpleNamespace(status="successful", rc=0, stats={"processed": {"b1": 1}, "ok": {"b1": 1}})


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Recorder:
    rec = _Recorder()
    fake = types.ModuleType("ansible_runner")
    fake.run = rec.run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ansible_runner", fake)
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    return rec


def test_provision_hands_the_password_file_to_ansible(  # type: ignore[no-untyped-def]
    cli, vaulted: dict[str, Path], recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # relative on the command line: ansible-playbook runs elsewhere, so it must arrive absolute
    monkeypatch.chdir(vaulted["secret"].parent)
    res = cli("provision", "-i", str(vaulted["inv"]), "--no-cache", "--json", "--vault-password-file", "vault-pass")
    assert res.code == 0, res.err
    (call,) = recorder.calls
    assert call["envvars"]["ANSIBLE_VAULT_PASSWORD_FILE"] == str(vaulted["secret"].resolve())
    # the plan (resolved from the decrypted group_vars) went to the playbook as well
    assert "b1" in res.out


def test_provision_takes_the_password_file_from_the_environment(  # type: ignore[no-untyped-def]
    cli, vaulted: dict[str, Path], recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(vaulted["secret"]))
    assert cli("provision", "-i", str(vaulted["inv"]), "--no-cache", "--json").code == 0
    assert recorder.calls[0]["envvars"]["ANSIBLE_VAULT_PASSWORD_FILE"] == str(vaulted["secret"].resolve())


def test_provision_without_a_password_file_sets_none(
    cli, tmp_path: Path, recorder: _Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inv = tmp_path / "lab.ini"
    inv.write_text("[j]\nb1 ansible_host=127.0.0.1 ansible_port=2201 jetson_module=tx2 jetpack=4.6.4\n")
    assert cli("provision", "-i", str(inv), "--no-cache", "--json").code == 0
    assert "ANSIBLE_VAULT_PASSWORD_FILE" not in recorder.calls[0]["envvars"]


def test_verify_sets_the_password_file_for_the_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tx2setup import verify

    seen: dict[str, Any] = {}

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.update(kw)
        return subprocess.CompletedProcess(cmd, 1, "", "no tests ran")

    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.setattr(verify.subprocess, "run", fake_run)
    verify.run_checks("local://", "local", tmp_path / "p.json", tmp_path / "j.xml", 5, None, "/abs/pass")
    assert seen["env"]["ANSIBLE_VAULT_PASSWORD_FILE"] == "/abs/pass"
    verify.run_checks("local://", "local", tmp_path / "p.json", tmp_path / "j.xml", 5)
    assert "ANSIBLE_VAULT_PASSWORD_FILE" not in seen["env"]


def test_checks_conftest_reads_the_password_file(vaulted: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from tx2setup.checks import conftest

    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(vaulted["wrong"]))
    from tx2setup.errors import InventoryError

    with pytest.raises(InventoryError, match="does not decrypt it"):
        conftest._plans_from_inventory(str(vaulted["inv"]))
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(vaulted["secret"]))
    assert conftest._plans_from_inventory(str(vaulted["inv"]))["b1"]["l4t"] == "32.7.4"
