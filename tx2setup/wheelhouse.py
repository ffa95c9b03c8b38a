"""The fleet's pip wheelhouse: the wheels the pytorch role pip-installs that are not
artifacts (numpy pins, the torch wheel's declared dependencies, pip itself on JetPack 4),
fetched once per (Python, platform) by the controller and served beside the artifacts.

- Filled with `pip download --only-binary=:all: --platform P --python-version V
  --implementation cp --abi ABI -d DIR SPECS` (an argv list) into
  `<cache root>/wheelhouse/<tag>/` (tag: `cp311-manylinux_2_28_x86_64`). pip checks what it
  downloads against the index's hashes; the controller then hashes every file and writes
  `wheelhouse.json` (specs + sha256 + size) and `index.html`, a find-links page whose links
  carry `#sha256=<hex>`: the board's pip checks the file it gets against that fragment, so a
  wheel changed after the controller verified it fails the board's install.
- A no-op when the manifest already covers the specs (its files re-hashed: a changed file is
  ChecksumError, nothing served); otherwise the download goes into a temporary directory
  seeded with the current files (pip skips what is there) and replaces the wheelhouse in one
  rename: a failed download leaves the old one as it was.
- What a board needs comes from the role, never a copy: the role's OS vars file
  (roles/pytorch/vars/<distribution>-<version>.yml) names the board's Python, its platform
  tags, the numpy spec and pip's bootstrap spec; torch's Requires-Dist comes from the METADATA
  of the wheel in the artifact cache, its markers evaluated for the board's Python.
"""

from __future__ import annotations

import fcntl
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement  # ansible-core's own dependency

from tx2setup import cache as artifact_cache
from tx2setup import content
from tx2setup.errors import ChecksumError, EnvironmentProblem

DIR_NAME = "wheelhouse"  # under the cache root (the sim's torch store already owns wheels/)
MANIFEST = "wheelhouse.json"
INDEX = "index.html"
ROLE = "pytorch"
PIP_TIMEOUT_S = 1800  # a cold fetch of a fleet's wheels on a slow uplink; pip retries inside it


DIR_ENV = "TX2SETUP_WHEELHOUSE"  # moves the wheelhouse (a benchmark's cold start, a shared disk)


def root(cache_root: Path | None = None) -> Path:
    env = os.environ.get(DIR_ENV)
    if env and cache_root is None:
        return Path(env).expanduser()
    return (cache_root or artifact_cache.cache_root()) / DIR_NAME


@dataclass(frozen=True)
class Target:
    """One (Python, platform) the fleet's boards install wheels for."""

    python: str  # "3.6"
    platforms: tuple[str, ...]  # pip --platform values, the most specific first

    @property
    def tag(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.platforms[0]}"

    @property
    def abi(self) -> str:
        # CPython before 3.8 builds with pymalloc's "m" ABI flag (cp36m, as in NVIDIA's
        # torch-1.10.0-cp36-cp36m-linux_aarch64.whl); 3.8 dropped it (What's New in Python 3.8,
        # "Build and C API Changes": the m flag is removed)
        major, minor = (int(x) for x in self.python.split(".")[:2])
        return f"cp{major}{minor}" + ("m" if (major, minor) < (3, 8) else "")

    @property
    def machine(self) -> str:
        # platform_machine: the platform tag's architecture (manylinux2014_aarch64 -> aarch64)
        return "x86_64" if self.platforms[0].endswith("x86_64") else self.platforms[0].rsplit("_", 1)[-1]


@dataclass
class Board:
    """What one board pip-installs from the wheelhouse."""

    target: Target
    specs: list[str] = field(default_factory=list)


@dataclass
class Filled:
    tag: str
    path: Path
    fetched_bytes: int  # crossed the upstream link in this call (0 on a no-op)
    files: dict[str, str]  # file name -> sha256


def os_vars_name(p: Any) -> str:
    """The role vars file the board loads: Debian-12 on an emulated board, Ubuntu-<release> on a
    real one (roles/pytorch/tasks/main.yml, first_found over <distribution>-<version>.yml)."""
    return "Debian-12" if p.emulated else f"Ubuntu-{p.ubuntu}"


def _role_vars(name: str) -> dict[str, Any]:
    return content.role_file(content.project_root() / "roles" / ROLE / "vars" / f"{name}.yml", "OS variables")


def role_var(vars_name: str, name: str) -> Any:
    data = _role_vars(vars_name)
    if name not in data:
        raise EnvironmentProblem(f"roles/{ROLE}/vars/{vars_name}.yml: no {name}")
    return data[name]


def target_of(p: Any) -> Target:
    """The board's Python (the plan's; an emulated board runs Debian's, which its vars file
    names) and platform tags (its vars file)."""
    name = os_vars_name(p)
    platforms = role_var(name, "pytorch_wheelhouse_platforms")
    python = _role_vars(name).get("pytorch_wheelhouse_python") or p.python
    return Target(python=str(python), platforms=tuple(str(x) for x in platforms))


