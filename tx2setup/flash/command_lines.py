"""The argument vectors for the BSP's flashing tools (run from inside Linux_for_Tegra).

- One board, eMMC (TX2, Xavier, AGX Orin): `./flash.sh --usb-instance PORT <board> mmcblk0p1`.
- One Orin NX / Orin Nano (NVMe, no eMMC): the initrd path,
  `./tools/kernel_flash/l4t_initrd_flash.sh --external-device nvme0n1p1 -c <nvme layout>
  -p "-c <qspi layout>" --showlogs --network usb0 <board> internal`.
- N identical boards: `l4t_initrd_flash.sh --no-flash --massflash N <board> <rootdev>`
  once (builds the flash package), then `--flash-only --massflash N <board> <rootdev>`.
  From R35 both steps also take `--network usb0`: the R35 README_initrd_flash.txt
  ("Workflow 7: Initrd Massflash") generates the package "using options --no-flash and
  --massflash <x> and --network usb0" and flashes with `--flash-only --massflash 5
  --network usb0`; the R32 README ("Workflow 6") has no --network in either step.

`--usb-instance` pins a single flash to the board's port, so other boards in recovery
mode are left alone. `<board>` is the host's board config (the module's `flash_board`
from the matrix, or a per-product / per-host choice, see session.py).
"""

from __future__ import annotations

from tx2setup.matrix import Module, version_key

INITRD = "./tools/kernel_flash/l4t_initrd_flash.sh"
FLASH_SH = "./flash.sh"
CREATE_USER = "./tools/l4t_create_default_user.sh"
APPLY_BINARIES = "./apply_binaries.sh"
NVME_MODULES = ("orin-nx", "orin-nano")


def uses_nvme(module: Module) -> bool:
    return module.key in NVME_MODULES


def _nvme_args(l4t: str) -> list[str]:
    # R36 moved the QSPI layout to bootloader/generic and named the NVMe layout per SoC
    if version_key(l4t)[0] >= 36:
        qspi, layout = "bootloader/generic/cfg/flash_t234_qspi.xml", "tools/kernel_flash/flash_l4t_t234_nvme.xml"
    else:
        qspi, layout = "bootloader/t186ref/cfg/flash_t234_qspi.xml", "tools/kernel_flash/flash_l4t_external.xml"
    return ["--external-device", "nvme0n1p1", "-c", layout, "-p", f"-c {qspi}", "--network", "usb0"]


def single(module: Module, port: str, l4t: str, board: str | None = None) -> list[str]:
    board = board or module.flash_board
    if uses_nvme(module):
        return [INITRD, "--usb-instance", port, *_nvme_args(l4t), "--showlogs", board, "internal"]
    return [FLASH_SH, "--usb-instance", port, board, "mmcblk0p1"]


def mass(module: Module, count: int, l4t: str, board: str | None = None) -> tuple[list[str], list[str]]:
    """(build the package, flash every board in recovery mode with it)."""
    board = board or module.flash_board
    if uses_nvme(module):
        extra = _nvme_args(l4t)  # already carries --network usb0
    elif version_key(l4t)[0] >= 35:
        extra = ["--network", "usb0"]
    else:
        extra = []
    rootdev = "internal" if uses_nvme(module) else "mmcblk0p1"
    build = [INITRD, "--no-flash", "--massflash", str(count), *extra, board, rootdev]
    flash = [INITRD, "--flash-only", "--massflash", str(count), *extra, board, rootdev]
    return build, flash


def create_user(name: str, hostname: str | None) -> list[str]:
    """No `-p`: a password on a command line is readable by every local user in /proc/PID/cmdline.

    Without it the script makes one up; tx2setup then writes the real one's hash into the
    rootfs (rootfs_user.set_password).
    """
    argv = [CREATE_USER, "-u", name, "--accept-license"]
    if hostname:
        argv += ["-n", hostname]
    return argv
