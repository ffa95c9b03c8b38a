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
    # where the entry was checked: a public URL, or repo:path (issue 11: every row has one)
    source: str = Field(min_length=1)
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
    # The wheel's file name where the URL does not end in it: NVIDIA published torch 1.10.0
    # for JetPack 4.6 as a box.com share (.../fjtbno0vpo676a25cgvuqc1wty0fkkg6.whl), and pip
    # installs a wheel only under its real name (dusty-nv/jetson-containers
    # packages/ml/pytorch/config.py: PYTORCH_WHL beside PYTORCH_URL).
    wheel: str | None = Field(default=None, pattern=r"^[^/]+\.whl$")
    source: str = ""  # where the wheel URL was found (a public URL, or repo:path)

    @property
    def wheel_name(self) -> str:
        return self.wheel or self.url.rsplit("/", 1)[-1]


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
    # where the row (JetPack <-> L4T <-> stack) was checked: public URLs or repo:path, ";"-separated
    source: str = Field(min_length=1)
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
        """The first line of /etc/nv_tegra_release that this release writes. BOARD is
        "t186ref" on R32 and R35 whatever the SoC, Orin included, and "generic" on R36
        (tests/fixtures/real/nv_tegra_release-*: BOARD: t186ref on an R35 Orin NX); jetson-stats
        ignores the field for that reason (jtop/core/jetson_variables.py get_nvidia_l4t).
        `soc` is kept for callers; no real board writes it here."""
        parts = version_key(self.l4t)
        revision = ".".join(str(p) for p in parts[1:])
        board = "generic" if self.l4t_major >= 36 else "t186ref"
        return (
            f"# R{parts[0]} (release), REVISION: {revision}, GCID: 00000000, BOARD: {board}, "
            "EABI: aarch64, DATE: Thu Jan  1 00:00:00 UTC 2026"
        )


# --- JetPack's apt packages: names and version strings -------------------------------
# The one place the role (through the plan), the verify check and the sim's stand-in apt
# repository take package names and version formats from (issue 11, defect 3).
#
# Names. cuDNN 9 on JetPack 6.1+ is `libcudnn9-cuda-12` / `libcudnn9-dev-cuda-12`: there is
# no package `libcudnn9` (dusty-nv/jetson-containers packages/cuda/cudastack/config.py,
# CUDNN_PACKAGES for CUDA 12.6). cuDNN 7/8 is `libcudnn<major>` / `libcudnn<major>-dev`
# (same file, JetPack 5: "libcudnn8 libcudnn8-dev").
#
# Versions, as `dpkg-query -W` prints them on a flashed board (tests/fixtures/real/dpkg-query-*):
#   nvidia-l4t-core  <L4T>-<YYYYMMDDhhmmss>   32.7.4-20230608212426, 35.4.1-20230801124926,
#                                             36.4.4-20250616085344 (rbonghi/jetson_stats#706)
#   nvidia-jetpack   JetPack 4/5: <JP>-b<N>   4.6.4-b39, 5.1.2-b104
#                    JetPack 6:   <JP>+b<N>   6.2.1+b38, 6.2.2+b24
#   libcudnn8        8.2.1.32-1+cuda10.2, 8.6.0.166-1+cuda11.4 (jetson-containers
#                    packages/cuda/cudastack/config.py: libcudnn8_8.6.0.166-1+cuda11.4_arm64.deb)
#   libcudnn9-cuda-12  9.3.0.75-1 (no +cuda suffix)
#   tensorrt         8.2.1.9-1+cuda10.2, 8.5.2.2-1+cuda11.4, 10.3.0.30-1+cuda12.5 (sic: 12.5 on JP 6.1/6.2)
#   python3-libnvinfer 8.2.1-1+cuda10.2, 8.5.2-1+cuda11.4, 10.3.0.30-1+cuda12.5
#   cuda-toolkit-X-Y 10.2.460-1, 12.6.11-1
# Where each string was seen is in docs/real-boards.md ("Matrix") and the fixtures' headers.
L4T_CORE_RE = re.compile(r"^(\d+\.\d+\.\d+)-(\d{14})$")
JETPACK_PKG_RE = re.compile(r"^(\d+(?:\.\d+)*)([-+])b(\d+)$")


