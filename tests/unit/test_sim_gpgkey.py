"""Unit: the sim's apt signing key signs, and leaves no gpg-agent behind (it would outlive `sim down`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tx2setup.sim import gpgkey
from tx2setup.sim.procs import wait_for


def agents_of(home: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "gpg-agent" in argv and str(home) in argv:
            found.append(f"{entry.name}: {argv}")
    return found


@pytest.mark.skipif(shutil.which("gpg") is None or shutil.which("gpgconf") is None, reason="needs gpg and gpgconf")
def test_signing_leaves_no_agent(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    release = tmp_path / "Release"
    release.write_text("Origin: test\n")
    with gpgkey.agent_stopped_after(home):
        gpgkey.sign_release(home, release)
        assert agents_of(home)  # gpg did start one: the check below can fail
    assert (tmp_path / "InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    assert (tmp_path / "Release.gpg").exists()
    # gpgconf asks the agent to exit; wait for the process to be gone (a deadline, not a sleep)
    assert wait_for(lambda: not agents_of(home), 10.0), agents_of(home)
