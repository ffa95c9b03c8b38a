"""Inventory -> boards -> plans, through the real ansible-inventory."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

from tx2setup import fleet, plan
from tx2setup.ansible_compat import min_target_python, warnings_for

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
