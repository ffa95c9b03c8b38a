"""The board's stack matches its plan: L4T, power mode, clocks, CUDA, torch, ROS, ZED,
Caffe, GStreamer, disk and swap. One small check per fact, over testinfra's `host`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tx2setup.matrix import (
    jetpack_of_package,
    l4t_from_release_line,
    l4t_of_core_package,
    stack_packages_of,
    version_matches,
)
from tx2setup.status import parse_nvpmodel_query

PY = "python3"
EMULATED_ROS_DISTRO = "debian"


def needs(plan: dict[str, Any], component: str) -> None:
    if component not in plan["components"]:
        pytest.skip(f"{component} is not in this board's components")


def l4t_of(release_line: str) -> str:
    l4t = l4t_from_release_line(release_line)
    assert l4t, f"/etc/nv_tegra_release is not in L4T format: {release_line!r}"
    return l4t


def test_l4t_matches_plan(host: Any, plan: dict[str, Any]) -> None:
    release = host.file("/etc/nv_tegra_release")
    assert release.exists, "/etc/nv_tegra_release is missing: not an L4T system"
    assert l4t_of(release.content_string.splitlines()[0]) == plan["l4t"]


def test_jetpack_packages_match_plan(host: Any, plan: dict[str, Any]) -> None:
    core = host.package("nvidia-l4t-core")
    assert core.is_installed, "nvidia-l4t-core is not installed"
    # <L4T>-<build stamp>: 32.7.4-20230608212426 (tx2setup.matrix, tests/fixtures/real/dpkg-query-*)
    assert l4t_of_core_package(core.version) == plan["l4t"], f"nvidia-l4t-core {core.version} is not L4T {plan['l4t']}"
    jetpack = host.package("nvidia-jetpack")
    assert jetpack.is_installed, "nvidia-jetpack is not installed"
    # the meta package's version is the JetPack release and a build: 4.6.4-b39 on JetPack 4/5,
    # 6.2.1+b38 on JetPack 6 (a '+', which the '-' this check once required never matched)
    assert jetpack_of_package(jetpack.version) == plan["jetpack"], (
        f"nvidia-jetpack {jetpack.version} is not JetPack {plan['jetpack']}"
    )


def test_power_mode_is_configured(host: Any, plan: dict[str, Any]) -> None:
    # the login user on R32 also gets NVPM ERROR lines (parse_nvpmodel_query says why)
    out = host.check_output("nvpmodel -q")
    mode = parse_nvpmodel_query(out)
    assert mode is not None, f"nvpmodel -q printed no power mode: {out!r}"
    assert mode == (plan["power_mode_name"], int(plan["power_mode_id"])), out


def test_jetson_clocks_service_state(host: Any, settings: dict[str, Any]) -> None:
    service = host.service("jetson_clocks")
    assert service.is_enabled == bool(settings["jetson_base_clocks_on_boot"])


def planned_stack(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(package, planned upstream version) of CUDA, cuDNN and TensorRT, with the names the
    plan carries (tx2setup.matrix.stack_packages: libcudnn9-cuda-12 on JetPack 6.1+). A plan
    written before it carried them gets them from the same function."""
    pkgs = plan.get("stack_packages") or stack_packages_of(
        plan["jetpack"], plan["l4t"], plan["cuda"], plan["cudnn"], plan["tensorrt"]
    )
    names = [p["name"] for p in pkgs]
    cuda = next(n for n in names if n.startswith("cuda-toolkit-"))
    cudnn = next(n for n in names if n.startswith("libcudnn"))
    return [(cuda, plan["cuda"]), (cudnn, plan["cudnn"]), ("tensorrt", plan["tensorrt"])]


def test_cuda_cudnn_tensorrt_at_matrix_versions(host: Any, plan: dict[str, Any]) -> None:
    for name, version in planned_stack(plan):
        pkg = host.package(name)
        assert pkg.is_installed, f"{name} is not installed"
        # dotted parts, not a string prefix: 9.3.0.75-1 is cuDNN 9.3.0, 8.2.10.1 is not 8.2.1
        assert version_matches(pkg.version, version), f"{name} is {pkg.version}, the plan says {version}"


def test_torch_imports_at_planned_version(host: Any, plan: dict[str, Any]) -> None:
    needs(plan, "pytorch")
    probe = "import json, torch; print(json.dumps([torch.__version__, torch.cuda.is_available()]))"
    out = host.check_output(f"{PY} -c '{probe}'")
    version, cuda_ok = json.loads(out.splitlines()[-1])
    planned = plan["torch_version"]
    assert version.split("+")[0].startswith(planned), f"torch {version}, the plan says {planned}"
    if not plan["emulated"]:  # every Jetson has a GPU; emulated boards have none
        assert cuda_ok, "torch.cuda.is_available() is False on a Jetson"


