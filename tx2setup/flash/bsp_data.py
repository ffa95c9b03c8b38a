"""tx2setup/data/l4t_bsp.yaml: BSP tarballs per L4T release, board configs per USB product ID.

Validated on load (a typo in the data file fails the tests, not a flash). See the data
file's header for where the URLs come from and why the sha256 values are empty.
"""

from __future__ import annotations

import functools
import os
import re
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from tx2setup.errors import MatrixError

DATA_PATH = "data/l4t_bsp.yaml"
MIRROR_ENV = "TX2SETUP_BSP_MIRROR"
_SHA = re.compile(r"^([0-9a-f]{64})?$")
_PID = re.compile(r"^[0-9a-f]{4}$")


@dataclass(frozen=True)
class Tarball:
    url: str
    file: str
    sha256: str  # "" = pinned on first fetch (tx2setup.lock)
    url_seen: bool

    def url_from(self, mirror: str | None) -> str:
        """The URL to fetch: NVIDIA's, or `<mirror>/<file>` for a mirror (or a test server)."""
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(self.file)}" if mirror else self.url


@dataclass(frozen=True)
class BspRelease:
    l4t: str
    driver: Tarball
    rootfs: Tarball


@dataclass(frozen=True)
class ProductBoard:
    module: str
    flash_board: str
    name: str


@dataclass(frozen=True)
class BspData:
    releases: dict[str, BspRelease]
    product_boards: dict[str, ProductBoard]
    unsupported_products: dict[str, str]
    flash_boards: dict[str, tuple[str, ...]]

    def release(self, l4t: str) -> BspRelease | None:
        return self.releases.get(l4t)


def mirror() -> str | None:
    return os.environ.get(MIRROR_ENV) or None


def _tarball(where: str, raw: Any) -> Tarball:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise MatrixError(f"{DATA_PATH}: {where}: needs a url")
    url = raw["url"]
    if not url.startswith("https://"):
        raise MatrixError(f"{DATA_PATH}: {where}.url: not an https URL")
    file = raw.get("file") or urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not str(file).endswith((".tbz2", ".tar.bz2", ".tar.gz", ".tgz", ".tar")):
        raise MatrixError(f"{DATA_PATH}: {where}.file: {file!r} is not a tarball name")
    sha = str(raw.get("sha256") or "")
    if not _SHA.match(sha):
        raise MatrixError(f"{DATA_PATH}: {where}.sha256: must be 64 lowercase hex digits or empty")
    unknown = set(raw) - {"url", "file", "sha256", "url_seen"}
    if unknown:
        raise MatrixError(f"{DATA_PATH}: {where}: unknown key(s) {', '.join(sorted(unknown))}")
    return Tarball(url=url, file=str(file), sha256=sha, url_seen=bool(raw.get("url_seen", False)))


def parse(data: Any) -> BspData:
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        raise MatrixError(f"{DATA_PATH}: schema_version must be 1")
    releases = {}
    for l4t, entry in (data.get("releases") or {}).items():
        if not re.fullmatch(r"\d+\.\d+\.\d+", str(l4t)) or not isinstance(entry, dict):
            raise MatrixError(f"{DATA_PATH}: releases.{l4t}: needs an L4T version key and driver/rootfs")
        releases[str(l4t)] = BspRelease(
            str(l4t),
            _tarball(f"releases.{l4t}.driver", entry.get("driver")),
            _tarball(f"releases.{l4t}.rootfs", entry.get("rootfs")),
        )
    boards = {}
    for pid, entry in (data.get("product_boards") or {}).items():
        if not _PID.match(str(pid)) or not isinstance(entry, dict):
            raise MatrixError(f"{DATA_PATH}: product_boards.{pid}: needs a 4-hex-digit key and module/flash_board")
        boards[str(pid)] = ProductBoard(str(entry["module"]), str(entry["flash_board"]), str(entry["name"]))
    unsupported = {str(pid): str(name) for pid, name in (data.get("unsupported_products") or {}).items()}
    for pid in unsupported:
        if not _PID.match(pid):
            raise MatrixError(f"{DATA_PATH}: unsupported_products.{pid}: not 4 lowercase hex digits")
    flash_boards = {str(k): tuple(str(b) for b in v) for k, v in (data.get("flash_boards") or {}).items()}
    for pid, pb in boards.items():
        if pb.flash_board not in flash_boards.get(pb.module, ()):
            raise MatrixError(f"{DATA_PATH}: product_boards.{pid}: {pb.flash_board} is not in flash_boards.{pb.module}")
    return BspData(releases, boards, unsupported, flash_boards)


@functools.cache
def load() -> BspData:
    text = resources.files("tx2setup").joinpath(DATA_PATH).read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))
