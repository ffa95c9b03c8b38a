"""Fixtures for the flash tests: a stand-in BSP copy, inventories, tool call records."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from flash_helpers import HOST_FAKES, STANDIN_BSP

from tx2setup.flash import rootfs_user, session


@pytest.fixture
def bsp(tmp_path: Path) -> Path:
    """A fresh copy of the stand-in BSP (the tools write into rootfs/ and initrdlog/)."""
    if os.geteuid() != 0:
        # the stand-ins check for root the way NVIDIA's tools do (and chown files in rootfs/)
        pytest.skip("needs root: the stand-in BSP tools refuse to run otherwise, as the real ones do")
    dest = tmp_path / "Linux_for_Tegra"
    shutil.copytree(STANDIN_BSP, dest, symlinks=True)
    return dest


@pytest.fixture(autouse=True)
def host_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host with qemu-aarch64-static and its binfmt_misc entry (fakes: tests/flash/host_fakes)."""
    monkeypatch.setattr(rootfs_user, "QEMU_AARCH64", HOST_FAKES / "qemu-aarch64-static")
    monkeypatch.setattr(rootfs_user, "BINFMT_DIR", HOST_FAKES / "binfmt_misc")
    monkeypatch.setenv("STANDIN_QEMU_AARCH64", str(HOST_FAKES / "qemu-aarch64-static"))


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STANDIN_CALLS: every stand-in tool appends its command line here."""
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("STANDIN_CALLS", str(path))
    return path


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """A value in the stand-ins' environment, to find any process of ours left running."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("TX2SETUP_TEST_TOKEN", value)
    return value


@pytest.fixture
def write_inventory(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "lab.ini") -> Path:
        path = tmp_path / "inv" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


# ansible-inventory takes about a second per call, and these tests read the same few
# inventories many times: each distinct (contents, limit) goes through it once. (The
# inventories here are single INI files, so their text is all that decides the result.)
_real_load_boards = session.load_boards
_paths: dict[str, Path] = {}


@functools.lru_cache(maxsize=64)
def _cached(text: str, limit: str | None, vault_password_file: str | None) -> list[tuple[object, object]]:
    return list(_real_load_boards(_paths[text], limit, vault_password_file))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def cached_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(inventory: Path, limit: str | None, vault_password_file: str | None = None) -> object:
        text = Path(inventory).read_text()
        _paths[text] = Path(inventory)
        return _cached(text, limit, vault_password_file)

    monkeypatch.setattr(session, "load_boards", load)
