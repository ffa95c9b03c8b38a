"""Inventory -> boards -> plans, through the real ansible-inventory."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tx2setup import fleet, plan
from tx2setup.ansible_compat import min_target_python, warnings_for
from tx2setup.errors import PlanError

REPO = Path(__file__).resolve().parents[2]


def sample_plans() -> dict[str, plan.BoardPlan]:
    inv = fleet.load(REPO / "inventory/sample/lab.ini")
    return {p.name: p for p in plan.resolve(inv)}


def test_tx2_on_jetpack_464_resolves_to_the_jp4_stack() -> None:
    p = sample_plans()["car-tx2-01"]
    assert (p.module, p.jetpack, p.l4t, p.ubuntu, p.python) == ("tx2", "4.6.4", "32.7.4", "18.04", "3.6")
    assert p.ros_distro == "melodic"
    assert p.torch_version is not None and p.torch_version.startswith("1.10")
    assert p.torchvision_version == "0.11.1"
    assert (p.power_mode_id, p.power_mode_name) == (0, "MAXN")
    assert p.target_fps == 15.0
    assert p.apt_sources[1] == "deb https://repo.download.nvidia.com/jetson/t186 r32.7 main"


def test_group_vars_inheritance_and_host_overrides() -> None:
    plans = sample_plans()
    # jetpack and module come from group_vars/tx2.yml; target_fps from the host line
    assert plans["car-tx2-03"].target_fps == 20.0
    assert plans["car-tx2-03"].power_mode_id == 3  # the TX2's default mode
    assert plans["car-tx2-02"].power_mode_name == "MAXN"  # given by number
    orin = plans["car-orin-01"]
    assert (orin.l4t, orin.ubuntu, orin.ros_distro, orin.soc, orin.cuda_arch) == (
        "36.4.3",
        "22.04",
        "humble",
        "t234",
        "8.7",
    )
    nx = plans["car-nx-01"]
    assert (nx.l4t, nx.python, nx.ros_distro) == ("35.4.1", "3.8", "noetic")


def test_inventory_check_json_is_the_plan(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("inventory", "check", "-i", str(REPO / "inventory/sample/lab.ini"), "--json", "--limit", "tx2")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert sorted(b["name"] for b in data["boards"]) == ["car-tx2-01", "car-tx2-02", "car-tx2-03"]
    assert {b["l4t"] for b in data["boards"]} == {"32.7.4"}


def test_yaml_inventory_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "lab.yml").write_text(
        "all:\n  children:\n    sim:\n      vars: {jetson_module: tx2, jetpack: '4.6.4', tx2setup_emulated: true}\n"
        "      hosts:\n        b1:\n          ansible_host: 127.0.1.11\n          torch_version: 2.13.0\n"
        "          torch_wheel_url: http://127.0.0.1:8470/pytorch/torch-2.13.0.whl\n"
        "          nvidia_apt_base: http://127.0.0.1:8470/jetson\n          components: [pytorch, ros]\n"
    )
    (p,) = plan.resolve(fleet.load(tmp_path / "lab.yml"))
    assert p.emulated and p.torch_version == "2.13.0" and p.torch_sha256 is None
    assert p.torchvision_version is None  # the matrix pairs torchvision with its own torch only
    assert p.components == ("pytorch", "ros") and p.zed_sdk_version is None and p.caffe_version is None
    assert p.apt_sources == (
        "deb http://127.0.0.1:8470/jetson/common r32.7 main",
        "deb http://127.0.0.1:8470/jetson/t186 r32.7 main",
    )
    assert p.ansible_vars()["plan_l4t"] == "32.7.4"


def test_ansible_core_floor_warning() -> None:
    tx2 = sample_plans()["car-tx2-01"]
    assert min_target_python("2.16.19") < (3, 6, 1)
    assert warnings_for([tx2], ansible_core="2.16.19") == []
    (msg,) = warnings_for([tx2], ansible_core="2.17.0")
    assert "car-tx2-01" in msg and "Python 3.6" in msg and "2.16" in msg


def test_init_writes_the_sample_and_refuses_to_overwrite(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("init", str(tmp_path / "lab"))
    assert res.code == 0
    cmp = filecmp.dircmp(tmp_path / "lab", REPO / "inventory/sample")
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    assert fleet.load(tmp_path / "lab" / "lab.ini").boards
    before = (tmp_path / "lab" / "lab.ini").read_text()
    (tmp_path / "lab" / "lab.ini").write_text(before + "\n# mine\n")
    res = cli("init", str(tmp_path / "lab"))
    assert res.code == 2 and "already exists" in res.err
    assert (tmp_path / "lab" / "lab.ini").read_text().endswith("# mine\n")


def test_help_and_matrix_do_not_import_torch_or_ansible_runner() -> None:
    code = (
        "import sys\n"
        "from tx2setup.cli import run\n"
        "for args in (['--help'], ['matrix', '--json'], ['inventory', 'check', '-i', sys.argv[1], '--json']):\n"
        "    try:\n        run(args)\n    except SystemExit:\n        pass\n"
        "heavy = sorted(m for m in ('torch', 'ansible_runner', 'numpy', 'fabric', 'paramiko') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "inventory/sample/lab.ini")], capture_output=True, text=True, check=True
    )
    assert "HEAVY=\n" in proc.stdout


def test_version_flag(cli) -> None:  # type: ignore[no-untyped-def]
    from tx2setup import __version__

    res = cli("--version")
    assert res.code == 0 and __version__ in res.out


def plan_of(tmp_path: Path, line: str) -> plan.BoardPlan:
    (tmp_path / "lab.ini").write_text(f"[j]\nb1 ansible_host=10.0.0.1 {line}\n")
    (p,) = plan.resolve(fleet.load(tmp_path / "lab.ini"))
    return p


def test_orin_nano_on_jetpack_62_takes_maxn_super(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "jetson_module=orin-nano jetpack=6.2 power_mode=MAXN_SUPER")
    assert (p.power_mode_id, p.power_mode_name) == (2, "MAXN_SUPER")
    p = plan_of(tmp_path, "jetson_module=orin-nano jetpack=6.2")
    assert (p.power_mode_id, p.power_mode_name) == (0, "15W")


def test_xavier_nx_20w_mode_from_jetpack_46(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "jetson_module=xavier-nx jetpack=4.6.4 power_mode=MODE_20W_6CORE")
    assert p.power_mode_id == 8
    with pytest.raises(PlanError, match="has no power mode 'MODE_20W_6CORE'"):
        plan_of(tmp_path, "jetson_module=xavier-nx jetpack=4.5.1 power_mode=MODE_20W_6CORE")


def test_l4t_resolves_to_its_jetpack(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "jetson_module=tx2 l4t=32.7.4")
    assert (p.jetpack, p.l4t) == ("4.6.4", "32.7.4")
    p = plan_of(tmp_path, "jetson_module=tx2 l4t=32.7.4 jetpack=4.6.4")
    assert p.jetpack == "4.6.4"


def test_caffe_is_gated_on_cudnn(tmp_path: Path) -> None:
    assert plan_of(tmp_path, "jetson_module=tx2 jetpack=4.3 components=caffe").caffe_use_cudnn is True
    p = plan_of(tmp_path, "jetson_module=tx2 jetpack=4.6.4")
    assert p.caffe_use_cudnn is False and p.caffe_version == "1.0"
    assert any("without cuDNN" in n for n in p.notes)
    assert p.ansible_vars()["plan_caffe_use_cudnn"] is False
    assert plan_of(tmp_path, "jetson_module=tx2 jetpack=4.6.4 components=ros").caffe_use_cudnn is None


def test_jetpack_6_plan_carries_the_torch_index(tmp_path: Path) -> None:
    p = plan_of(tmp_path, "jetson_module=agx-orin jetpack=6.2")
    assert p.torch_index_url == "https://pypi.jetson-ai-lab.io/jp6/cu126" and p.torch_version == "2.5.0"
    assert any("unverified" in n for n in p.notes)
    assert plan_of(tmp_path, "jetson_module=tx2 jetpack=4.6.4").torch_index_url is None


def test_overridden_torch_must_name_one_wheel(tmp_path: Path) -> None:
    wheel = "http://10.0.0.9/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl"
    p = plan_of(tmp_path, f"jetson_module=xavier-nx jetpack=5.1.2 torch_version=2.1.0 torch_wheel_url={wheel}")
    assert (p.torch_version, p.torch_wheel_url, p.torchvision_version, p.torch_index_url) == (
        "2.1.0",
        wheel,
        None,
        None,
    )
    with pytest.raises(PlanError, match=r"is torch 2\.1\.0a0"):
        plan_of(tmp_path, f"jetson_module=xavier-nx jetpack=5.1.2 torch_version=2.0.0 torch_wheel_url={wheel}")
    with pytest.raises(PlanError, match=r"not Python 3\.6"):
        plan_of(tmp_path, f"jetson_module=tx2 jetpack=4.6.4 torch_version=2.1.0 torch_wheel_url={wheel}")
    # an index or redirect URL names no wheel file: nothing to compare
    p = plan_of(tmp_path, "jetson_module=tx2 jetpack=4.6.4 torch_version=1.10.0 torch_wheel_url=http://m/torch")
    assert p.torch_wheel_url == "http://m/torch"


def test_emulated_boards_check_only_the_wheel_version(tmp_path: Path) -> None:
    wheel = "http://127.0.0.1:8470/pytorch/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    line = f"jetson_module=tx2 jetpack=4.6.4 tx2setup_emulated=true torch_version=2.13.0 torch_wheel_url={wheel}"
    assert plan_of(tmp_path, line).torch_version == "2.13.0"
    with pytest.raises(PlanError, match=r"is torch 2\.13\.0"):
        plan_of(tmp_path, line.replace("torch_version=2.13.0", "torch_version=2.12.0"))
