"""NVIDIA's Jetson apt repository, rebuilt with STAND-IN packages for the emulated boards.

Same layout as https://repo.download.nvidia.com/jetson: one archive per channel (common,
t186, t194, t234), one dist per L4T major.minor (r32.7), component main. The packages
carry the real names and version strings of the matrix's releases (tx2setup.matrix
stack_packages/package_versions: e.g. libcudnn9-cuda-12 9.3.0.75-1, nvidia-jetpack
6.2.1+b38, nvidia-l4t-core 32.7.4-20230608212426) and their dependencies, but only small
files that say what they stand in for (a version header, an nvcc that reports its release
and refuses to compile). Built with dpkg-deb and indexed with dpkg-scanpackages; the
Release file is signed with the sim's key, which boards trust like NVIDIA's.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tx2setup.matrix import Matrix, Release, cuda_dash, cudnn_package, package_versions, version_key
from tx2setup.sim import gpgkey
from tx2setup.sim.hostcmd import run

CONTENT_VERSION = 2  # 2: real package names and version strings (issue 11)
ARCHES = ("amd64", "arm64")
STANDIN = "STAND-IN (tx2setup sim)"


@dataclass
class Package:
    name: str
    version: str
    summary: str
    depends: list[str] = field(default_factory=list)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (text, mode)
    scripts: dict[str, str] = field(default_factory=dict)  # preinst/postinst/postrm -> sh body

    def control(self) -> str:
        lines = [
            f"Package: {self.name}",
            f"Version: {self.version}",
            "Architecture: all",
            "Maintainer: tx2setup sim <sim@tx2setup.invalid>",
            "Section: misc",
            "Priority: optional",
        ]
        if self.depends:
            lines.append(f"Depends: {', '.join(self.depends)}")
        lines.append(f"Description: {STANDIN}: {self.summary}")
        lines.append(f" {STANDIN} for an emulated Jetson board: same name, version and dependencies as")
        lines.append(" NVIDIA's package, none of its content (there is no Jetson hardware here).")
        return "\n".join(lines) + "\n"


def l4t_core_version(rel: Release) -> str:
    """nvidia-l4t-core's version: '<L4T>-<YYYYMMDDhhmmss>' (tx2setup.matrix.package_versions)."""
    return package_versions(rel)["nvidia-l4t-core"]


def versions(rel: Release) -> dict[str, str]:
    """Package name -> version for one release (what nvidia-jetpack pins), from the matrix's
    one table of real names and version strings."""
    return {name: v for name, v in package_versions(rel).items() if name != "nvidia-l4t-core"}


# Full CUDA versions as a board's files print them: (version.txt / version.json "cuda", nvcc).
#  10.2: "CUDA Version 10.2.300" (JetPack 4.6: ykawa2/jetson-setup README.md, `CUDA 10.2.300` from
#        jetson_release, which reads /usr/local/cuda/version.txt: rbonghi/jetson_stats
#        jtop/core/jetson_libraries.py CUDA_FILE_RE 'CUDA Version (.*)')
#  10.0: 10.0.326 (JetPack 4.2.x/4.3's cuda-repo-l4t-10-0-local-10.0.326 package; not seen in a version.txt)
#  11.4: nvcc V11.4.315 (JetPack 5.1.x boards, code index ids 71453058996, 55358915498); the SDK
#        version in version.json was not seen: 11.4.19 is assumed
#  12.2: nvcc V12.2.140 and SDK 12.2.12 (JetPack 6.0): not seen here, assumed
#  12.6: version.json "cuda" 12.6.11, nvcc V12.6.68 (JetPack 6.2.1 board, code index id 60282601653;
#        tests/fixtures/real/cuda-version-12.6.json)
CUDA_FULL: dict[str, tuple[str, str]] = {
    "10.0": ("10.0.326", "10.0.326"),
    "10.2": ("10.2.300", "10.2.300"),
    "11.4": ("11.4.19", "11.4.315"),
    "12.2": ("12.2.12", "12.2.140"),
    "12.6": ("12.6.11", "12.6.68"),
}


def cuda_full(cuda: str) -> tuple[str, str]:
    """(SDK version, nvcc version) of a CUDA major.minor, e.g. ('12.6.11', '12.6.68')."""
    return CUDA_FULL.get(cuda, (f"{cuda}.0", f"{cuda}.0"))


