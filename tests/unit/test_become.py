"""Unit: the become (sudo) password: how each verb takes it, and that it travels only in files."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tx2setup import become
from tx2setup.cli import main
from tx2setup.errors import UserError


def test_private_password_file_is_0600_in_a_0700_dir_and_removed(tmp_path: Path) -> None:
    with become.private_password_file("s3cret-pw") as path:
        p = Path(path)
        assert p.read_text() == "s3cret-pw\n"
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    assert not p.exists() and not p.parent.exists()


def test_private_password_file_is_removed_when_the_run_fails() -> None:
    with pytest.raises(RuntimeError), become.private_password_file("x") as path:
        raise RuntimeError("the run failed")
    assert not Path(path).parent.exists()


def test_password_file_reads_like_ansible_playbook(tmp_path: Path) -> None:
    plain = tmp_path / "pw"
    plain.write_text("  pass word \n\nsecond line is part of it\n")
    # ansible's CLI.get_password_from_file: the whole file, stripped
    assert become.read_password_file(str(plain)) == "pass word \n\nsecond line is part of it"
    script = tmp_path / "pw.sh"
    script.write_text("#!/bin/sh\necho from-a-script\n")
    script.chmod(0o700)
    assert become.read_password_file(str(script)) == "from-a-script"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UserError, match="empty"):
        become.read_password_file(str(empty))
    with pytest.raises(UserError, match="no such file"):
        become.read_password_file(str(tmp_path / "missing"))


def test_ask_and_file_together_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="both given"), become.password_file(True, str(tmp_path / "f")):
        pass


def test_ask_prompts_without_echo_and_hands_on_a_private_file(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, object] = {}

    def fake_prompt(text: str, **kw: object) -> str:
        asked.update(kw, text=text)
        return "typed-pw"

    monkeypatch.setattr(click, "prompt", fake_prompt)
    with become.password_file(True, None) as path:
        assert path is not None and Path(path).read_text() == "typed-pw\n"
    assert asked["hide_input"] is True
    assert not Path(path).exists()


def test_ansible_become_failures_get_one_line_that_says_how_to_give_it() -> None:
    missing = become.explain("Missing sudo password")
    assert missing is not None and "-K/--ask-become-pass" in missing and "ANSIBLE_BECOME_PASSWORD_FILE" in missing
    wrong = become.explain("Incorrect sudo password")
    assert wrong is not None and "refused" in wrong
    assert become.explain("Failed to connect to the host via ssh") is None


def test_plain_and_templated_inventory_passwords() -> None:
    assert become.board_password({"ansible_become_password": "plain"}, None, None) == "plain"
    assert become.board_password({"ansible_become_pass": "old-name"}, None, None) == "old-name"
    # a lookup is Ansible's to evaluate; tx2setup's own SSH layer cannot
    assert become.board_password({"ansible_become_password": "{{ lookup('env', 'X') }}"}, None, None) is None
    assert become.board_password({}, None, None) is None


def test_vaulted_password_without_vault_file_is_a_user_error() -> None:
    hv = {"ansible_become_password": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n3131\n"}}
    with pytest.raises(UserError, match="vault-encrypted"):
        become.board_password(hv, None, None)


@pytest.mark.parametrize("verb", ["provision", "verify", "status"])
def test_every_board_verb_takes_the_become_options(
    verb: str, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = CliRunner().invoke(main, [verb, "--help"])
    assert res.exit_code == 0
    assert "-K, --ask-become-pass" in res.output and "--become-password-file" in res.output
    inv = tmp_path / "lab.ini"
    inv.write_text("[tx2]\nb1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4\n")
    res = cli(verb, "-i", str(inv), "--become-password-file", str(tmp_path / "nope"))
    assert res.code == 2 and res.out == ""
    (line,) = res.err.strip().splitlines()
    assert line == f"error: become password file {tmp_path / 'nope'}: No such file or directory"
    monkeypatch.setenv("ANSIBLE_BECOME_PASSWORD_FILE", str(tmp_path))
    res = cli(verb, "-i", str(inv))
    assert res.code == 2 and res.err.strip() == f"error: become password file {tmp_path}: is a directory"


def test_flash_takes_the_become_password_only_to_provision_after(cli: Any, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    inv = tmp_path / "lab.ini"
    inv.write_text("[tx2]\nb1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4\n")
    res = cli("flash", "-i", str(inv), "--become-password-file", str(pw))
    assert res.code == 2
    assert res.err.strip() == "error: -K/--become-password-file are for --then-provision (provisioning after the flash)"


def test_then_provision_hands_the_become_password_file_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import types

    from tx2setup.flash import session

    got: list[dict[str, Any]] = []

    def run(inventory_path: str, limit: str, **kw: Any) -> object:
        got.append(kw)
        return types.SimpleNamespace(ok=True, bad_hosts=[])

    monkeypatch.setattr(session.provision, "run", run)
    session.run_provision(tmp_path / "lab.ini", ["a"], become_password_file="/private/pw")
    assert got == [{"become_password_file": "/private/pw"}]
