"""Integration: the session fleet (tx2 on JetPack 4.6.4, Xavier NX on 5.1.2), over real SSH."""

from __future__ import annotations

import re
import shlex
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tx2setup import fleet as inventory_loader
from tx2setup import plan
from tx2setup.matrix import load as load_matrix
from tx2setup.matrix import package_versions
from tx2setup.sim import caffe, identity
from tx2setup.sim.standins import tegrastats

if TYPE_CHECKING:
    from tests.integration.conftest import SimFleetHandle
    from tx2setup.sim.board import SimBoard

pytestmark = pytest.mark.integration


def fetch(url: str, dest: str) -> str:
    """A shell command that downloads url to dest with the board's own Python (no curl in the base)."""
    code = "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])"
    return f"python3 -c {shlex.quote(code)} {shlex.quote(url)} {shlex.quote(dest)}"


def test_two_boards_of_different_modules_answer_paramiko(sim_fleet: SimFleetHandle) -> None:
    assert {b.module for b in sim_fleet.boards} == {"tx2", "xavier-nx"}
    assert {b.jetpack for b in sim_fleet.boards} == {"4.6.4", "5.1.2"}
    assert len({b.address for b in sim_fleet.boards}) == 2
    for b in sim_fleet.boards:
        cmd = "hostname; id -u; systemctl is-system-running --wait || true; systemctl --failed --no-legend"
        code, out, _ = sim_fleet.run(b, cmd)
        lines = out.split()
        assert code == 0
        assert lines[0] == b.name
        assert lines[1] == "0"
        assert lines[2] in ("running", "degraded"), out  # real systemd is PID 1, booted to the end
        if lines[2] == "degraded":
            _accept_only_boot_oneshot_failures(sim_fleet, b, out)
        # The board shares the host's network, so ss lists every listener of the host; -p
        # names a process only for the board's own (its PID namespace). Port 22: the
        # board's own address only, held by its own PID 1 (ssh.socket), and no wildcard.
        code, out, _ = sim_fleet.run(b, "ss -Hltnp 'sport = :22'")
        assert code == 0
        listeners = [ln.split() for ln in out.splitlines() if ln.strip()]
        local = {f[3] for f in listeners}
        assert not local & {"0.0.0.0:22", "*:22", "[::]:22"}
        own = [f[3] for f in listeners if "users:" in " ".join(f)]
        assert own == [f"{b.address}:22"]
        code, out, _ = sim_fleet.run(b, "test ! -e /run/nologin && echo no-nologin")
        assert out.strip() == "no-nologin"  # logins open: systemd-user-sessions ran


# The board's own services must never fail. In 2 of 4 full-suite runs on the 2-core dev host
# (2026-12-01) one of systemd's boot-time oneshots failed on one board (once
# systemd-update-utmp-runlevel, once systemd-tmpfiles-setup-dev; never reproduced alone or
# under a CPU burner): tolerated here, and their journal is reported as a warning so that
# the next occurrence can be diagnosed.
ESSENTIAL_UNITS = ("ssh", "systemd-journald", "systemd-user-sessions", "tx2setup")


def _accept_only_boot_oneshot_failures(sim_fleet: SimFleetHandle, b: SimBoard, status_out: str) -> None:
    failed = [w for w in status_out.split() if w.endswith((".service", ".socket", ".mount", ".target"))]
    assert failed, status_out
    for unit in failed:
        assert unit.startswith("systemd-") and unit.endswith(".service"), status_out
        assert not unit.startswith(ESSENTIAL_UNITS), status_out
    _, journal, _ = sim_fleet.run(b, "journalctl -b --no-pager -n 15 " + " ".join(f"-u {u}" for u in failed))
    warnings.warn(f"{b.name}: boot oneshot(s) failed: {', '.join(failed)}\n{journal}", stacklevel=2)