def cuda_version_file(cuda: str) -> tuple[str, str]:
    """(file name, text) of /usr/local/cuda/version.*: version.txt up to CUDA 10.2, version.json
    from 11 on (rbonghi/jetson_stats reads the first, dusty-nv/jetson-containers
    jetson_containers/l4t_version.py reads versions['cuda_nvcc']['version'] from the second)."""
    sdk, nvcc = cuda_full(cuda)
    if version_key(cuda) < (11, 0):
        return "version.txt", f"CUDA Version {sdk}\n"
    entries = {"cuda": ("CUDA SDK", sdk), "cuda_nvcc": ("CUDA NVCC", nvcc)}
    body = ",\n".join(
        f'   "{key}" : {{\n      "name" : "{name}",\n      "version" : "{ver}"\n   }}'
        for key, (name, ver) in entries.items()
    )
    return "version.json", "{\n" + body + "\n}\n"


def _nvcc(cuda: str) -> str:
    return (
        "#!/bin/sh\n"
        f"# {STANDIN}: nvcc of CUDA {cuda}. Reports its version; cannot compile (no GPU here).\n"
        'case "$1" in\n'
        "  --version|-V)\n"
        "    echo 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
        "    echo 'Copyright (c) 2005-2023 NVIDIA Corporation'\n"
        f"    echo 'Cuda compilation tools, release {cuda}, V{cuda_full(cuda)[1]}'\n"
        f"    echo 'Build cuda_{cuda}.r{cuda}/compiler.00000000_0 ({STANDIN})'\n"
        "    exit 0 ;;\n"
        "esac\n"
        f"echo 'nvcc: {STANDIN}: no CUDA compiler on an emulated board' >&2\n"
        "exit 1\n"
    )


def common_packages(rel: Release) -> list[Package]:
    v = versions(rel)
    cudnn_major = version_key(rel.cudnn)[0]
    cudnn, cudnn_dev = cudnn_package(rel.cudnn, rel.cuda)
    cmaj, cmin, cpatch = ([*version_key(rel.cudnn), 0, 0])[:3]
    cuda_dir = f"/usr/local/cuda-{rel.cuda}"
    vname, vtext = cuda_version_file(rel.cuda)
    cuda_files: dict[str, tuple[str, int]] = {
        f"{cuda_dir}/bin/nvcc": (_nvcc(rel.cuda), 0o755),
        f"{cuda_dir}/{vname}": (vtext, 0o644),
    }
    header = "cudnn_version.h" if cudnn_major >= 8 else "cudnn.h"
    trt_major, trt_minor, trt_patch = ([*version_key(rel.tensorrt), 0, 0])[:3]
    trt_init = (
        f'"""{STANDIN}: TensorRT {rel.tensorrt} Python bindings. No TensorRT engine can be built on\n'
        'an emulated board: every attribute but __version__ raises AttributeError."""\n\n'
        f'__version__ = "{rel.tensorrt}"\n__stand_in__ = True\n\n\n'
        "def __getattr__(name):\n"
        f'    raise AttributeError("tensorrt {STANDIN}: no " + name + " on an emulated board")\n'
    )
    return [
        Package(
            f"cuda-toolkit-{cuda_dash(rel.cuda)}",
            v[f"cuda-toolkit-{cuda_dash(rel.cuda)}"],
            f"CUDA Toolkit {rel.cuda}",
            files=cuda_files,
            scripts={
                "postinst": f"ln -sfn {cuda_dir} /usr/local/cuda\n",
                "postrm": f'if [ "$(readlink /usr/local/cuda)" = "{cuda_dir}" ]; then rm -f /usr/local/cuda; fi\n',
            },
        ),
        Package(
            cudnn,
            v[cudnn],
            f"cuDNN {rel.cudnn} runtime library",
            files={f"/usr/share/doc/{cudnn}/README.STAND-IN": (f"{STANDIN}: cuDNN {rel.cudnn}\n", 0o644)},
        ),
        Package(
            cudnn_dev,
            v[cudnn_dev],
            f"cuDNN {rel.cudnn} development headers",
            depends=[f"{cudnn} (= {v[cudnn]})"],
            files={
                f"/usr/include/{header}": (
                    f"/* {STANDIN}: cuDNN {rel.cudnn} version header */\n"
                    f"#define CUDNN_MAJOR {cmaj}\n#define CUDNN_MINOR {cmin}\n#define CUDNN_PATCHLEVEL {cpatch}\n"
                    "#define CUDNN_VERSION (CUDNN_MAJOR * 1000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n",
                    0o644,
                )
            },
        ),
        Package(
            "python3-libnvinfer",
            v["python3-libnvinfer"],
            f"Python 3 bindings for TensorRT {rel.tensorrt}",
            files={
                "/usr/lib/python3/dist-packages/tensorrt/__init__.py": (trt_init, 0o644),
                "/usr/include/aarch64-linux-gnu/NvInferVersion.h": (
                    f"/* {STANDIN} */\n#define NV_TENSORRT_MAJOR {trt_major}\n#define NV_TENSORRT_MINOR {trt_minor}\n"
                    f"#define NV_TENSORRT_PATCH {trt_patch}\n",
                    0o644,
                ),
            },
        ),
        Package(
            "tensorrt",
            v["tensorrt"],
            f"Meta package for TensorRT {rel.tensorrt}",
            depends=[f"python3-libnvinfer (= {v['python3-libnvinfer']})"],
        ),
        Package(
            "nvidia-jetpack",
            v["nvidia-jetpack"],
            f"NVIDIA Jetpack {rel.jetpack} Meta Package",
            depends=[f"nvidia-l4t-core (= {l4t_core_version(rel)})"]
            + [f"{n} (= {ver})" for n, ver in v.items() if n != "nvidia-jetpack"],
        ),
    ]


