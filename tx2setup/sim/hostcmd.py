"""Running host tools: one place that turns a failed command into an EnvironmentProblem."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tx2setup.errors import EnvironmentProblem, NotRootError

REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "unshare": "util-linux",
    "ssh-keygen": "openssh-client",
    "dpkg-deb": "dpkg",
    "dpkg-scanpackages": "dpkg-dev",
    "gpg": "gnupg",
}


def require_root(verb: str = "sim") -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            f"tx2setup {verb} needs root (emulated boards use mount namespaces and systemd-nspawn); run it with sudo"
        )


def require_tools(names: Sequence[str] = tuple(REQUIRED_TOOLS)) -> None:
    for name in names:
        if shutil.which(name) is None:
            raise EnvironmentProblem(
                f"{name} not found: install the Debian package {REQUIRED_TOOLS.get(name, name)} (scripts/setup.sh does)"
            )


def run(
    argv: Sequence[str],
    what: str,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    log: Path | None = None,
) -> str:
    """Run argv; return stdout. On failure raise EnvironmentProblem naming `what` and the last error line."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        list(argv), cwd=cwd, env=full_env, input=input_text, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        where = f" (log: {log})" if log is not None else ""
        raise EnvironmentProblem(f"{what} failed: {last}{where}")
    return proc.stdout
