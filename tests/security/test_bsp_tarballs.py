"""Hostile BSP tarballs: refused (or kept inside the BSP folder) before anything is written outside.

Each case builds a driver package with one hostile member, runs flash.bsp.build_from_tarballs
as `tx2setup flash` does (as root: GNU tar keeps owners), and then checks a decoy folder
"outside" that every hostile member aims at: it must stay empty.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tx2setup import cache
from tx2setup.errors import Tx2SetupError
from tx2setup.flash import bsp


def _add(tar: tarfile.TarFile, name: str, kw: dict[str, object] | None = None, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    for key, value in (kw or {}).items():
        setattr(info, key, value)
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _tarball(path: Path, build: Callable[[tarfile.TarFile], None]) -> bsp.LocalArtifact:
    with tarfile.open(path, "w:gz") as tar:
        build(tar)
    return bsp.LocalArtifact(path, cache.sha256_file(path))


def _rootfs(tmp: Path) -> bsp.LocalArtifact:
    return _tarball(tmp / "rootfs.tbz2", lambda t: _add(t, "etc/hostname", data=b"jetson\n"))


Member = tuple[str, dict[str, object]]


def _driver_with(outside: Path) -> dict[str, list[Member]]:
    o = str(outside)
    ok: Member = ("Linux_for_Tegra/flash.sh", {})
    sym, hard = {"type": tarfile.SYMTYPE}, {"type": tarfile.LNKTYPE}
    return {
        "dotdot": [ok, (f"Linux_for_Tegra/../../{outside.name}/evil", {})],
        "absolute": [ok, (f"{o}/evil", {})],
        "symlink-then-write": [ok, ("Linux_for_Tegra/out", {**sym, "linkname": o}), ("Linux_for_Tegra/out/evil", {})],
        "hardlink-out": [ok, ("Linux_for_Tegra/hl", {**hard, "linkname": f"{o}/victim"})],
        "rootfs-is-symlink": [ok, ("Linux_for_Tegra/rootfs", {**sym, "linkname": o})],
        "bsp-dir-is-symlink": [("Linux_for_Tegra", {**sym, "linkname": o})],
    }


def _members(members: list[Member]) -> Callable[[tarfile.TarFile], None]:
    def build(tar: tarfile.TarFile) -> None:
        for name, kw in members:
            _add(tar, name, kw)

    return build


CASES = ["dotdot", "absolute", "symlink-then-write", "hardlink-out", "rootfs-is-symlink", "bsp-dir-is-symlink"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_driver_package_writes_nothing_outside(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep me\n")
    before = sorted(p.name for p in outside.iterdir())
    driver = _tarball(tmp_path / "driver.tbz2", _members(_driver_with(outside)[case]))
    dest = tmp_path / "bsp" / "Linux_for_Tegra"
    with pytest.raises(Tx2SetupError) as err:  # refused, or stopped by the BSP check after it
        bsp.build_from_tarballs("32.7.4", "4.6.4", driver, _rootfs(tmp_path), dest, tools=("flash.sh", "nope.sh"))
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in outside.iterdir()) == before, f"{case} wrote outside the BSP folder"
    assert (outside / "victim").read_text() == "keep me\n"
    assert not dest.exists()
    assert not any(p.name.startswith(".bsp.partial") for p in tmp_path.iterdir())


def test_rootfs_symlink_is_refused_by_name(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    driver = _tarball(tmp_path / "driver.tbz2", _members(_driver_with(outside)["rootfs-is-symlink"]))
    with pytest.raises(Tx2SetupError, match="rootfs is a link"):
        bsp.build_from_tarballs("32.7.4", "4.6.4", driver, _rootfs(tmp_path), tmp_path / "b" / "Linux_for_Tegra")
    assert list(outside.iterdir()) == []
