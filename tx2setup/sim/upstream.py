"""What provisioning downloads, as the sim serves it: $TX2SETUP_CACHE/sim/upstream.

  jetson/<channel>/   NVIDIA's apt repository layout with stand-in packages (aptrepo.py)
  zed/                stand-in ZED SDK installers, one per L4T (zed.py)
  caffe/              the REAL BVLC Caffe source, Debian's orig tarball, pinned (caffe.py)
  pytorch/            the REAL CPU torch wheel of this host (boards run Debian's Python 3.11)

Built once per content version (a stamp file), shared by every fleet, under the host lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tx2setup.cache import cache_root
from tx2setup.matrix import Matrix
from tx2setup.sim import aptrepo, caffe, gpgkey, zed
from tx2setup.sim.locking import locked
from tx2setup.sim.paths import Layout, link_or_copy

CONTENT_VERSION = 1
WHEEL_DIRS = ("/opt/wheels",)
WHEEL_GLOB = "torch-*-cp311-cp311-*x86_64.whl"  # what Debian 12's Python 3.11 on x86_64 installs
WHEEL_TAG = re.compile(r"^cp311-cp311-\S*x86_64$")
# pip's http cache keeps downloads as opaque "<hash>.body" files; torch's is ~200 MB, so a
# size floor skips the small ones without opening them
MIN_TORCH_BYTES = 50 * 1024 * 1024
FETCH_ENV = "TX2SETUP_SIM_FETCH_TORCH"  # =1: `pip download` the wheel when none is found


@dataclass(frozen=True)
class Facts:
    torch_wheel: str | None
    torch_version: str | None


def wheel_store() -> Path:
    """Where the sim keeps torch wheels it found in pip's cache or downloaded ($TX2SETUP_CACHE/wheels)."""
    return cache_root() / "wheels"


def _home_of(user: str | None) -> Path | None:
    if not user:
        return None
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return None


def pip_cache_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """pip's cache dirs that may hold the wheel: $PIP_CACHE_DIR, $XDG_CACHE_HOME/pip, this
    user's ~/.cache/pip and, under sudo, the invoking user's (where their pip put it)."""
    env = os.environ if env is None else env
    dirs = []
    if env.get("PIP_CACHE_DIR"):
        dirs.append(Path(env["PIP_CACHE_DIR"]))
    if env.get("XDG_CACHE_HOME"):
        dirs.append(Path(env["XDG_CACHE_HOME"]) / "pip")
    for home in (Path.home(), _home_of(env.get("SUDO_USER"))):
        if home is not None:
            dirs.append(home / ".cache" / "pip")
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def wheel_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """Dirs holding wheels under their own names: pip's local find-links, /opt/wheels, the
    sim's wheel store and tx2setup's artifact cache (provisioning keeps torch there)."""
    env = os.environ if env is None else env
    dirs = [Path(d) for d in env.get("PIP_FIND_LINKS", "").split() if d and "://" not in d]
    dirs += [Path(d) for d in WHEEL_DIRS]
    dirs.append(wheel_store())
    return dirs


def torch_in_http_cache(body: Path) -> str | None:
    """The wheel file name of a torch wheel that pip's http cache stored as `body`, else None."""
    try:
        with zipfile.ZipFile(body) as zf:
            wheel_files = [n for n in zf.namelist() if re.fullmatch(r"torch-[^/]+\.dist-info/WHEEL", n)]
            if not wheel_files:
                return None
            version = wheel_files[0].split("/")[0][len("torch-") : -len(".dist-info")]
            text = zf.read(wheel_files[0]).decode(errors="replace")
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    for line in text.splitlines():
        if line.startswith("Tag:") and WHEEL_TAG.match(line.split(":", 1)[1].strip()):
            return f"torch-{version}-{line.split(':', 1)[1].strip()}.whl"
    return None


def _from_http_cache(cache: Path, store: Path) -> list[Path]:
    """Torch wheels in pip's http cache (http-v2, or the older http), linked into the store by name."""
    found = []
    for sub in ("http-v2", "http"):
        root = cache / sub
        if not root.is_dir():
            continue
        for body in root.rglob("*"):
            try:
                if not body.is_file() or body.stat().st_size < MIN_TORCH_BYTES:
                    continue
            except OSError:
                continue
            name = torch_in_http_cache(body)
            if name is not None:
                found.append(_link_into(store, body, name))
    return found


def _fetch(store: Path, version: str) -> list[Path]:
    """`pip download` torch==version for CPython 3.11 x86_64 from this host's configured index."""
    store.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11"]
    argv += ["--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "-d", str(store), f"torch=={version}"]
    subprocess.run(argv, capture_output=True, timeout=900, check=False)
    return sorted(store.glob(WHEEL_GLOB))


def find_torch_wheel(env: Mapping[str, str] | None = None) -> Path | None:
    """The host's CPU torch wheel for CPython 3.11 on x86_64 (what the boards can install).

    Looked for, in order: wheels under their own names (find-links dirs, /opt/wheels, the
    sim's wheel store, the artifact cache), pip's cache (built wheels by name, downloads in
    its http cache by content), and, with TX2SETUP_SIM_FETCH_TORCH=1, `pip download`. The
    version of the torch installed here wins when there are several.
    """
    env = os.environ if env is None else env
    found: list[Path] = []
    for d in wheel_dirs(env):
        if d.is_dir():
            found += d.glob(WHEEL_GLOB)
    # tx2setup's artifact cache, here and at the default place (a dev TX2SETUP_CACHE may be elsewhere)
    for cache in dict.fromkeys((cache_root(), Path.home() / ".cache" / "tx2setup")) if not found else []:
        if (cache / "artifacts").is_dir():
            found += (cache / "artifacts").glob(f"*/{WHEEL_GLOB}")
    for cache in pip_cache_dirs(env) if not found else []:
        if (cache / "wheels").is_dir():
            found += (cache / "wheels").rglob(WHEEL_GLOB)
        if not found:
            found += _from_http_cache(cache, wheel_store())
    here = _installed_torch()
    if not found and here and env.get(FETCH_ENV) == "1":
        found += _fetch(wheel_store(), here)
    if not found:
        return None
    found.sort(key=lambda p: (here != "" and p.name.startswith(f"torch-{here}-"), p.name), reverse=True)
    return found[0]


def _installed_torch() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""


def missing_wheel_warning() -> str:
    """One line for `sim up` when no wheel was found."""
    return (
        "warning: no CPU torch wheel for CPython 3.11 x86_64 on this host (looked in "
        f"{', '.join(str(d) for d in wheel_dirs())}, the artifact cache and pip's caches); provisioning "
        f"pytorch on the emulated boards will fail: put one in {wheel_store()}, or set {FETCH_ENV}=1 to "
        "`pip download` it"
    )


def _link_into(store: Path, src: Path, name: str) -> Path:
    """src under its wheel name in the store: a hard link (no copy of ~200 MB) when it can be."""
    store.mkdir(parents=True, exist_ok=True)
    target = store / name
    if target.exists():
        return target
    return link_or_copy(src, target)


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
        with gpgkey.agent_stopped_after(layout.gnupg):
            aptrepo.build(root / "jetson", matrix, layout.gnupg)
        zed.build(root / "zed", matrix)
        caffe.build(root / "caffe", layout.sim / "sources")
        _link_wheel(root / "pytorch", wheel)
        stamp.write_text(key + "\n")
    return facts


def _link_wheel(dest: Path, wheel: Path | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        _link_into(dest, wheel, wheel.name)
