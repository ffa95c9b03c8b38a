"""The L4T BSP folder (Linux_for_Tegra): find it, check it, build it, prepare it once.

Two sources: `--bsp DIR` (a Linux_for_Tegra the user already has), or a per-L4T cache
at `<cache>/bsp/<l4t>/Linux_for_Tegra`, built from the L4T driver package and the
sample root filesystem tarballs (sha256-pinned) the way NVIDIA's quick start does:
extract the driver package, extract the rootfs into `Linux_for_Tegra/rootfs`, then run
`apply_binaries.sh` once. A marker file records that it ran, so a second flash does not
re-run it.

Seam for the artifact cache (tx2setup/cache.py, written separately): `LocalArtifact`
is a local path plus the sha256 it must have. Today the CLI takes both from flags; when
the cache can fetch L4T tarballs, resolve them there and pass the same `LocalArtifact`s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tx2setup.errors import ChecksumError, EnvironmentProblem, UserError
from tx2setup.matrix import l4t_from_release_line

BSP_DIRNAME = "Linux_for_Tegra"
APPLY_MARKER = ".tx2setup-apply-binaries.json"
REQUIRED_FILES = (
    "flash.sh",
    "apply_binaries.sh",
    "tools/l4t_create_default_user.sh",
    "tools/kernel_flash/l4t_initrd_flash.sh",
)
CACHE_ENV = "TX2SETUP_CACHE"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cache_root() -> Path:
    """~/.cache/tx2setup, or $TX2SETUP_CACHE (the same rule as tx2setup/cache.py)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tx2setup"


def cached_bsp(l4t: str) -> Path:
    return cache_root() / "bsp" / l4t / BSP_DIRNAME


def version_tuple(version: str) -> tuple[int, ...]:
    """'35.1' and '35.1.0' compare equal: pad to three parts."""
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def read_version(bsp: Path) -> str | None:
    """The L4T version a BSP folder holds, read where flash.sh reads it.

    flash.sh sources `nv_tegra/bsp_version` (BSP_BRANCH, BSP_MAJOR, BSP_MINOR) and falls
    back to the first line of `rootfs/etc/nv_tegra_release` ("# R32 (release), REVISION: 7.4").
    """
    bsp_version = bsp / "nv_tegra" / "bsp_version"
    if bsp_version.is_file():
        values = dict(re.findall(r"^\s*(BSP_BRANCH|BSP_MAJOR|BSP_MINOR)=\"?(\d+)\"?", bsp_version.read_text(), re.M))
        if {"BSP_BRANCH", "BSP_MAJOR", "BSP_MINOR"} <= values.keys():
            return f"{values['BSP_BRANCH']}.{values['BSP_MAJOR']}.{values['BSP_MINOR']}"
    release = bsp / "rootfs" / "etc" / "nv_tegra_release"
    if release.is_file():
        lines = release.read_text().splitlines()
        l4t = l4t_from_release_line(lines[0]) if lines else None
        if l4t is not None and l4t.count(".") == 2:  # flash.sh needs major.revision.minor
            return l4t
    return None


def check(bsp: Path, l4t: str, jetpack: str) -> None:
    """Refuse a BSP folder that cannot flash this plan: missing tools, rootfs, or wrong L4T."""
    if not bsp.is_dir():
        raise EnvironmentProblem(f"BSP folder {bsp} does not exist")
    for rel in REQUIRED_FILES:
        if not (bsp / rel).is_file():
            raise EnvironmentProblem(f"{bsp} is not a Linux_for_Tegra folder: {rel} is missing")
    found = read_version(bsp)
    if found is None:
        raise EnvironmentProblem(f"{bsp}: cannot tell its L4T version (no nv_tegra/bsp_version)")
    if version_tuple(found) != version_tuple(l4t):
        raise EnvironmentProblem(
            f"{bsp} holds L4T {found}, but the plan needs L4T {l4t} (JetPack {jetpack}): "
            f"use the BSP for L4T {l4t} or change jetpack in the inventory"
        )
    if not (bsp / "rootfs" / "etc" / "passwd").is_file():
        raise EnvironmentProblem(f"{bsp}/rootfs holds no root filesystem: extract the sample rootfs tarball into it")


@dataclass(frozen=True)
class LocalArtifact:
    """A tarball on this machine and the sha256 it must have (the cache seam, see above)."""

    path: Path
    sha256: str

    def verify(self, what: str) -> None:
        if not _SHA256.match(self.sha256):
            raise UserError(f"--{what}-sha256: {self.sha256!r} is not 64 lowercase hex digits")
        if not self.path.is_file():
            raise UserError(f"--{what}-tarball: {self.path} does not exist")
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        got = digest.hexdigest()
        if got != self.sha256:
            raise ChecksumError(f"{self.path}: sha256 is {got}, expected {self.sha256}")


def build_from_tarballs(l4t: str, jetpack: str, driver: LocalArtifact, rootfs: LocalArtifact, dest: Path) -> Path:
    """Extract driver package + sample rootfs into `dest` (a `.../Linux_for_Tegra` path).

    Everything is extracted into a staging folder next to the destination and renamed into
    place only when it checks out, so a failed or wrong build leaves nothing behind.
    """
    driver.verify("driver")
    rootfs.verify("rootfs")
    top = dest.parent
    top.parent.mkdir(parents=True, exist_ok=True)
    staging = top.parent / f".{top.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _untar(driver.path, staging)
        built = staging / BSP_DIRNAME
        if not built.is_dir():
            raise EnvironmentProblem(f"{driver.path}: holds no {BSP_DIRNAME}/ folder (not an L4T driver package)")
        (built / "rootfs").mkdir(exist_ok=True)
        _untar(rootfs.path, built / "rootfs")
        check(built, l4t, jetpack)
        if top.exists():
            shutil.rmtree(top)
        staging.rename(top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _untar(archive: Path, into: Path) -> None:
    # GNU tar, as NVIDIA's instructions use (`sudo tar xpf`): it keeps owners, modes and
    # device nodes of the sample rootfs, and detects the compression itself.
    proc = subprocess.run(["tar", "-xpf", str(archive), "-C", str(into)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["tar failed"])[-1]
        raise EnvironmentProblem(f"{archive}: cannot extract: {last}")


def applied(bsp: Path, l4t: str) -> bool:
    """True when apply_binaries.sh already ran on this BSP for this L4T (see the marker)."""
    try:
        data = json.loads((bsp / APPLY_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("l4t") == l4t and data.get("returncode") == 0


def record_applied(bsp: Path, l4t: str, log: Path) -> None:
    marker = {"l4t": l4t, "returncode": 0, "applied_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "log": str(log)}
    tmp = bsp / (APPLY_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(bsp / APPLY_MARKER)


def free_bytes(path: Path) -> int:
    """Free space on the file system that holds `path` (or its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free
