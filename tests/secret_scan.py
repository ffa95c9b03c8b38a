"""Where a secret could leak, looked at directly: every process's argv while a verb runs,
and every file a run leaves behind (shared by the become and security tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path


def process_argvs() -> Iterator[bytes]:
    """Every live process's argv as /proc shows it (NUL-separated); gone processes are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield (entry / "cmdline").read_bytes()
        except OSError:
            continue


def scan_argv(needles: list[bytes], stop: threading.Event, seen: list[str]) -> None:
    """Read every process's argv over and over until `stop`; keep each that holds a needle."""
    while not stop.is_set():
        for argv in process_argvs():
            if any(n in argv for n in needles):
                seen.append(argv.replace(b"\0", b" ").decode(errors="replace"))


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """The regular files under `root` that hold any needle."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [str(path) for n in needles if n in data]
    return found
