"""What provisioning downloads, as the sim serves it: $TX2SETUP_CACHE/sim/upstream.

  jetson/<channel>/   NVIDIA's apt repository layout with stand-in packages (aptrepo.py)
  zed/                stand-in ZED SDK installers, one per L4T (zed.py)
  caffe/              a stand-in Caffe source tarball (caffe.py)
  pytorch/            the REAL CPU torch wheel of this host (boards run Debian's Python 3.11)

Built once per content version (a stamp file), shared by every fleet, under the host lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tx2setup.matrix import Matrix
from tx2setup.sim import aptrepo, caffe, zed
from tx2setup.sim.locking import locked
from tx2setup.sim.paths import Layout

CONTENT_VERSION = 1
WHEEL_DIRS = ("/opt/wheels",)


@dataclass(frozen=True)
class Facts:
    torch_wheel: str | None
    torch_version: str | None


def find_torch_wheel() -> Path | None:
    """The host's CPU torch wheel for CPython 3.11 on x86_64 (what the boards can install).

    Looked for in pip's find-links dirs, /opt/wheels and pip's wheel cache; the version of
    the torch installed here wins when there are several.
    """
    dirs = [Path(d) for d in os.environ.get("PIP_FIND_LINKS", "").split() if d and not d.startswith("http")]
    dirs += [Path(d) for d in WHEEL_DIRS]
    found: list[Path] = []
    for d in dirs:
        if d.is_dir():
            found += d.glob("torch-*-cp311-cp311-*x86_64.whl")
    cache = Path.home() / ".cache" / "pip" / "wheels"
    if not found and cache.is_dir():
        found += cache.rglob("torch-*-cp311-cp311-*x86_64.whl")
    if not found:
        return None
    try:
        here = metadata.version("torch")
    except metadata.PackageNotFoundError:
        here = ""
    found.sort(key=lambda p: (here != "" and p.name.startswith(f"torch-{here}-"), p.name), reverse=True)
    return found[0]


def wheel_version(name: str) -> str:
    """torch-2.13.0+cpu-cp311-... -> 2.13.0 (the public version, without the local +cpu)."""
    m = re.match(r"torch-([^-]+)-", name)
    return m.group(1).split("+")[0] if m else ""


def _stamp_key(matrix: Matrix, wheel: Path | None) -> str:
    data = json.dumps(
        {
            "v": CONTENT_VERSION,
            "apt": aptrepo.CONTENT_VERSION,
            "zed": zed.CONTENT_VERSION,
            "caffe": caffe.CONTENT_VERSION,
            "releases": [r.model_dump() for r in matrix.releases],
            "modules": {k: m.model_dump() for k, m in matrix.modules.items()},
            "wheel": wheel.name if wheel else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(data.encode()).hexdigest()


def ensure(layout: Layout, matrix: Matrix) -> Facts:
    wheel = find_torch_wheel()
    facts = Facts(wheel.name if wheel else None, wheel_version(wheel.name) if wheel else None)
    stamp = layout.upstream / ".stamp"
    key = _stamp_key(matrix, wheel)
    if stamp.exists() and stamp.read_text().strip() == key:
        return facts
    layout.sim.mkdir(parents=True, exist_ok=True)
    with locked(layout.host_lock):
        if stamp.exists() and stamp.read_text().strip() == key:
            return facts
        root = layout.upstream
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(
            "<html><body><h1>tx2setup sim: upstream STAND-INS</h1><p>jetson/ zed/ caffe/ pytorch/</p></body></html>\n"
        )
        aptrepo.build(root / "jetson", matrix, layout.gnupg)
        zed.build(root / "zed", matrix)
        caffe.build(root / "caffe")
        _link_wheel(root / "pytorch", wheel)
        stamp.write_text(key + "\n")
    return facts


def _link_wheel(dest: Path, wheel: Path | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        return
    target = dest / wheel.name
    if target.exists():
        return
    tmp = dest / (wheel.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(wheel, tmp)  # same filesystem: no copy of ~200 MB
    except OSError:
        shutil.copyfile(wheel, tmp)
    os.replace(tmp, target)
