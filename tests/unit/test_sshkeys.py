"""The passphrase-protected board key (issue 13): refused in one line naming the boards when
no ssh-agent holds it, accepted when one does. Real ssh-keygen, ssh-agent and ssh-add; the
passphrase reaches ssh-add through SSH_ASKPASS (a 0600 file), never through an argv."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tx2setup import sshkeys
from tx2setup.errors import UserError

pytestmark = pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="needs OpenSSH's client tools")


def _keygen(path: Path, passphrase: str, fmt: list[str] | None = None) -> Path:
    # the passphrase is in ssh-keygen's argv here, in the test's own setup only
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path), *(fmt or [])], check=True)
    return path


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        assert _wait_socket(sock), "ssh-agent did not start"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_socket(sock: Path) -> bool:
    from tx2setup.sim.procs import wait_for

    return wait_for(sock.exists, 10)


def _add(key: Path, passphrase: str, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text(passphrase + "\n")
    secret.chmod(0o600)
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\ncat {secret}\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    subprocess.run(["ssh-add", str(key)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)


def test_key_formats_are_read_without_the_passphrase(tmp_path: Path) -> None:
    plain = _keygen(tmp_path / "plain", "")
    locked = _keygen(tmp_path / "locked", "pp-" + secrets.token_hex(4))
    pem = tmp_path / "pem"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "x" * 8, "-f", str(pem)], check=True
    )
    assert sshkeys.inspect(plain)[0] is False
    encrypted, public = sshkeys.inspect(locked)
    pub_text = (tmp_path / "locked.pub").read_text().split()[1]
    assert encrypted and public is not None and base64.b64encode(public).decode() == pub_text
    assert sshkeys.inspect(pem)[0] is True
    assert sshkeys.inspect(tmp_path / "missing") == (False, None)


def test_a_locked_key_without_an_agent_is_one_line_naming_the_boards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    locked = _keygen(tmp_path / "locked", "pp-" + secrets.token_hex(4))
    plain = _keygen(tmp_path / "plain", "")
    sshkeys.require_usable([("a", str(plain)), ("b", None)])  # nothing to say
    with pytest.raises(UserError) as err:
        sshkeys.require_usable([("car-1", str(locked)), ("car-2", str(locked)), ("car-3", str(plain))])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("car-1, car-2: SSH key ") and "car-3" not in msg
    assert "no ssh-agent runs" in msg and f"ssh-add {locked}" in msg


def test_an_agent_holding_the_key_lets_it_through(tmp_path: Path, agent: str) -> None:
    passphrase = "pp-" + secrets.token_hex(8)
    locked = _keygen(tmp_path / "locked", passphrase)
    other = _keygen(tmp_path / "other", "other-" + secrets.token_hex(4))
    with pytest.raises(UserError, match="the ssh-agent does not hold it"):
        sshkeys.require_usable([("car-1", str(locked))])
    _add(locked, passphrase, tmp_path)
    sshkeys.require_usable([("car-1", str(locked))])
    with pytest.raises(UserError, match=f"car-2: SSH key {other} .* does not hold it"):
        sshkeys.require_usable([("car-1", str(locked)), ("car-2", str(other))])