class StackVersions(BaseModel):
    """Full dpkg version strings of one release's packages (what the sim's repository serves)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    l4t_stamp: str  # the build stamp of nvidia-l4t-core (and every nvidia-l4t-* package)
    jetpack_build: int  # nvidia-jetpack's b<N>
    cuda_toolkit: str
    cudnn: str
    tensorrt: str
    python3_libnvinfer: str
    source: str


def _sv(stamp: str, build: int, cuda: str, cudnn: str, trt: str, pytrt: str, src: str) -> StackVersions:
    return StackVersions(
        l4t_stamp=stamp,
        jetpack_build=build,
        cuda_toolkit=cuda,
        cudnn=cudnn,
        tensorrt=trt,
        python3_libnvinfer=pytrt,
        source=src,
    )


_JP46 = ("10.2.460-1", "8.2.1.32-1+cuda10.2", "8.2.1.9-1+cuda10.2", "8.2.1-1+cuda10.2")
_JP51 = ("8.6.0.166-1+cuda11.4", "8.5.2.2-1+cuda11.4", "8.5.2-1+cuda11.4")
_JP61 = ("12.6.11-1", "9.3.0.75-1", "10.3.0.30-1+cuda12.5", "10.3.0.30-1+cuda12.5")
_R327_POOL = "repo.download.nvidia.com/jetson r32.7 pool listing (code index id 10005316993); "
_JP4_DPKG = "dpkg -l of a JetPack 4.6.4 board (code index id 17467787933)"
# Known real version strings per JetPack (keys: matrix JetPack). Releases not listed here get
# strings of the same documented shape with a made-up build (see package_versions()).
KNOWN_VERSIONS: dict[str, StackVersions] = {
    "4.6.1": _sv("20220219090432", 110, *_JP46, _R327_POOL + _JP4_DPKG),
    "4.6.2": _sv("20220420143418", 5, *_JP46, _R327_POOL + _JP4_DPKG),
    "4.6.3": _sv("20221122092935", 17, *_JP46, _R327_POOL + _JP4_DPKG),
    "4.6.4": _sv("20230608212426", 39, *_JP46, _R327_POOL + _JP4_DPKG),
    "4.6.5": _sv("20240611161210", 29, *_JP46, _R327_POOL + _JP4_DPKG),
    "4.6.6": _sv("20241104234540", 24, *_JP46, _R327_POOL + _JP4_DPKG),
    # JetPack 5.1.2 (L4T 35.4.1): nvidia-l4t-core 35.4.1-20230801124926 and nvidia-jetpack
    # 5.1.2-b104 (code index ids 17745015583, 63301241348); cuda-toolkit-11-4 not seen: 11.4.19-1
    # is the CUDA 11.4.4 meta-package version jetson-containers' r35 images install (unconfirmed).
    "5.1.2": _sv(
        "20230801124926",
        104,
        "11.4.19-1",
        *_JP51,
        "code index ids 17745015583, 63301241348; "
        "dusty-nv/jetson-containers packages/cuda/cudastack/config.py (libcudnn8 8.6.0.166-1+cuda11.4)",
    ),
    "5.1.3": _sv(
        "20240219203809",
        29,
        "11.4.19-1",
        *_JP51,
        "code index id 63002735621 (nvidia-jetpack 5.1.3-b29, nvidia-l4t-core 35.5.0-20240219203809)",
    ),
    "6.2.1": _sv(
        "20250616085344",
        38,
        *_JP61,
        "https://github.com/rbonghi/jetson_stats/pull/706 (nvidia-l4t-core "
        "36.4.4-20250616085344); reComputer J501 guide, dpkg -l (code index id 60282601653)",
    ),
    "6.2.2": _sv(
        "20250616085344",
        24,
        *_JP61,
        "code index id 52088695842 (nvidia-jetpack 6.2.2+b24, cuDNN "
        "9.3.0.75-1, TensorRT 10.3.0.30-1+cuda12.5); l4t stamp not seen, 6.2.1's reused",
    ),
}


def cuda_dash(cuda: str) -> str:
    """'10.2' -> '10-2' (the suffix of cuda-toolkit-10-2)."""
    major, minor = version_key(cuda)[:2]
    return f"{major}-{minor}"


def cudnn_package(cudnn: str, cuda: str) -> tuple[str, str]:
    """(runtime, dev) package names of cuDNN `cudnn` built for CUDA `cuda`."""
    major = version_key(cudnn)[0]
    if major >= 9:  # jetson-containers packages/cuda/cudastack/config.py: libcudnn9-cuda-12
        cuda_major = version_key(cuda)[0]
        return f"libcudnn{major}-cuda-{cuda_major}", f"libcudnn{major}-dev-cuda-{cuda_major}"
    return f"libcudnn{major}", f"libcudnn{major}-dev"


def jetpack_separator(jetpack: str) -> str:
    """'-' before the build number on JetPack 4/5 (4.6.4-b39), '+' on JetPack 6 (6.2.1+b38)."""
    return "+" if version_key(jetpack)[0] >= 6 else "-"


def stack_packages(rel: Release) -> list[dict[str, str]]:
    """The JetPack packages the jetpack role installs and verify checks (see stack_packages_of)."""
    return stack_packages_of(rel.jetpack, rel.l4t, rel.cuda, rel.cudnn, rel.tensorrt)


def stack_packages_of(jetpack: str, l4t: str, cuda: str, cudnn: str, tensorrt: str) -> list[dict[str, str]]:
    """The JetPack packages of a stack, each with the version prefix it is pinned to
    (apt: `name=prefix*`; "" = any version).

    The prefixes end in the version's separator, so JetPack 6.2 ("6.2+b") never takes
    6.2.1+b38 from the same r36.4 repository, nor L4T 36.4.3 ("36.4.3-") a 36.4.30."""
    cudnn_name, _dev = cudnn_package(cudnn, cuda)
    return [
        {"name": "nvidia-l4t-core", "version": f"{l4t}-"},
        {"name": "nvidia-jetpack", "version": f"{jetpack}{jetpack_separator(jetpack)}b"},
        {"name": f"cuda-toolkit-{cuda_dash(cuda)}", "version": ""},
        {"name": cudnn_name, "version": f"{cudnn}."},
        {"name": "tensorrt", "version": f"{tensorrt}."},
        {"name": "python3-libnvinfer", "version": f"{tensorrt}"},
    ]


def package_versions(rel: Release) -> dict[str, str]:
    """Package name -> the full dpkg version of that package on a board of this release:
    the strings seen on real boards where known (KNOWN_VERSIONS), else the same shapes."""
    known = KNOWN_VERSIONS.get(rel.jetpack)
    cudnn, cudnn_dev = cudnn_package(rel.cudnn, rel.cuda)
    suffix = "" if version_key(rel.cudnn)[0] >= 9 else f"+cuda{rel.cuda}"
    stamp = known.l4t_stamp if known else "20240101000000"
    build = known.jetpack_build if known else 1
    cudnn_v = known.cudnn if known else f"{rel.cudnn}.1-1{suffix}"
    return {
        "nvidia-l4t-core": f"{rel.l4t}-{stamp}",
        "nvidia-jetpack": f"{rel.jetpack}{jetpack_separator(rel.jetpack)}b{build}",
        f"cuda-toolkit-{cuda_dash(rel.cuda)}": known.cuda_toolkit if known else f"{rel.cuda}.1-1",
        cudnn: cudnn_v,
        cudnn_dev: cudnn_v,
        "tensorrt": known.tensorrt if known else f"{rel.tensorrt}.1-1+cuda{rel.cuda}",
        "python3-libnvinfer": known.python3_libnvinfer if known else f"{rel.tensorrt}-1+cuda{rel.cuda}",
    }


def release_prefix(version: str) -> tuple[int, ...]:
    """The leading dotted numbers of a dpkg version: '8.2.1.32-1+cuda10.2' -> (8, 2, 1, 32)."""
    m = re.match(r"^(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def version_matches(package_version: str, planned: str) -> bool:
    """Whether a package's dpkg version is the planned upstream version, part by part:
    '9.3.0.75-1' is cuDNN 9.3.0, '10.2.460-1' is CUDA 10.2; '8.2.10.1-1' is not 8.2.1."""
    want = version_key(planned)
    return release_prefix(package_version)[: len(want)] == want


def jetpack_of_package(version: str) -> str | None:
    """The JetPack of an nvidia-jetpack version: '4.6.4-b39' and '6.2.1+b38' -> '4.6.4', '6.2.1'."""
    m = JETPACK_PKG_RE.match(version.strip())
    return m.group(1) if m else None


def l4t_of_core_package(version: str) -> str | None:
    """The L4T of an nvidia-l4t-core version: '32.7.4-20230608212426' -> '32.7.4'."""
    m = L4T_CORE_RE.match(version.strip())
    return m.group(1) if m else None


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
                # the file name pip sees, which the URL may not carry (PyTorch.wheel)
                why = wheel_mismatch("/" + rel.pytorch.wheel_name, rel.pytorch.version, rel.python)
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
