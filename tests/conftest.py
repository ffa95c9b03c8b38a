"""Shared test helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches what the tests start. A suite launched in the background of a
    non-interactive shell (`cmd &`, nohup, some CI runners) inherits SIGINT ignored (bash(1):
    background commands ignore SIGINT without job control); Python then installs no
    KeyboardInterrupt handler, and every child inherits the ignore, so the Ctrl-C tests
    (tests/flash, tests/integration/test_signals.py) would hang on a process that cannot
    be interrupted. A handler (not SIG_IGN) resets to the default in exec'd children."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the CLI in-process (the real entry point, with its error mapping)."""
    from tx2setup.cli import run

    def invoke(*args: str) -> CliResult:
        code = run(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def venv_bin() -> Path:
    return Path(sys.executable).parent


@pytest.fixture
def vaulted(tmp_path: Path, venv_bin: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An inventory whose board fields live in a vault-encrypted group_vars file."""
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    secret = tmp_path / "vault-pass"
    secret.write_text("s3cret\n")
    (tmp_path / "group_vars").mkdir()
    gv = tmp_path / "group_vars" / "j.yml"
    gv.write_text("jetson_module: tx2\njetpack: '4.6.4'\n")
    subprocess.run(
        [str(venv_bin / "ansible-vault"), "encrypt", "--vault-password-file", str(secret), str(gv)],
        check=True,
        capture_output=True,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah")},
    )
    assert gv.read_text().startswith("$ANSIBLE_VAULT")
    inv = tmp_path / "lab.ini"
    inv.write_text("[j]\nb1 ansible_host=127.0.0.1 ansible_port=2201\n")
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("nope\n")
    return {"inv": inv, "secret": secret, "wrong": wrong, "group_vars": gv}
