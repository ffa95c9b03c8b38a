"""The sim's apt signing key: made once, kept in $TX2SETUP_CACHE/sim/gnupg.

Boards trust its public half at /etc/apt/trusted.gpg.d/jetson-ota-public.asc, where real
boards keep NVIDIA's key, so the local repository is used exactly like NVIDIA's: signed,
without [trusted=yes].
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tx2setup.sim.hostcmd import run

UID = "tx2setup sim apt repository (STAND-IN, not NVIDIA) <sim@tx2setup.invalid>"


def _env(home: Path) -> dict[str, str]:
    return {"GNUPGHOME": str(home)}


def ensure_key(home: Path) -> str:
    """Create the signing key if missing; return its fingerprint."""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    fpr = _fingerprint(home)
    if fpr:
        return fpr
    run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            UID,
            "ed25519",
            "sign",
            "never",
        ],
        "creating the sim apt signing key",
        env=_env(home),
    )
    fpr = _fingerprint(home)
    assert fpr, "gpg made no key"
    return fpr


def _fingerprint(home: Path) -> str:
    out = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], "listing gpg keys", env=_env(home))
    for line in out.splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    return ""


def public_key(home: Path) -> str:
    return run(["gpg", "--batch", "--armor", "--export", ensure_key(home)], "exporting the sim apt key", env=_env(home))


def sign_release(home: Path, release: Path) -> None:
    """Write InRelease (clear-signed) and Release.gpg (detached) next to `release`."""
    fpr = ensure_key(home)
    base = ["gpg", "--batch", "--yes", "--local-user", fpr, "--digest-algo", "SHA256"]
    run([*base, "--clearsign", "-o", str(release.with_name("InRelease")), str(release)], "signing", env=_env(home))
    run([*base, "-abs", "-o", str(release.with_name("Release.gpg")), str(release)], "signing", env=_env(home))


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for this homedir (it would outlive `sim down`)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            env={**os.environ, **_env(home)},
            capture_output=True,
            timeout=30,
            check=False,
        )


@contextlib.contextmanager
def agent_stopped_after(home: Path) -> Iterator[None]:
    """Run a block that uses the key, then stop the agent the block started, however it ends."""
    try:
        yield
    finally:
        if home.is_dir():
            stop_agent(home)