def marker_env(target: Target) -> dict[str, str]:
    """PEP 508 environment markers of a Linux CPython board (packaging.markers.default_environment's
    keys), for Requires-Dist lines such as `dataclasses; python_version < "3.7"`."""
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": target.machine,
        "python_version": target.python,
        "python_full_version": target.python + ".0",
        "implementation_version": target.python + ".0",
        "extra": "",
    }


def wheel_requires(wheel: Path, target: Target) -> list[str]:
    """The wheel's Requires-Dist (core metadata, `<name>-<version>.dist-info/METADATA`) that
    apply to the target: markers evaluated, extras left out, markers dropped from the spec."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if not names:
                raise EnvironmentProblem(f"{wheel}: no .dist-info/METADATA in the wheel")
            text = zf.read(names[0]).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile) as exc:
        raise EnvironmentProblem(f"{wheel}: cannot read the wheel's metadata: {exc}") from None
    env = marker_env(target)
    out = []
    for line in text.split("\n\n", 1)[0].splitlines():  # headers end at the first blank line
        if not line.lower().startswith("requires-dist:"):
            continue
        try:
            req = Requirement(line.split(":", 1)[1].strip())
        except InvalidRequirement as exc:
            raise EnvironmentProblem(f"{wheel}: Requires-Dist {line!r}: {exc}") from None
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        out.append(f"{req.name}{extras}{req.specifier}")
    return out


def board_needs(p: Any, lock: artifact_cache.LockFile, store_dir: Path) -> Board | None:
    """What board `p` pip-installs from the wheelhouse, None for a board without pytorch or
    one that installs torch from an index (JetPack 6: pip resolves from that index there)."""
    if "pytorch" not in set(p.components) or p.torch_index_url:
        return None
    target = target_of(p)
    name = os_vars_name(p)
    specs = [str(s) for s in (role_var(name, "pytorch_pip_bootstrap_spec"), role_var(name, "pytorch_numpy_pip_spec"))]
    specs = [s for s in specs if s]
    pin = lock.pins.get(p.torch_wheel_url) if p.torch_wheel_url else None
    if pin is not None and (store_dir / pin.key).is_file():
        specs += wheel_requires(store_dir / pin.key, target)
    return Board(target=target, specs=specs)


def fleet_needs(plans: Iterable[Any], lock: artifact_cache.LockFile, store_dir: Path) -> dict[Target, list[str]]:
    """Each distinct target's specs, in first-seen order, without repeats."""
    out: dict[Target, list[str]] = {}
    for p in plans:
        need = board_needs(p, lock, store_dir)
        if need is None:
            continue
        specs = out.setdefault(need.target, [])
        specs += [s for s in need.specs if s not in specs]
    return out


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def _verified(path: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's files, each re-hashed: a file changed since the fill is refused."""
    files: dict[str, str] = {}
    for name, entry in sorted(manifest["files"].items()):
        f = path / name
        actual = artifact_cache.sha256_file(f) if f.is_file() else "missing"
        if actual != entry.get("sha256"):
            raise ChecksumError(
                f"wheelhouse {f}: sha256 {actual} does not match {entry.get('sha256')} recorded when it was "
                f"fetched ({path / MANIFEST}); delete {path} to fetch it again"
            )
        files[name] = actual
    return files


def index_page(tag: str, files: dict[str, str]) -> str:
    """A find-links page: one <a> per file with `#sha256=` (pip checks a link's hash fragment
    against the file it downloads: pypa/pip src/pip/_internal/req/req_install.py,
    InstallRequirement.hashes, "URL-based (#md5=...) hashes"; pip 8/9's pip/req/req_install.py
    has the same hashes(trust_internet=True), not run here)."""
    links = "\n".join(
        f'<a href="{html.escape(name)}#sha256={sha}">{html.escape(name)}</a><br>' for name, sha in sorted(files.items())
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>tx2setup wheelhouse "
        f"{html.escape(tag)}</title></head><body>\n{links}\n</body></html>\n"
    )


def pip_download_argv(target: Target, dest: Path, specs: Sequence[str], index_url: str | None = None) -> list[str]:
    """`pip download` for another machine: --only-binary=:all: is what --platform requires
    (pip download docs, "--platform ... Defaults to the platform of the running system ...
    (you must also use --only-binary=:all: or --no-deps)")."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--only-binary=:all:"]
    for plat in target.platforms:
        argv += ["--platform", plat]
    argv += ["--python-version", target.python, "--implementation", "cp", "--abi", target.abi, "-d", str(dest)]
    if index_url:
        argv += ["--index-url", index_url]
    return [*argv, "--", *specs]


def _failure(target: Target, specs: Sequence[str], output: str) -> EnvironmentProblem:
    """One line naming the spec pip could not satisfy and the platform."""
    m = re.search(r"No matching distribution found for (\S+)", output)
    spec = m.group(1) if m else next((s for s in specs if s.split("[")[0].split("<")[0] in output), ", ".join(specs))
    offline = re.search(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable", output)
    why = "the package index is unreachable" if offline else "no wheel for it"
    last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.startswith("ERROR")), "")
    return EnvironmentProblem(
        f"wheelhouse {target.tag}: {spec} for Python {target.python} on {target.platforms[0]}: {why} "
        f"(pip download: {last or 'failed'}); nothing was changed "
        "(`provision --no-cache` leaves every download to the boards)"
    )


def _seed(src: Path, files: dict[str, str], dest: Path) -> None:
    dest.mkdir(parents=True)
    for name in files:
        try:
            os.link(src / name, dest / name)
        except OSError:
            shutil.copy2(src / name, dest / name)


def _write_index(path: Path, tag: str, specs: list[str], files: dict[str, str]) -> None:
    entries = {n: {"sha256": s, "size": (path / n).stat().st_size} for n, s in sorted(files.items())}
    body = {"tag": tag, "specs": specs, "files": entries}
    (path / MANIFEST).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    (path / INDEX).write_text(index_page(tag, files), encoding="utf-8")


def fill(target: Target, specs: Sequence[str], base: Path | None = None, index_url: str | None = None) -> Filled:
    """Make the target's wheelhouse hold wheels for `specs`; see the module docstring. Two
    runs on one controller (two engineers' provisions) take turns: the second finds the
    first's wheelhouse and fetches nothing."""
    home = base or root()
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("a") as lock:  # a dot-name: never served
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fill(target, specs, home, index_url)


def _fill(target: Target, specs: Sequence[str], home: Path, index_url: str | None) -> Filled:
    path = home / target.tag
    manifest = _manifest(path)
    have = _verified(path, manifest) if manifest else {}
    known = [str(s) for s in (manifest or {}).get("specs", [])]
    if manifest is not None and all(s in known for s in specs):
        return Filled(tag=target.tag, path=path, fetched_bytes=0, files=have)
    want = known + [s for s in specs if s not in known]
    if importlib.util.find_spec("pip") is None:  # a venv made --without-pip
        raise EnvironmentProblem(
            f"wheelhouse {target.tag}: {sys.executable} has no pip to download {', '.join(want)} with "
            f"({sys.executable} -m ensurepip adds it)"
        )
    tmp = home / f".{target.tag}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _seed(path, have, tmp)
        proc = subprocess.run(  # an argv list: this Python's own pip, no shell
            pip_download_argv(target, tmp, want, index_url),
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise _failure(target, want, proc.stdout + proc.stderr)
        files = {f.name: artifact_cache.sha256_file(f) for f in sorted(tmp.iterdir()) if f.is_file()}
        fetched = sum((tmp / n).stat().st_size for n in files if n not in have)
        _write_index(tmp, target.tag, want, files)
        _swap(tmp, path)
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(
            f"wheelhouse {target.tag}: pip download of {', '.join(want)} took over {PIP_TIMEOUT_S} s; "
            "nothing was changed"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Filled(tag=target.tag, path=path, fetched_bytes=fetched, files=files)


def _swap(new: Path, path: Path) -> None:
    """Replace `path` by `new`: the old directory moves aside first, so a reader sees either
    the old wheelhouse or the new one, never half of each."""
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        path.replace(old)
    new.replace(path)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class Synced:
    """The run's wheelhouse: one Filled per target, keyed by tag."""

    filled: dict[str, Filled]

    @property
    def fetched_bytes(self) -> int:
        return sum(f.fetched_bytes for f in self.filled.values())

    @property
    def files(self) -> int:
        return sum(len(f.files) for f in self.filled.values())


def sync(plans: Iterable[Any], store: artifact_cache.ArtifactCache, base: Path | None = None) -> Synced:
    """Fill the wheelhouse of every target the plans need (after the artifacts are fetched:
    torch's dependencies are read from the cached wheel)."""
    needs = fleet_needs(plans, store.lock, store.dir)
    return Synced({t.tag: fill(t, specs, base) for t, specs in needs.items()})


def find_links_url(p: Any, cache_url: str, base: Path | None = None) -> str:
    """The board's find-links page on `cache_url`, or "" when this controller holds no
    wheelhouse for the board (then the role installs as without one)."""
    if "pytorch" not in set(p.components) or p.torch_index_url:
        return ""
    tag = target_of(p).tag
    if not ((base or root()) / tag / INDEX).is_file():
        return ""
    return f"{cache_url.rstrip('/')}/{DIR_NAME}/{tag}/"
