"""The compatibility matrix: data in tx2setup/data/matrix.yaml, a typed schema, lookups.

The schema is strict (unknown keys are errors) so that a typo in the data file fails
loudly at load time and in the tests, not later on a board.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tx2setup.errors import MatrixError

NVIDIA_APT_BASE = "https://repo.download.nvidia.com/jetson"
VERSION_RE = re.compile(r"^\d+(\.\d+){1,3}$")
RELEASE_LINE_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)")
SHA256_RE = re.compile(r"^([0-9a-f]{64})?$")


def version_key(version: str) -> tuple[int, ...]:
    """'32.7.4' -> (32, 7, 4), for ordering and comparisons."""
    return tuple(int(part) for part in version.split("."))


def _check_version(value: str) -> str:
    if not VERSION_RE.match(value):
        raise ValueError(f"{value!r} is not a dotted version like 32.7.4")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Module(Strict):
    key: str = ""
    name: str
    soc: str = Field(pattern=r"^t(186|194|234)$")
    cuda_arch: str = Field(pattern=r"^\d\.\d$")
    model: str
    compatible: list[str] = Field(min_length=1)
    usb_product_ids: list[str] = Field(min_length=1)
    flash_board: str
    power_modes: dict[int, str] = Field(min_length=1)
    default_power_mode: int
    notes: str = ""

    @field_validator("compatible")
    @classmethod
    def _compatible(cls, items: list[str]) -> list[str]:
        for item in items:
            if not re.fullmatch(r"[a-z]+,[\w+.-]+", item):
                raise ValueError(f"compatible entry {item!r} is not 'vendor,device'")
        return items

    @field_validator("usb_product_ids")
    @classmethod
    def _hex_ids(cls, ids: list[str]) -> list[str]:
        for pid in ids:
            if not re.fullmatch(r"[0-9a-f]{4}", pid):
                raise ValueError(f"USB product id {pid!r} is not 4 lowercase hex digits")
        return ids

    @model_validator(mode="after")
    def _default_mode_exists(self) -> Module:
        if self.default_power_mode not in self.power_modes:
            raise ValueError(f"default_power_mode {self.default_power_mode} is not in power_modes")
        return self

    def power_mode_id(self, value: str | int) -> int:
        """Map a mode given by number or name to its nvpmodel id; ValueError if unknown.

        Names match case-insensitively and with or without the MODE_ prefix: L4T 36.4.3
        names the Orin Nano's modes "15W", older tables "MODE_15W"."""
        text = str(value).strip()
        if text.isdigit() and int(text) in self.power_modes:
            return int(text)
        for mode_id, name in self.power_modes.items():
            if _mode_name(name) == _mode_name(text):
                return mode_id
        raise ValueError(text)


def _mode_name(name: str) -> str:
    name = name.strip().upper()
    return name[len("MODE_") :] if name.startswith("MODE_") else name


class Artifact(Strict):
    version: str
    url: str = Field(pattern=r"^https?://")
    sha256: str = ""

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not SHA256_RE.match(value):
            raise ValueError("sha256 must be 64 lowercase hex digits or empty")
        return value


class Caffe(Artifact):
    # BVLC Caffe 1.0 calls cudnnGetConvolutionForwardAlgorithm (and the backward ones), which
    # cuDNN 8 removed (BVLC/caffe#6970): with a newer cuDNN it builds with USE_CUDNN=OFF.
    cudnn_max_major: int | None = None

    def use_cudnn(self, cudnn: str) -> bool:
        return self.cudnn_max_major is None or version_key(cudnn)[0] <= self.cudnn_max_major


class PyTorch(Artifact):
    torchvision: str
    # A PEP 503 index that serves this torch (pip install --index-url ... torch==version):
    # for JetPack 6 the index, not a file URL, is what the publisher documents.
    index_url: str | None = Field(default=None, pattern=r"^https?://")
    url_verified: bool = True  # False: the file URL was derived from a pattern, never fetched

    @property
    def wheel_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


WHEEL_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def wheel_tags(url: str) -> tuple[str, str, set[str]] | None:
    """(name, version, python tags) of the wheel a URL names, or None if it names no wheel."""
    m = WHEEL_RE.match(url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1])
    if not m:
        return None
    return m.group("name"), m.group("version"), set(m.group("py").split("."))


def release_of(version: str) -> tuple[int, ...]:
    """The numeric release of a PEP 440 version, padded to three parts:
    '2.1.0a0+41361538.nv23.06' -> (2, 1, 0), '2.1' -> (2, 1, 0); () if it has none."""
    m = re.match(r"^(\d+(?:\.\d+)*)", version.strip())
    if not m:
        return ()
    parts = tuple(int(p) for p in m.group(1).split("."))
    return (*parts, 0, 0, 0)[: max(3, len(parts))]


