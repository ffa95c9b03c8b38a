"""JetPack's package names and version strings: one table (tx2setup.matrix) for the role,
the verify check and the sim's apt repository, held against real boards' output in
tests/fixtures/real/dpkg-query-* and cuda-version-* (issue 11, defect 3 and the version strings)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tx2setup import matrix as mx
from tx2setup.checks import test_stack
from tx2setup.sim import aptrepo

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
# fixture -> the matrix release whose board it shows
DPKG_FIXTURES = {"dpkg-query-jp4.txt": "4.6.4", "dpkg-query-jp5.txt": "5.1.2", "dpkg-query-jp6.txt": "6.2.1"}


def fixture(name: str) -> tuple[dict[str, str], list[str]]:
    """(header, output lines) of a fixture: '# key: value' lines, '# ---', the output."""
    head, sep, body = (REAL / name).read_text().partition("# ---\n")
    assert sep, f"{name}: no '# ---' ends the header"
    header = dict(re.findall(r"^# (\w+): (.*)$", head, flags=re.M))
    return header, body.splitlines()


def dpkg_versions(name: str) -> dict[str, str]:
    _header, lines = fixture(name)
    return dict(line.split("\t") for line in lines)


@pytest.mark.parametrize("name", [*DPKG_FIXTURES, "cuda-version-10.2.txt", "cuda-version-12.6.json.source"])
def test_every_fixture_names_its_source(name: str) -> None:
    header, _ = fixture(name)
    assert header.get("source", "").strip(), f"{name} has no '# source:' line"


@pytest.mark.parametrize(("name", "jetpack"), DPKG_FIXTURES.items())
def test_sim_repository_serves_the_real_version_strings(name: str, jetpack: str) -> None:
    """The contract: what dpkg-query -W prints on a real board of this release is what the
    sim's stand-in repository gives its emulated boards, package for package."""
    rel = mx.load().release(jetpack=jetpack)
    served = {**aptrepo.versions(rel), "nvidia-l4t-core": aptrepo.l4t_core_version(rel)}
    built = {p.name: p.version for p in aptrepo.common_packages(rel)}
    for pkg, real in dpkg_versions(name).items():
        assert served.get(pkg) == real, (
            f"{pkg}: the sim serves {served.get(pkg)!r}, a real JetPack {jetpack} has {real!r}"
        )
        assert pkg == "nvidia-l4t-core" or built[pkg] == real


@pytest.mark.parametrize(("name", "jetpack"), DPKG_FIXTURES.items())
def test_the_parsers_and_checks_accept_real_versions(name: str, jetpack: str) -> None:
    rel = mx.load().release(jetpack=jetpack)
    real = dpkg_versions(name)
    assert mx.l4t_of_core_package(real["nvidia-l4t-core"]) == rel.l4t
    assert mx.jetpack_of_package(real["nvidia-jetpack"]) == rel.jetpack
    plan: dict[str, Any] = {"jetpack": rel.jetpack, "l4t": rel.l4t, "cuda": rel.cuda, "cudnn": rel.cudnn}
    plan.update(tensorrt=rel.tensorrt, stack_packages=mx.stack_packages(rel))
    for pkg, planned in test_stack.planned_stack(plan):
        if pkg in real:  # the JetPack 5 fixture has no cuda-toolkit line (not seen)
            assert mx.version_matches(real[pkg], planned), f"{pkg} {real[pkg]} not accepted as {planned}"
    # the role pins name=prefix*: every real version must match its prefix
    for entry in mx.stack_packages(rel):
        if entry["name"] in real:
            assert real[entry["name"]].startswith(entry["version"]), entry


def test_jetpack_6_has_no_package_libcudnn9() -> None:
    """Defect 3: cuDNN 9 is libcudnn9-cuda-12 (and -dev-cuda-12) in role, check and sim."""
    for jetpack in ("6.1", "6.2", "6.2.1", "6.2.2"):
        rel = mx.load().release(jetpack=jetpack)
        names = [p["name"] for p in mx.stack_packages(rel)]
        assert "libcudnn9-cuda-12" in names and "libcudnn9" not in names, names
        sim = {p.name for p in aptrepo.common_packages(rel)}
        assert {"libcudnn9-cuda-12", "libcudnn9-dev-cuda-12"} <= sim and "libcudnn9" not in sim
        plan = {"jetpack": rel.jetpack, "l4t": rel.l4t, "cuda": rel.cuda, "cudnn": rel.cudnn, "tensorrt": rel.tensorrt}
        assert ("libcudnn9-cuda-12", "9.3.0") in test_stack.planned_stack(plan)  # an old plan, without names
    assert mx.cudnn_package("8.2.1", "10.2") == ("libcudnn8", "libcudnn8-dev")


def test_jetpack_pins_do_not_reach_the_next_release() -> None:
    """apt pins 'nvidia-jetpack=6.2+b*': 6.2.1+b38 (same r36.4 repository) must not match."""
    rel = mx.load().release(jetpack="6.2")
    pin = next(p["version"] for p in mx.stack_packages(rel) if p["name"] == "nvidia-jetpack")
    assert "6.2+b77".startswith(pin) and not "6.2.1+b38".startswith(pin)
    assert not mx.version_matches("8.2.10.1-1", "8.2.1") and mx.version_matches("9.3.0.75-1", "9.3.0")
    assert mx.jetpack_of_package("4.6.4-b39") == "4.6.4" and mx.jetpack_of_package("4.6.4") is None


def test_cuda_version_txt_matches_a_real_jetpack_4_board() -> None:
    _header, lines = fixture("cuda-version-10.2.txt")
    name, text = aptrepo.cuda_version_file("10.2")
    assert (name, text.splitlines()) == ("version.txt", lines)


def test_cuda_version_json_matches_a_real_jetpack_6_board() -> None:
    real: dict[str, Any] = json.loads((REAL / "cuda-version-12.6.json").read_text())
    name, text = aptrepo.cuda_version_file("12.6")
    sim: dict[str, Any] = json.loads(text)
    assert name == "version.json"
    for key, entry in sim.items():  # the sim writes a subset of the keys, each as the board has it
        assert real[key] == entry, key
    # dusty-nv/jetson-containers jetson_containers/l4t_version.py reads this key
    assert sim["cuda_nvcc"]["version"].startswith("12.6.")
    # the same entry layout as the real file (3-space indent, ' : ')
    assert '   "cuda" : {\n      "name" : "CUDA SDK",\n      "version" : "12.6.11"\n   }' in text