def test_normal_user_has_sudo_with_password(sim_fleet: SimFleetHandle) -> None:
    b = sim_fleet.boards[0]
    code, out, _ = sim_fleet.run(b, "id -nG; echo nvidia | sudo -S -p '' id -u", user="nvidia")
    assert code == 0
    assert "sudo" in out.split("\n")[0].split()
    assert out.split()[-1] == "0"
    code, _, err = sim_fleet.run(b, "sudo -n true", user="nvidia")
    assert code != 0 and "password" in err


def test_password_login_is_refused(sim_fleet: SimFleetHandle) -> None:
    import paramiko

    b = sim_fleet.boards[0]
    client = paramiko.SSHClient()
    client.load_host_keys(str(b.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(b.address, username="nvidia", password="nvidia", look_for_keys=False, allow_agent=False)
    client.close()


def test_identity_files_match_the_matrix(sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    for b in sim_fleet.boards:
        module = m.module(b.module)
        rel = m.release(jetpack=b.jetpack)
        _, first, _ = sim_fleet.run(b, "head -n1 /etc/nv_tegra_release")
        assert first.strip() == rel.nv_tegra_release(module.soc)
        for name, want in (("model", [module.model]), ("compatible", identity.compatible(module))):
            code, out, _ = sim_fleet.run(b, f"cat /sys/firmware/devicetree/base/{name} | base64 -w0")
            import base64

            raw = base64.b64decode(out)
            assert raw.endswith(b"\0")
            assert raw.rstrip(b"\0").split(b"\0") == [w.encode() for w in want]
        _, serial, _ = sim_fleet.run(b, "tr -d '\\0' < /sys/firmware/devicetree/base/serial-number")
        assert re.fullmatch(r"\d{13}", serial) and serial == b.serial
        # read-only, like the real device tree
        code, _, _ = sim_fleet.run(b, "echo x > /sys/firmware/devicetree/base/model")
        assert code != 0


def test_nvpmodel_round_trip_persists_across_restart(sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    b = sim_fleet.board(module="xavier-nx")
    module = m.module(b.module)
    _, out, _ = sim_fleet.run(b, "nvpmodel -q")
    assert out == f"NV Power Mode: {module.power_modes[module.default_power_mode]}\n{module.default_power_mode}\n"
    target = next(k for k in module.power_modes if k != module.default_power_mode)
    code, _, _ = sim_fleet.run(b, f"nvpmodel -m {target}")
    assert code == 0
    _, out, _ = sim_fleet.run(b, "nvpmodel -q")
    assert out == f"NV Power Mode: {module.power_modes[target]}\n{target}\n"
    code, _, err = sim_fleet.run(b, "nvpmodel -m 99")
    assert code != 0 and "Invalid power mode" in err
    # the mode lives on the board's disk: a power cycle keeps it
    sim_fleet.fleet.stop_board(b.name)
    sim_fleet.fleet.start_board(b.name)
    _, out, _ = sim_fleet.run(b, "nvpmodel -q")
    assert out.splitlines()[1] == str(target)
    sim_fleet.run(b, f"nvpmodel -m {module.default_power_mode}")


def test_jetson_clocks_show_store_restore(sim_fleet: SimFleetHandle) -> None:
    b = sim_fleet.board(module="tx2")
    script = (
        "jetson_clocks --store /root/before.conf && jetson_clocks && jetson_clocks --show | grep '^EMC' && "
        "jetson_clocks --restore /root/before.conf && jetson_clocks --show | grep '^EMC'"
    )
    code, out, err = sim_fleet.run(b, script)
    assert code == 0, err
    pinned, restored = out.splitlines()
    assert "FreqOverride=1" in pinned and "FreqOverride=0" in restored
    code, _, err = sim_fleet.run(b, "jetson_clocks --restore /nonexistent")
    assert code == 1 and "doesn't exist" in err


def test_tegrastats_two_intervals_parse(sim_fleet: SimFleetHandle) -> None:
    for b in sim_fleet.boards:
        log = "/tmp/tegrastats.log"
        code, _, err = sim_fleet.run(b, f"rm -f {log}; tegrastats --interval 200 --logfile {log} --start")
        assert code == 0, err
        deadline = time.monotonic() + 20
        lines: list[str] = []
        while time.monotonic() < deadline and len(lines) < 2:
            _, out, _ = sim_fleet.run(b, f"cat {log}")
            lines = out.splitlines()
        code, _, _ = sim_fleet.run(b, "tegrastats --stop")
        assert code == 0
        assert len(lines) >= 2
        info = load_matrix().module(b.module)
        for line in lines[:2]:
            parsed = tegrastats.parse_line(line)
            assert parsed["ram_total_mb"] > parsed["ram_used_mb"] > 0
            assert parsed["gr3d_pct"] == 0
            assert all(c is None or 0 <= c[0] <= 100 for c in parsed["cpus"])
            assert len(parsed["cpus"]) == {"tx2": 6, "xavier-nx": 6}[b.module]
            assert parsed["rails_mw"] and parsed["temps_c"]
            # L4T 35 (JetPack 5) prefixes a timestamp and writes mW, L4T 32 does not
            assert (parsed["timestamp"] is not None) == (b.jetpack.startswith("5")), info.name


def test_apt_installs_a_stand_in_package_from_the_signed_local_repo(sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    b = sim_fleet.board(module="tx2")
    rel = m.release(jetpack=b.jetpack)
    _, sources, _ = sim_fleet.run(b, "cat /etc/apt/sources.list.d/nvidia-l4t-apt-source.list")
    assert "trusted=yes" not in sources
    assert f"{sim_fleet.upstream_url}/jetson/t186 r32.7 main" in sources
    code, out, err = sim_fleet.run(
        b,
        "apt-get update 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"nvidia-l4t-core={rel.l4t}-* 2>&1 && dpkg-query -W -f='${{Version}}' nvidia-l4t-core && echo && "
        "dpkg-query -W -f='${Description}' nvidia-l4t-core",
    )
    assert code == 0, out + err
    assert "NO_PUBKEY" not in out and "not signed" not in out
    assert re.search(rf"^{re.escape(rel.l4t)}-\d{{14}}$", out, re.M)
    assert "STAND-IN (tx2setup sim)" in out


def test_inventory_loads_and_plans_against_the_stand_ins(sim_fleet: SimFleetHandle) -> None:
    inv = inventory_loader.load(sim_fleet.inventory)
    assert {b.name for b in inv.boards} == {b.name for b in sim_fleet.boards}
    plans = {p.name: p for p in plan.resolve(inv)}
    for b in sim_fleet.boards:
        p = plans[b.name]
        assert p.emulated
        assert p.ansible_host == b.address
        assert all(line.startswith(f"deb {sim_fleet.upstream_url}/jetson/") for line in p.apt_sources)
        assert p.torch_version == "2.13.0"
        assert p.torch_wheel_url and p.torch_wheel_url.startswith(sim_fleet.upstream_url)
        assert p.zed_sdk_url and p.zed_sdk_url.startswith(sim_fleet.upstream_url)
        if "caffe" in p.components:  # the session builds Caffe on one board (conftest)
            assert p.caffe_source_url == f"{sim_fleet.upstream_url}/caffe/{caffe.FILE_NAME}"
        # each URL is served for real, reachable from the board
        for i, url in enumerate(u for u in (p.zed_sdk_url, p.caffe_source_url, p.torch_wheel_url) if u):
            code, _, err = sim_fleet.run(b, f"{fetch(url, f'/tmp/dl{i}')} && test -s /tmp/dl{i} && rm /tmp/dl{i}")
            assert code == 0, f"{url}: {err}"


def test_ansible_reaches_every_board_with_strict_host_keys(sim_fleet: SimFleetHandle, venv_bin: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [
            str(venv_bin / "ansible"),
            "all",
            "-i",
            str(sim_fleet.inventory),
            "-m",
            "ansible.builtin.setup",
            "-a",
            "filter=ansible_hostname",
            # the one flag plain Ansible needs: sudo's password is vaulted (docs/sim.md)
            "--vault-password-file",
            str(sim_fleet.fleet.layout.vault_password),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for b in sim_fleet.boards:
        assert f'"ansible_hostname": "{b.name}"' in proc.stdout


def test_zed_installer_installs_and_refuses_other_l4t(sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    tx2 = sim_fleet.board(module="tx2")
    nx = sim_fleet.board(module="xavier-nx")
    inv = {p.name: p for p in plan.resolve(inventory_loader.load(sim_fleet.inventory))}
    url = inv[tx2.name].zed_sdk_url
    assert url
    get = fetch(url, "/tmp/zed.run")
    code, out, err = sim_fleet.run(tx2, f"{get} && chmod +x /tmp/zed.run && /tmp/zed.run -- silent skip_tools")
    assert code == 0, out + err
    rel = m.release(jetpack=tx2.jetpack)
    assert rel.zed_sdk is not None
    major, minor = rel.zed_sdk.version.split(".")[:2]
    _, hpp, _ = sim_fleet.run(
        tx2, "cat /usr/local/zed/include/sl/Camera.hpp; test ! -e /usr/local/zed/tools && echo notools"
    )
    assert f"#define ZED_SDK_MAJOR_VERSION {major}" in hpp and f"#define ZED_SDK_MINOR_VERSION {minor}" in hpp
    assert "notools" in hpp
    # the TX2's installer (L4T 32.7) on the Xavier NX (L4T 35.4) fails like the real one
    code, _, err = sim_fleet.run(nx, f"{get} && sh /tmp/zed.run -- silent skip_tools")
    assert code != 0 and "L4T 32.7" in err and "35.4" in err
    code, _, _ = sim_fleet.run(nx, "test -e /usr/local/zed")
    assert code != 0


def test_nvidia_jetpack_pulls_the_release_stack(sim_fleet: SimFleetHandle) -> None:
    m = load_matrix()
    b = sim_fleet.board(module="xavier-nx")
    rel = m.release(jetpack=b.jetpack)
    code, out, err = sim_fleet.run(
        b,
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        f"nvidia-jetpack={package_versions(rel)['nvidia-jetpack']} >/dev/null && /usr/local/cuda/bin/nvcc --version && "
        "cat /usr/include/cudnn_version.h && python3 -c 'import tensorrt; print(tensorrt.__version__)' && "
        "dpkg-query -W -f='${Version}\\n' nvidia-l4t-core",
    )
    assert code == 0, out + err
    assert f"release {rel.cuda}," in out
    assert f"#define CUDNN_MAJOR {rel.cudnn.split('.')[0]}" in out
    assert rel.tensorrt in out.splitlines()
    assert out.splitlines()[-1].startswith(f"{rel.l4t}-")
    # nvcc is a stand-in: it reports, it does not compile
    code, _, err = sim_fleet.run(b, "/usr/local/cuda/bin/nvcc -c x.cu")
    assert code == 1 and "STAND-IN" in err


def test_l4t_core_of_another_soc_is_refused(sim_fleet: SimFleetHandle) -> None:
    b = sim_fleet.board(module="tx2")
    core = package_versions(load_matrix().release(l4t="35.4.1"))["nvidia-l4t-core"]
    url = f"{sim_fleet.upstream_url}/jetson/t194/pool/r35.4/nvidia-l4t-core_{core}_all.deb"
    code, out, err = sim_fleet.run(b, f"{fetch(url, '/tmp/core.deb')} && dpkg -i /tmp/core.deb")
    assert code != 0 and "tegra194" in out + err


def test_the_login_user_finds_the_l4t_tools_in_a_plain_ssh_command(sim_fleet: SimFleetHandle) -> None:
    # Ubuntu's /etc/environment puts the sbin dirs on every SSH session's PATH (pam_env);
    # Debian's default user PATH has none, so without it `ssh board nvpmodel -q` fails
    for b in sim_fleet.boards:
        code, out, err = sim_fleet.run(b, "command -v nvpmodel tegrastats jetson_clocks", user="nvidia")
        assert code == 0, err
        assert out.split() == ["/usr/sbin/nvpmodel", "/usr/bin/tegrastats", "/usr/bin/jetson_clocks"]
