"""The STAND-IN Caffe source tarball (caffe-1.0.tar.gz, top dir caffe-1.0/ like GitHub's).

The tree is in tx2setup/sim/assets/caffe-1.0; it is packed deterministically (fixed
mtime and owner), so the tarball's sha256 only changes when its content does.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

CONTENT_VERSION = 1
TOP = "caffe-1.0"
MTIME = 1492819200  # 2017-04-22, Caffe 1.0's release date


def _walk(node: Traversable, prefix: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        path = f"{prefix}/{child.name}"
        if child.is_dir():
            out.append((path + "/", b""))
            out += _walk(child, path)
        else:
            out.append((path, child.read_bytes()))
    return out


def tarball_bytes() -> bytes:
    src = resources.files("tx2setup.sim").joinpath("assets", TOP)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in [(f"{TOP}/", b""), *_walk(src, TOP)]:
            info = tarfile.TarInfo(path.rstrip("/"))
            info.mtime = MTIME
            if path.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def build(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{TOP}.tar.gz").write_bytes(tarball_bytes())
