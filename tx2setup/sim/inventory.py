"""The fleet as a standard Ansible INI inventory (pure: text from boards and settings).

Every host gets its address, the default user `nvidia` by the fleet's key with
StrictHostKeyChecking on against the fleet's known_hosts, its module and JetPack,
`tx2setup_emulated=true`, and overrides that point provisioning at the sim's upstream
stand-ins on http://127.0.0.1:<port>. As on a freshly flashed Jetson, sudo asks for the
user's password: the inventory supplies it as a user would, a vaulted
`ansible_become_password` in group_vars/sim/ beside the inventory file (`become_vars`),
and names the vault password file (0600, in the fleet's keys/ dir) in
`tx2setup_vault_password_file`, which tx2setup reads so that `-i FILE` is enough; plain
ansible-playbook takes it as `--vault-password-file`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tx2setup.matrix import Matrix, Release
from tx2setup.sim.board import SimBoard

CAFFE_TARBALL = "caffe/caffe_1.0.0+git20180821.99bd997.orig.tar.gz"  # = caffe.FILE_NAME: the real source (sim/caffe.py)
MISSING_WHEEL = "NO-CPU-TORCH-WHEEL-ON-THE-SIM-HOST-see-tx2setup-sim-up.whl"
MISSING_WHEEL_VERSION = "0.0+missing"  # the URL and the version are overridden as a pair


@dataclass(frozen=True)
class Upstream:
    """Where the sim serves what provisioning downloads."""

    port: int
    torch_wheel: str | None = None  # file name under /pytorch/
    torch_version: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def zed_file(release: Release) -> str | None:
    """ZED_SDK_Tegra_L4T32.7_v3.8.zstd.run: the real installer's name pattern."""
    if release.zed_sdk is None:
        return None
    return f"ZED_SDK_Tegra_L4T{release.l4t_major_minor}_v{release.zed_sdk.version}.zstd.run"


def group_name(module: str) -> str:
    return module.replace("-", "_")  # Ansible warns on '-' in group names


def host_vars(board: SimBoard, up: Upstream, matrix: Matrix) -> dict[str, str]:
    rel = matrix.release(jetpack=board.jetpack)
    hv = {
        "ansible_host": board.address,
        "jetson_module": board.module,
        "jetpack": board.jetpack,
        "board_serial": board.serial,
    }
    zed = zed_file(rel)
    components = ["ros", "caffe"]
    if zed is not None and rel.zed_sdk is not None:
        hv["zed_sdk_url"] = f"{up.base_url}/zed/{zed}"
        hv["zed_sdk_version"] = rel.zed_sdk.version
        components.insert(1, "zed_sdk")
    if up.torch_wheel is not None or rel.pytorch is not None:
        components.append("pytorch")
    if components != ["ros", "zed_sdk", "caffe", "pytorch"]:
        hv["components"] = ",".join(components)  # what this JetPack can have at all
    return hv


GROUP = "sim"
BECOME_VARS = Path("group_vars") / GROUP / "tx2setup-sim-become.yml"  # beside the inventory file
BECOME_HEADER = "# Written by tx2setup sim for the fleet in {fleet}: the boards' sudo password, vaulted.\n"


def become_vars(password: str, vault_password: str, fleet_dir: Path) -> str:
    """group_vars/sim/ content: ansible_become_password, inline-vaulted (Ansible's own
    VaultLib, in process: neither secret reaches a command line)."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    lib = VaultLib([("default", VaultSecret(vault_password.encode()))])
    cipher = lib.encrypt(password.encode()).decode()
    body = "".join(f"  {line}\n" for line in cipher.splitlines())
    return BECOME_HEADER.format(fleet=fleet_dir) + "ansible_become_password: !vault |\n" + body


def render(
    boards: Sequence[SimBoard], up: Upstream, key: Path, known_hosts: Path, matrix: Matrix, vault_file: Path
) -> str:
    common_args = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    group_vars = {
        # the BSP's default user, as `tx2setup flash` makes it: sudo with a password
        "ansible_user": boards[0].user,
        "ansible_become": "true",
        "tx2setup_vault_password_file": str(vault_file),
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": common_args,
        "ansible_python_interpreter": "/usr/bin/python3",
        "tx2setup_emulated": "true",
        "nvidia_apt_base": f"{up.base_url}/jetson",
        "caffe_source_url": f"{up.base_url}/{CAFFE_TARBALL}",
    }
    # No wheel on the host: a URL that fails with its reason in it, rather than falling back
    # to NVIDIA's aarch64 wheel, which cannot install on the x86_64 boards
    group_vars["torch_wheel_url"] = f"{up.base_url}/pytorch/{up.torch_wheel or MISSING_WHEEL}"
    group_vars["torch_version"] = (up.torch_version if up.torch_wheel else None) or MISSING_WHEEL_VERSION
    out = [
        "# Emulated Jetson boards (tx2setup sim): written by `tx2setup sim inventory`.",
        "# Real SSH to systemd-nspawn boards on loopback; NVIDIA-only software is served by",
        f"# the sim's stand-ins on {up.base_url} while the fleet is up.",
        "",
        f"# sudo's password: {BECOME_VARS} beside this file, vaulted; plain ansible-playbook",
        f"# needs --vault-password-file {vault_file}",
        "",
        f"[{GROUP}]",
    ]
    for b in boards:
        hv = host_vars(b, up, matrix)
        out.append(" ".join([b.name, *(f"{k}={_ini_value(v)}" for k, v in hv.items())]))
    out += ["", f"[{GROUP}:vars]"]
    out += [f"{k}={_ini_value(v)}" for k, v in group_vars.items()]
    modules = sorted({b.module for b in boards})
    for m in modules:
        out += ["", f"[{group_name(m)}]"]
        out += [b.name for b in boards if b.module == m]
    return "\n".join(out) + "\n"


def _ini_value(value: str) -> str:
    # Ansible's INI parser splits host lines with shlex: quote anything with spaces
    return shlex.quote(value) if any(c.isspace() for c in value) else value