def l4t_core(rel: Release, soc: str) -> Package:
    # Like NVIDIA's, it refuses a board of another SoC (the real preinst checks the same way).
    check = (
        f"if ! tr '\\0' '\\n' < /sys/firmware/devicetree/base/compatible 2>/dev/null \\\n"
        f"    | grep -qx 'nvidia,tegra{soc[1:]}'; then\n"
        f"  echo 'nvidia-l4t-core: this package is for tegra{soc[1:]} ({soc}) boards only' >&2\n  exit 1\nfi\n"
    )
    return Package(
        "nvidia-l4t-core",
        l4t_core_version(rel),
        f"NVIDIA Core Package (L4T {rel.l4t}, {soc})",
        files={"/usr/share/doc/nvidia-l4t-core/README.STAND-IN": (f"{STANDIN}: L4T {rel.l4t} core for {soc}\n", 0o644)},
        scripts={"preinst": check},
    )


def _build_deb(pkg: Package, out_dir: Path, work: Path) -> None:
    root = work / f"{pkg.name}_{pkg.version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(pkg.control())
    for script, body in pkg.scripts.items():
        p = root / "DEBIAN" / script
        p.write_text("#!/bin/sh\nset -e\n" + body)
        p.chmod(0o755)
    for path, (text, mode) in pkg.files.items():
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"{pkg.name}_{pkg.version.replace(':', '%3a')}_all.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], f"dpkg-deb {pkg.name}")


def _release_file(dist: str, channel: str, dist_dir: Path) -> str:
    files = sorted(p for p in dist_dir.rglob("*") if p.is_file())
    lines = [
        f"Origin: {STANDIN}",
        f"Label: Jetson {channel} ({STANDIN})",
        f"Suite: {dist}",
        f"Codename: {dist}",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}",
        f"Architectures: {' '.join(ARCHES)}",
        "Components: main",
        f"Description: {STANDIN} mirror of NVIDIA's Jetson {channel} repository",
    ]
    for algo, label in (("md5", "MD5Sum"), ("sha256", "SHA256")):
        lines.append(f"{label}:")
        for p in files:
            data = p.read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data):>8} {p.relative_to(dist_dir)}")
    return "\n".join(lines) + "\n"


def build(dest: Path, matrix: Matrix, gnupg: Path) -> None:
    """(Re)build the whole repository into dest, atomically replacing what was there."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    seen: set[tuple[str, str, str, str]] = set()
    dists: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="tx2sim-debs-") as work_s:
        work = Path(work_s)
        for rel in matrix.releases:
            if rel.apt_repo is None:
                continue
            dist = f"r{rel.l4t_major_minor}"
            plan = [("common", p) for p in common_packages(rel)]
            plan += [(soc, l4t_core(rel, soc)) for soc in sorted({matrix.modules[m].soc for m in rel.modules})]
            for channel, pkg in plan:
                key = (channel, dist, pkg.name, pkg.version)
                if key in seen:
                    continue
                seen.add(key)
                dists.add((channel, dist))
                _build_deb(pkg, tmp / channel / "pool" / dist, work / channel / dist)
    for channel, dist in sorted(dists):
        archive = tmp / channel
        packages = run(
            ["dpkg-scanpackages", "--multiversion", f"pool/{dist}", "/dev/null"], "dpkg-scanpackages", cwd=archive
        )
        dist_dir = archive / "dists" / dist
        for arch in ARCHES:
            bdir = dist_dir / "main" / f"binary-{arch}"
            bdir.mkdir(parents=True, exist_ok=True)
            (bdir / "Packages").write_text(packages)
            (bdir / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))
        release = dist_dir / "Release"
        release.write_text(_release_file(dist, channel, dist_dir))
        gpgkey.sign_release(gnupg, release)
    (tmp / "jetson-ota-public.asc").write_text(gpgkey.public_key(gnupg))
    old = dest.with_name(dest.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
