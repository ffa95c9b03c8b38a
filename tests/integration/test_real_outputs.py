"""Integration: the installed stand-ins on an emulated board print what real boards print
(tests/fixtures/real), as root and as the login user, and jetson-stats' `jetson_release`
reads the board as the plan says."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tx2setup.matrix import load as load_matrix
from tx2setup.sim import SimBoard


def _contract() -> ModuleType:
    """The fixture reader and shapes of tests/unit/test_real_fixtures.py (tests are no package)."""
    path = Path(__file__).resolve().parents[1] / "unit" / "test_real_fixtures.py"
    spec = importlib.util.spec_from_file_location("real_fixture_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


C = _contract()
CPU_LINE, HEADLINE, QUERY_NAME, RELEASE_LINE, load, shape = (
    C.CPU_LINE,
    C.HEADLINE,
    C.QUERY_NAME,
    C.RELEASE_LINE,
    C.load,
    C.shape,
)
SimFleetHandle = Any  # tests/integration/conftest.py's handle (conftest is not importable)

pytestmark = pytest.mark.integration
LOGIN_USER = "nvidia"  # what flash makes; a board without it yet is tested as `nobody`
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def as_user(handle: SimFleetHandle, board: SimBoard, command: str) -> tuple[int, str, str]:
    """Run as the login user (a non-root uid), from a root SSH session: runuser needs no password."""
    code, _, _ = handle.run(board, f"id -u {LOGIN_USER}")
    user = LOGIN_USER if code == 0 else "nobody"
    return handle.run(board, f"runuser -u {user} -- sh -c {shlex.quote(command)}")


def test_release_file_and_nvpmodel_as_root_and_login_user(sim_fleet: SimFleetHandle) -> None:
    tx2 = sim_fleet.board(module="tx2")  # L4T 32: the login user gets the EMC-cap errors
    code, out, _ = sim_fleet.run(tx2, "head -n 1 /etc/nv_tegra_release")
    assert code == 0 and RELEASE_LINE.match(out.strip()), out
    code, out, err = sim_fleet.run(tx2, "nvpmodel -q")
    lines = out.splitlines()
    assert (code, len(lines), err) == (0, len(load("nvpmodel-q-r32-nano-root.txt")[1]), ""), out
    assert QUERY_NAME.match(lines[0]) and lines[1].isdigit()
    code, out, _ = as_user(sim_fleet, tx2, "nvpmodel -q")
    real = load("nvpmodel-q-r32-nano-default.txt")[1]
    lines = out.splitlines()
    assert code == 0 and QUERY_NAME.match(lines[0]) and lines[1].isdigit() and lines[2:] == real[2:], out
    nx = sim_fleet.board(module="xavier-nx")  # L4T 35: no such errors
    code, out, _ = as_user(sim_fleet, nx, "nvpmodel -q")
    assert code == 0 and len(out.splitlines()) == 2, out


def test_jetson_clocks_and_tegrastats_as_root_and_login_user(sim_fleet: SimFleetHandle) -> None:
    tx2 = sim_fleet.board(module="tx2")
    code, out, _ = sim_fleet.run(tx2, "jetson_clocks --show")
    lines = out.splitlines()
    assert code == 0 and HEADLINE.match(lines[0]), out
    assert all(CPU_LINE.match(ln) for ln in lines if ln.startswith("cpu"))
    header, real = load("jetson_clocks-show-default-user.txt")
    code, out, _ = as_user(sim_fleet, tx2, "jetson_clocks --show")
    assert code == int(header["exit"]) and out.splitlines()[1:] == real[1:], out
    assert HEADLINE.match(out.splitlines()[0])
    # one line each; shapes from the R32 login-user and R28 root captures
    code, out, _ = as_user(sim_fleet, tx2, "timeout 5 tegrastats --interval 200 | head -n 1")
    user_line = shape(out.strip())
    real_user = shape(load("tegrastats-r32-tx2-default.txt")[1][0])
    for key in ("cpus", "emc_clock", "gr3d_form", "sensors", "rails"):
        assert user_line[key] == real_user[key], (key, out)
    code, out, _ = sim_fleet.run(tx2, "timeout 5 tegrastats --interval 200 | head -n 1")
    root_line = shape(out.strip())
    assert root_line["emc_clock"] and root_line["gr3d_form"] == "clock" and "APE" in root_line["engines"], out


@pytest.fixture
def stacked_tx2(
    fresh_board: Callable[..., tuple[SimBoard, Path]], sim_fleet: SimFleetHandle, tmp_path: Path
) -> SimBoard:
    """A TX2 with the planned JetPack packages installed from the sim's NVIDIA repository
    (what the jetpack role installs), and jetson-stats from PyPI in a venv. Root here: apt
    and the venv are set up as a user with sudo would do it, without the prompt."""
    board, _ = fresh_board("tx2", "4.6.4")
    code, out, err = sim_fleet.run(
        board,
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nvidia-jetpack python3-venv",
        timeout=600,
    )
    assert code == 0, out + err
    # The host fetches jetson-stats and its dependencies: its pip reaches PyPI through this
    # network's CA bundle, which boards do not carry (their pip found no distribution).
    wheels = tmp_path / "js"
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), "jetson-stats"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if fetched.returncode != 0:
        pytest.skip(f"PyPI is not reachable from this host: {fetched.stderr.strip().splitlines()[-1:]}")
    client = sim_fleet.connect(board)
    try:
        sftp = client.open_sftp()
        sftp.mkdir("/tmp/js-dist")
        for f in wheels.iterdir():
            sftp.put(str(f), f"/tmp/js-dist/{f.name}")
    finally:
        client.close()
    install = "python3 -m venv /opt/js && /opt/js/bin/pip install -q --no-index --find-links /tmp/js-dist jetson-stats"
    code, out, err = sim_fleet.run(board, install, timeout=600)
    assert code == 0, out + err
    return board


def test_jetson_release_reads_the_board_as_planned(stacked_tx2: SimBoard, sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    rel = m.release(jetpack="4.6.4")
    module = m.module("tx2", jetpack="4.6.4")
    code, out, err = sim_fleet.run(stacked_tx2, "/opt/js/bin/jetson_release", timeout=120)
    text = ANSI.sub("", out)
    assert code == 0, out + err
    assert f"Model: {module.model} - Jetpack {rel.jetpack} [L4T {rel.l4t}]" in text, text
    assert re.search(
        rf"NV Power Mode\[{module.default_power_mode}\]: {module.power_modes[module.default_power_mode]}", text
    )
    libs = dict(re.findall(r"^ - (CUDA|cuDNN|TensorRT): (\S+)", text, re.M))
    assert libs.get("CUDA", "").startswith(rel.cuda), text
    assert libs.get("cuDNN", "").startswith(rel.cudnn), text
    assert libs.get("TensorRT", "").startswith(rel.tensorrt), text
