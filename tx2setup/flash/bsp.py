"""The L4T BSP folder (Linux_for_Tegra): find it, check it, build it, prepare it once.

Two sources: `--bsp DIR` (a Linux_for_Tegra the user already has), or a per-L4T cache
at `<cache>/bsp/<l4t>/Linux_for_Tegra`, built the way NVIDIA's quick start does from the
two tarballs of the release (tx2setup/data/l4t_bsp.yaml): the driver package and the
sample root filesystem. They are fetched once through the artifact cache
(tx2setup/cache.py: stored under <cache>/artifacts, sha256 pinned in the inventory's
tx2setup.lock and checked on every use); before anything is extracted, the driver
package's `Linux_for_Tegra/nv_tegra/bsp_version` and its tools are read from the tarball
(tar members, no extraction), so a tarball of another release or one without the tools
this flash needs is refused first. Then: extract the driver package, extract the rootfs
into `Linux_for_Tegra/rootfs`, run `apply_binaries.sh` once. A marker file records that
it ran, so a second flash does not re-run it.

Which tools a flash needs depends on how it flashes (`required_tools`): flash.sh and
apply_binaries.sh always; tools/kernel_flash/l4t_initrd_flash.sh only for a mass flash
or the NVMe path (old releases, e.g. L4T 28.2.1, do not have it); and
tools/l4t_create_default_user.sh for the headless default user (also missing in old
releases: such a BSP is refused by name, since the board would boot into the setup wizard).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tx2setup import cache
from tx2setup.errors import ChecksumError, EnvironmentProblem, UserError
from tx2setup.flash import bsp_data
from tx2setup.matrix import l4t_from_release_line

BSP_DIRNAME = "Linux_for_Tegra"
APPLY_MARKER = ".tx2setup-apply-binaries.json"
FLASH_SH = "flash.sh"
APPLY_BINARIES = "apply_binaries.sh"
INITRD_FLASH = "tools/kernel_flash/l4t_initrd_flash.sh"
CREATE_USER = "tools/l4t_create_default_user.sh"
BSP_VERSION = "nv_tegra/bsp_version"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cached_bsp(l4t: str) -> Path:
    return cache.cache_root() / "bsp" / l4t / BSP_DIRNAME


def required_tools(initrd: bool, default_user: bool = True) -> tuple[str, ...]:
    """The BSP files a flash runs: `initrd` for a mass flash or the NVMe path."""
    need = [FLASH_SH, APPLY_BINARIES]
    if initrd:
        need.append(INITRD_FLASH)
    if default_user:
        need.append(CREATE_USER)
    return tuple(need)


def _why(rel: str) -> str:
    if rel == INITRD_FLASH:
        return "a mass flash and the NVMe path need it (flash boards one at a time with --one-by-one)"
    if rel == CREATE_USER:
        return (
            "without it a flashed board boots into the setup wizard, with no user and no SSH; "
            "flash this board with a JetPack whose BSP has it"
        )
    return "not a complete Linux_for_Tegra"


def version_tuple(version: str) -> tuple[int, ...]:
    """'35.1' and '35.1.0' compare equal: pad to three parts."""
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def read_version(bsp: Path) -> str | None:
    """The L4T version a BSP folder holds, read where flash.sh reads it.

    flash.sh sources `nv_tegra/bsp_version` (BSP_BRANCH, BSP_MAJOR, BSP_MINOR) and falls
    back to the first line of `rootfs/etc/nv_tegra_release` ("# R32 (release), REVISION: 7.4").
    """
    bsp_version = bsp / BSP_VERSION
    if bsp_version.is_file():
        found = _version_from_bsp_version(bsp_version.read_text())
        if found is not None:
            return found
    release = bsp / "rootfs" / "etc" / "nv_tegra_release"
    if release.is_file():
        lines = release.read_text().splitlines()
        l4t = l4t_from_release_line(lines[0]) if lines else None
        if l4t is not None and l4t.count(".") == 2:  # flash.sh needs major.revision.minor
            return l4t
    return None


def _version_from_bsp_version(text: str) -> str | None:
    values = dict(re.findall(r"^\s*(BSP_BRANCH|BSP_MAJOR|BSP_MINOR)=\"?(\d+)\"?", text, re.M))
    if {"BSP_BRANCH", "BSP_MAJOR", "BSP_MINOR"} <= values.keys():
        return f"{values['BSP_BRANCH']}.{values['BSP_MAJOR']}.{values['BSP_MINOR']}"
    return None


def _check_version(where: object, found: str | None, l4t: str, jetpack: str) -> None:
    if found is None:
        raise EnvironmentProblem(f"{where}: cannot tell its L4T version (no {BSP_VERSION})")
    if version_tuple(found) != version_tuple(l4t):
        raise EnvironmentProblem(
            f"{where} holds L4T {found}, but the plan needs L4T {l4t} (JetPack {jetpack}): "
            f"use the BSP for L4T {l4t} or change jetpack in the inventory"
        )


def _check_files(
    where: object, found: str, present: Iterable[str], tools: Iterable[str], boards: Iterable[str]
) -> None:
    have = set(present)
    for rel in tools:
        if rel not in have:
            raise EnvironmentProblem(f"{where}: L4T {found} has no {rel}: {_why(rel)}")
    for board in boards:
        if f"{board}.conf" not in have:
            raise EnvironmentProblem(f"{where}: L4T {found} has no board config {board}.conf (flash.sh {board})")


def check(
    bsp: Path,
    l4t: str,
    jetpack: str,
    tools: Iterable[str] = (FLASH_SH, APPLY_BINARIES),
    boards: Iterable[str] = (),
) -> None:
    """Refuse a BSP folder that cannot flash this plan: wrong L4T, a missing tool or board config, no rootfs."""
    if not bsp.is_dir():
        raise EnvironmentProblem(f"BSP folder {bsp} does not exist")
    if not (bsp / FLASH_SH).is_file():
        raise EnvironmentProblem(f"{bsp} is not a Linux_for_Tegra folder: {FLASH_SH} is missing")
    found = read_version(bsp)
    _check_version(bsp, found, l4t, jetpack)
    assert found is not None
    tools, boards = list(tools), list(boards)
    present = [rel for rel in [*tools, *(f"{b}.conf" for b in boards)] if (bsp / rel).is_file()]
    _check_files(bsp, found, present, tools, boards)
    if not (bsp / "rootfs" / "etc" / "passwd").is_file():
        raise EnvironmentProblem(f"{bsp}/rootfs holds no root filesystem: extract the sample rootfs tarball into it")


@dataclass(frozen=True)
class TarballInfo:
    """What the driver package holds, read from its tar members (nothing extracted)."""

    version: str | None
    members: frozenset[str] = field(default_factory=frozenset)  # paths under Linux_for_Tegra/, of those asked for


def scan_driver_package(path: Path, wanted: Iterable[str]) -> TarballInfo:
    """Read `Linux_for_Tegra/nv_tegra/bsp_version` and look for `wanted` files in the tarball.

    Streams through the archive once (a .tbz2 has no index) and stops as soon as
    everything asked for was seen.
    """
    want = set(wanted)
    seen: set[str] = set()
    version: str | None = None
    prefix = BSP_DIRNAME + "/"
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not name.startswith(prefix):
                    continue
                rel = name[len(prefix) :]
                if rel == BSP_VERSION and member.isfile():
                    fh = tar.extractfile(member)
                    version = _version_from_bsp_version(fh.read().decode(errors="replace")) if fh else None
                elif rel in want and (member.isfile() or member.issym()):
                    seen.add(rel)
                if version is not None and want <= seen:
                    break
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EnvironmentProblem(f"{path}: cannot read the tarball: {exc}") from None
    return TarballInfo(version, frozenset(seen))


def check_driver_package(
    path: Path, l4t: str, jetpack: str, tools: Iterable[str], boards: Iterable[str] = ()
) -> TarballInfo:
    """Refuse a driver package of another release, or one without the tools/board configs needed."""
    tools, boards = list(tools), list(boards)
    info = scan_driver_package(path, [*tools, *(f"{b}.conf" for b in boards)])
    _check_version(path, info.version, l4t, jetpack)
    assert info.version is not None
    _check_files(path, info.version, info.members, tools, boards)
    return info


@dataclass(frozen=True)
class LocalArtifact:
    """A tarball on this machine and the sha256 it must have (from the artifact cache's pin)."""

    path: Path
    sha256: str

    def verify(self, what: str) -> None:
        if not _SHA256.match(self.sha256):
            raise UserError(f"{what} {self.path}: sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if not self.path.is_file():
            raise UserError(f"{what} {self.path} does not exist")
        got = cache.sha256_file(self.path)
        if got != self.sha256:
            raise ChecksumError(f"{self.path}: sha256 is {got}, expected {self.sha256}")


def fetch_tarballs(
    l4t: str, jetpack: str, lock_path: Path, mirror: str | None = None
) -> tuple[LocalArtifact, LocalArtifact]:
    """The release's driver package and sample rootfs, through the artifact cache (fetched once, pinned).

    A download or cached copy that does not match its pin (tx2setup.lock, or the data
    file's sha256) raises ChecksumError and nothing is kept or extracted.
    """
    driver, rootfs = fetch_tarball_artifacts(l4t, jetpack, lock_path, mirror)
    return LocalArtifact(driver.path, driver.sha256), LocalArtifact(rootfs.path, rootfs.sha256)


def fetch_tarball_artifacts(
    l4t: str, jetpack: str, lock_path: Path, mirror: str | None = None
) -> tuple[cache.Artifact, cache.Artifact]:
    """`fetch_tarballs` with the cache's own records (URL, size, bytes fetched now): also
    what `tx2setup cache sync --with-bsp` shows."""
    rel = bsp_data.load().release(l4t)
    if rel is None:
        raise EnvironmentProblem(
            f"no BSP download is known for L4T {l4t} (JetPack {jetpack}) in tx2setup/data/l4t_bsp.yaml: "
            "pass --bsp DIR (a Linux_for_Tegra folder for that release)"
        )
    store = cache.ArtifactCache(cache.LockFile.load(lock_path))  # under cache.cache_root()
    out = []
    for tarball in (rel.driver, rel.rootfs):
        try:
            out.append(store.fetch(tarball.url_from(mirror), tarball.sha256 or None))
        except EnvironmentProblem as exc:  # not ChecksumError: that one stays as it is (exit 5)
            raise EnvironmentProblem(
                f"no BSP for L4T {l4t} (JetPack {jetpack}) yet, and {exc.message}: pass --bsp DIR "
                "(a Linux_for_Tegra folder), or --bsp-mirror URL where the tarballs are served"
            ) from None
    return out[0], out[1]


def build_from_tarballs(
    l4t: str,
    jetpack: str,
    driver: LocalArtifact,
    rootfs: LocalArtifact,
    dest: Path,
    tools: Iterable[str] = (FLASH_SH, APPLY_BINARIES),
) -> Path:
    """Extract driver package + sample rootfs into `dest` (a `.../Linux_for_Tegra` path).

    Everything is extracted into a staging folder next to the destination and renamed into
    place only when it checks out, so a failed or wrong build leaves nothing behind.
    """
    driver.verify("driver package")
    rootfs.verify("sample rootfs")
    top = dest.parent
    top.parent.mkdir(parents=True, exist_ok=True)
    staging = top.parent / f".{top.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _untar(driver.path, staging)
        built = staging / BSP_DIRNAME
        _refuse_links_out(driver.path, staging, built)
        if not built.is_dir():
            raise EnvironmentProblem(f"{driver.path}: holds no {BSP_DIRNAME}/ folder (not an L4T driver package)")
        (built / "rootfs").mkdir(exist_ok=True)
        _untar(rootfs.path, built / "rootfs")
        check(built, l4t, jetpack, tools)
        if top.exists():
            shutil.rmtree(top)
        staging.rename(top)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _refuse_links_out(archive: Path, staging: Path, built: Path) -> None:
    """A driver package whose Linux_for_Tegra or Linux_for_Tegra/rootfs is a link would have
    the sample rootfs (extracted next, as root) written wherever the link points."""
    for path in (built, built / "rootfs"):
        if path.is_symlink() or (path.exists() and not path.resolve().is_relative_to(staging.resolve())):
            target = str(os.readlink(path) if path.is_symlink() else path.resolve())
            raise UserError(
                f"{archive}: {path.relative_to(staging)} is a link (to {target!r}), "
                "not a folder: refusing this driver package"
            )


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