def wheel_mismatch(url: str, version: str, python: str | None) -> str | None:
    """Why a torch wheel URL does not fit `version` (and `python`, '3.6'), or None if it fits
    or the URL names no wheel file (an index, a redirect)."""
    tags = wheel_tags(url)
    if tags is None:
        return None
    _name, wheel_version, py_tags = tags
    if release_of(wheel_version) != release_of(version):
        return f"the wheel {url.rsplit('/', 1)[-1]} is torch {wheel_version}, not {version}"
    if python is not None:
        cp = "cp" + python.replace(".", "")
        if cp not in py_tags and not py_tags & {"py3", f"py{python.split('.')[0]}"}:
            built = ".".join(sorted(py_tags))
            return f"the wheel {url.rsplit('/', 1)[-1]} is built for {built}, not Python {python} ({cp})"
    return None


class Release(Strict):
    jetpack: str
    l4t: str
    ubuntu: str = Field(pattern=r"^\d\d\.04$")
    python: str = Field(pattern=r"^\d\.\d+$")
    cuda: str
    cudnn: str
    tensorrt: str
    modules: list[str] = Field(min_length=1)
    ros: str
    pytorch: PyTorch | None
    zed_sdk: Artifact | None
    apt_repo: str | None
    # nvpmodel modes that differ from the module's own table on this release (module key ->
    # id -> name), e.g. MAXN_SUPER on Orin Nano / NX with JetPack 6.2
    power_modes: dict[str, dict[int, str]] = Field(default_factory=dict)
    notes: str = ""

    _versions = field_validator("jetpack", "l4t", "cuda", "cudnn", "tensorrt")(
        classmethod(lambda cls, v: _check_version(v))
    )

    @property
    def l4t_major(self) -> int:
        return version_key(self.l4t)[0]

    @property
    def l4t_major_minor(self) -> str:
        major, minor = version_key(self.l4t)[:2]
        return f"{major}.{minor}"

    def apt_lines(self, soc: str, base_url: str | None = None) -> list[str]:
        """The NVIDIA apt source lines for a board of this SoC ('common' plus the SoC).

        `base_url` replaces https://repo.download.nvidia.com/jetson (a mirror, or the
        emulated fleet's local repository).
        """
        if self.apt_repo is None:
            return []
        template = self.apt_repo
        if base_url:
            template = template.replace(NVIDIA_APT_BASE, base_url.rstrip("/"))
        return [template.format(channel=ch, l4t_major_minor=self.l4t_major_minor) for ch in ("common", soc)]

    def nv_tegra_release(self, soc: str) -> str:
        """The first line of /etc/nv_tegra_release that this release writes."""
        parts = version_key(self.l4t)
        revision = ".".join(str(p) for p in parts[1:])
        board = "generic" if self.l4t_major >= 36 else f"{soc}ref"
        return (
            f"# R{parts[0]} (release), REVISION: {revision}, GCID: 00000000, BOARD: {board}, "
            "EABI: aarch64, DATE: Thu Jan  1 00:00:00 UTC 2026"
        )


def l4t_from_release_line(line: str) -> str | None:
    """The reading of what Release.nv_tegra_release() writes (design.md section 4):
    '# R32 (release), REVISION: 7.4, ...' -> '32.7.4'; None if the line is not one."""
    m = RELEASE_LINE_RE.match(line.strip())
    return f"{m.group(1)}.{m.group(2)}" if m else None