# Start a private roscore (own port, own process group) and ask it for its run_id.
# Background jobs of a non-interactive shell ignore SIGINT, and a roscore that lost its
# port may ignore SIGTERM too: stop the whole group with TERM, then KILL, so the check
# always ends and leaves no process behind.
ROSCORE = r"""
set -u
port=$((11400 + RANDOM % 500))
export ROS_MASTER_URI=http://127.0.0.1:$port ROS_HOSTNAME=127.0.0.1
setsid roscore -p $port >/tmp/tx2setup-roscore.log 2>&1 &
pid=$!
answer=""
for i in $(seq 150); do
  answer=$(timeout 10 rosparam get /run_id 2>/dev/null) && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
done
kill -TERM -- -$pid 2>/dev/null
for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -KILL -- -$pid 2>/dev/null
wait $pid 2>/dev/null
[ -n "$answer" ] && echo "run_id=$answer"
"""


def test_ros_is_sourced_and_roscore_answers(host: Any, plan: dict[str, Any]) -> None:
    needs(plan, "ros")
    env = host.run("bash -lc 'command -v roscore && echo ROS_DISTRO=${ROS_DISTRO:-}'")
    assert env.rc == 0, "roscore is not on PATH in a login shell (ROS not sourced)"
    distro = env.stdout.rsplit("ROS_DISTRO=", 1)[-1].strip()
    # Emulated boards are Debian 12, whose own ROS 1 packages the ros role installs
    # (roles/ros/vars/Debian-12.yml: ROS_DISTRO=debian); real boards get the plan's distro.
    expected = EMULATED_ROS_DISTRO if plan["emulated"] else plan["ros_distro"]
    assert distro == expected, f"ROS_DISTRO is {distro!r} in a login shell, the plan says {expected!r}"
    result = host.run("bash -lc %s", ROSCORE)
    assert "run_id=" in result.stdout, f"roscore did not answer: {result.stdout} {result.stderr}"


def test_zed_sdk_version(host: Any, plan: dict[str, Any]) -> None:
    needs(plan, "zed_sdk")
    header = host.file("/usr/local/zed/include/sl/Camera.hpp")
    assert header.exists, "/usr/local/zed is missing (ZED SDK not installed)"
    text = header.content_string
    parts = [re.search(rf"#define ZED_SDK_{p}_VERSION (\d+)", text) for p in ("MAJOR", "MINOR")]
    assert all(parts), "Camera.hpp carries no ZED_SDK_*_VERSION"
    found = ".".join(m.group(1) for m in parts if m)
    assert found == ".".join(plan["zed_sdk_version"].split(".")[:2])


def test_caffe_runs_and_imports(host: Any, plan: dict[str, Any]) -> None:
    needs(plan, "caffe")
    out = host.check_output("bash -lc 'caffe --version'")
    assert plan["caffe_version"] in out, out
    host.check_output(f"bash -lc \"{PY} -c 'import caffe'\"")


@pytest.mark.parametrize("element", ["v4l2src", "videoconvert", "appsink"])
def test_gstreamer_element_present(host: Any, element: str) -> None:
    result = host.run("gst-inspect-1.0 %s", element)
    assert result.rc == 0, f"GStreamer element {element} is missing (capture pipeline needs it)"


def test_disk_free(host: Any, settings: dict[str, Any]) -> None:
    free_kb = int(host.check_output("df -Pk / | awk 'NR==2 {print $4}'"))
    assert free_kb / 1024 / 1024 >= float(settings["verify_min_disk_free_gb"])


def test_swap(host: Any, plan: dict[str, Any], settings: dict[str, Any], record_property: Any) -> None:
    need_mb = float(settings["verify_min_swap_mb"])
    if plan["emulated"]:
        # A container cannot turn swap on: check the swap file the role made instead, and
        # say so in the result (verify shows a passed check's note as its message).
        path = str(settings["jetson_base_swap_file"])
        if need_mb <= 0:
            return
        swap_file = host.file(path)
        assert swap_file.exists, f"emulated board: swap file {path} is missing (containers cannot swapon; file checked)"
        size_mb = swap_file.size / 1048576
        assert size_mb >= need_mb, f"emulated board: swap file {path} is {size_mb:.0f} MB, at least {need_mb:g} needed"
        record_property("note", f"emulated board: swap file {path} is {size_mb:.0f} MB (containers cannot swapon)")
        return
    meminfo = host.file("/proc/meminfo").content_string
    m = re.search(r"SwapTotal:\s+(\d+) kB", meminfo)
    assert m is not None, "/proc/meminfo has no SwapTotal"
    total_mb = int(m.group(1)) / 1024
    assert total_mb >= need_mb, f"swap is {total_mb:.0f} MB, at least {need_mb:g} MB needed (verify_min_swap_mb)"
