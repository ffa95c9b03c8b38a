"""The REAL Caffe source the emulated boards build: BVLC Caffe as Debian's archive serves it.

Debian's source package caffe 1.0.0+git20180821.99bd997-8 carries BVLC's tree (master of
2018-08-21, `caffe --version` 1.0.0) as its orig tarball, without a top-level directory.
Its .dsc (same pool) gives size and checksums:

  http://deb.debian.org/debian/pool/main/c/caffe/caffe_1.0.0+git20180821.99bd997-8.dsc
    Checksums-Sha256: e0eb3f06...cdd64 8518844 caffe_1.0.0+git20180821.99bd997.orig.tar.gz
    Files (md5):      38cf1dd141fd4b2f4aec637533d68153

It is downloaded once into $TX2SETUP_CACHE/sim/sources (checked against the pin, kept
across fleets and upstream rebuilds) and hard-linked into the sim's upstream under caffe/.
The patches the role applies are role files (roles/caffe/files/patches), not served here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tx2setup.errors import ChecksumError, EnvironmentProblem
from tx2setup.sim import paths

CONTENT_VERSION = 2  # 1 was the stand-in tree packed from tx2setup/sim/assets/caffe-1.0
FILE_NAME = "caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
URL = f"http://deb.debian.org/debian/pool/main/c/caffe/{FILE_NAME}"
SHA256 = "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"  # the .dsc's Checksums-Sha256
SIZE = 8518844
URL_ENV = "TX2SETUP_SIM_CAFFE_URL"  # another mirror of the same file (the pin still applies)
TIMEOUT = 120.0


def source_url() -> str:
    return os.environ.get(URL_ENV) or URL


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(store: Path, url: str | None = None, sha256: str | None = None) -> Path:
    """store/FILE_NAME, downloaded once from `url` and checked against `sha256`.

    A cached copy is re-checked (a damaged one is fetched again); a download that does not
    match raises ChecksumError and leaves nothing under the file's name."""
    sha256 = sha256 or SHA256
    target = store / FILE_NAME
    if target.is_file() and _sha256(target) == sha256:
        return target
    url = url or source_url()
    store.mkdir(parents=True, exist_ok=True)
    part = store / (FILE_NAME + ".part")
    req = urllib.request.Request(url, headers={"User-Agent": "tx2setup-sim"})  # noqa: S310 - a fixed http(s) URL
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp, part.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"cannot fetch the Caffe source for the emulated boards from {url}: {exc} "
            f"(set {URL_ENV} to a mirror, or put {FILE_NAME} in {store})"
        ) from exc
    actual = _sha256(part)
    if actual != sha256:
        part.unlink()
        raise ChecksumError(f"{url}: sha256 {actual} does not match the pinned {sha256}")
    os.replace(part, target)
    return target


def build(dest: Path, store: Path) -> None:
    """dest/FILE_NAME: the pinned source, linked (not copied) from the store."""
    src = fetch(store)
    dest.mkdir(parents=True, exist_ok=True)
    paths.link_or_copy(src, dest / FILE_NAME)
    for old in dest.iterdir():  # the stand-in of CONTENT_VERSION 1
        if old.is_file() and old.name != FILE_NAME:
            old.unlink()