class Matrix(Strict):
    schema_version: int = Field(ge=1, le=1)
    ros_ubuntu: dict[str, list[str]]
    caffe: Caffe
    modules: dict[str, Module]
    releases: list[Release] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_check(self) -> Matrix:
        seen_jp: set[str] = set()
        seen_l4t: set[str] = set()
        for rel in self.releases:
            where = f"release {rel.jetpack}"
            if rel.jetpack in seen_jp:
                raise ValueError(f"{where}: duplicate jetpack")
            if rel.l4t in seen_l4t:
                raise ValueError(f"{where}: duplicate l4t {rel.l4t}")
            seen_jp.add(rel.jetpack)
            seen_l4t.add(rel.l4t)
            for mod in rel.modules:
                if mod not in self.modules:
                    raise ValueError(f"{where}: unknown module {mod!r}")
            if rel.ros not in self.ros_ubuntu:
                raise ValueError(f"{where}: unknown ROS distro {rel.ros!r}")
            if rel.ubuntu not in self.ros_ubuntu[rel.ros]:
                raise ValueError(f"{where}: ROS {rel.ros} does not ship for Ubuntu {rel.ubuntu}")
            for mod, modes in rel.power_modes.items():
                if mod not in rel.modules:
                    raise ValueError(f"{where}: power_modes for {mod!r}, which this release does not support")
                if self.modules[mod].default_power_mode not in modes:
                    raise ValueError(f"{where}: power_modes for {mod!r} lack the default mode")
            if rel.pytorch is not None:
                why = wheel_mismatch(rel.pytorch.url, rel.pytorch.version, rel.python)
                if why:
                    raise ValueError(f"{where}: pytorch: {why}")
        keys = [version_key(r.jetpack) for r in self.releases]
        if keys != sorted(keys):
            raise ValueError("releases must be listed in JetPack order")
        return self

    def module(self, key: str, jetpack: str | None = None) -> Module:
        """The module's entry; with `jetpack`, its power modes as that release has them."""
        mod = self.modules[key].model_copy(update={"key": key})
        if jetpack is not None:
            modes = self.release(jetpack=jetpack).power_modes.get(key)
            if modes:
                mod = mod.model_copy(update={"power_modes": dict(modes)})
        return mod

    def release(self, jetpack: str | None = None, l4t: str | None = None) -> Release:
        """Find a release by JetPack or L4T version; MatrixError names the known ones."""
        for rel in self.releases:
            if (jetpack is not None and rel.jetpack == jetpack) or (l4t is not None and rel.l4t == l4t):
                return rel
        if jetpack is not None:
            known = ", ".join(r.jetpack for r in self.releases)
            raise MatrixError(f"unknown JetPack {jetpack!r} (known: {known})")
        known = ", ".join(r.l4t for r in self.releases)
        raise MatrixError(f"unknown L4T {l4t!r} (known: {known})")

    def filter(self, module: str | None = None, jetpack: str | None = None, l4t: str | None = None) -> list[Release]:
        if module is not None and module not in self.modules:
            raise MatrixError(f"unknown module {module!r} (known: {', '.join(self.modules)})")
        picked = [
            r
            for r in self.releases
            if (module is None or module in r.modules)
            and (jetpack is None or r.jetpack == jetpack or r.jetpack.startswith(jetpack + "."))
            and (l4t is None or r.l4t == l4t or r.l4t.startswith(l4t + "."))
        ]
        if not picked and (jetpack or l4t):
            # say why rather than print an empty table: an unknown version, a module that
            # cannot run it, or a JetPack and an L4T that do not go together
            def matches(value: str, wanted: str | None) -> bool:
                return wanted is None or value == wanted or value.startswith(wanted + ".")

            if jetpack and not any(matches(r.jetpack, jetpack) for r in self.releases):
                self.release(jetpack=jetpack)
            if l4t and not any(matches(r.l4t, l4t) for r in self.releases):
                self.release(l4t=l4t)
            known = [r for r in self.releases if matches(r.jetpack, jetpack) and matches(r.l4t, l4t)]
            if known and module is not None:
                can = [r.jetpack for r in self.releases if module in r.modules]
                asked = f"JetPack {jetpack}" if jetpack else f"L4T {l4t}"
                raise MatrixError(
                    f"{self.modules[module].name} cannot run {asked} (it runs JetPack {can[0]} to {can[-1]})"
                )
            if not known:
                raise MatrixError(f"no release is JetPack {jetpack} with L4T {l4t}")
        return picked


DEFAULT_PATH = "data/matrix.yaml"
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _format_validation(path: str, exc: ValidationError, data: dict[str, Any]) -> str:
    """One line: where (release named by its JetPack), what; up to three problems."""
    parts = []
    for err in exc.errors()[:3]:
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "releases" and isinstance(loc[1], int):
            try:
                loc[1] = f"[jetpack {data['releases'][loc[1]]['jetpack']}]"
            except (KeyError, IndexError, TypeError):
                loc[1] = f"[{loc[1]}]"
        where = ".".join(str(p) for p in loc).replace(".[", "[") or "(top)"
        parts.append(f"{where}: {err['msg']}")
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{path}: " + "; ".join(parts) + more


def parse(text: str, source: str) -> Matrix:
    try:
        raw: Any = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a SafeLoader (C version when built)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise MatrixError(f"{source}{line}: YAML syntax error: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise MatrixError(f"{source}: expected a mapping at the top level")
    data = {k: v for k, v in raw.items() if not str(k).startswith("_")}  # drop anchor blocks
    try:
        return Matrix.model_validate(data)
    except ValidationError as exc:
        raise MatrixError(_format_validation(source, exc, data)) from exc


@functools.lru_cache(maxsize=4)
def load(path: str | None = None) -> Matrix:
    """Load and validate the matrix (the packaged one unless `path` is given)."""
    if path is None:
        text = resources.files("tx2setup").joinpath(DEFAULT_PATH).read_text(encoding="utf-8")
        return parse(text, f"tx2setup/{DEFAULT_PATH}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse(text, path)
