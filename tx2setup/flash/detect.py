"""Boards in USB recovery mode, read from sysfs.

A Jetson in recovery mode (RCM) enumerates with USB vendor 0955 and a product ID per
module (design.md section 5, from `fill_devpaths()` in the BSP's l4t_initrd_flash.sh).
We read `<sysfs>/bus/usb/devices/*/idVendor|idProduct|busnum|devpath|serial` the way
that function does, never `lsusb` text. A booted Jetson also shows vendor 0955 (product
7020, "L4T running on Tegra"): it is not in recovery mode and is not listed.

Product IDs come from the matrix (`usb_product_ids` per module: 7c18 TX2 / TX2 NX, 7018
TX2i, 7418 TX2 4GB, ...). Product IDs the BSP knows but tx2setup does not flash (AGX
Xavier Industrial 7819/7919, Nano 7f21; tx2setup/data/l4t_bsp.yaml) are listed too, with
no module and their name, so they are refused by name instead of silently ignored (a
mass flash would take them: the BSP's own fill_devpaths() knows them).

The USB port path is `<busnum>-<devpath>` (e.g. `1-2.1`), the same string that
l4t_initrd_flash.sh and flash.sh take as `--usb-instance` and that the inventory holds
as `usb_port`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tx2setup.flash import bsp_data
from tx2setup.matrix import Matrix
from tx2setup.matrix import load as load_matrix

NVIDIA_VENDOR = "0955"
DEFAULT_SYSFS = Path("/sys")


@dataclass(frozen=True)
class RecoveryDevice:
    """One board in recovery mode, as sysfs shows it."""

    port: str  # "<busnum>-<devpath>", e.g. "1-2.1"
    product_id: str  # 4 lowercase hex digits, e.g. "7c18"
    modules: tuple[str, ...]  # matrix module keys that enumerate with this product ID; () = unsupported
    serial: str | None
    sysfs_path: Path
    name: str = ""  # the product's own name where it says more than the module (Jetson TX2i)

    @property
    def supported(self) -> bool:
        return bool(self.modules)

    @property
    def module_label(self) -> str:
        if not self.modules:
            return f"{self.name} (not supported by tx2setup)"
        label = " or ".join(self.modules)
        return f"{label} ({self.name})" if self.name else label


def product_map(matrix: Matrix) -> dict[str, tuple[str, ...]]:
    """USB product ID -> the module keys that use it (7c18 is both TX2 and TX2 NX)."""
    out: dict[str, list[str]] = {}
    for key, mod in matrix.modules.items():
        for pid in mod.usb_product_ids:
            out.setdefault(pid, []).append(key)
    return {pid: tuple(keys) for pid, keys in out.items()}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def scan(sysfs_root: str | Path = DEFAULT_SYSFS, matrix: Matrix | None = None) -> list[RecoveryDevice]:
    """Every board in recovery mode under `sysfs_root`, sorted by port."""
    pids = product_map(matrix or load_matrix())
    data = bsp_data.load()
    names = {pid: pb.name for pid, pb in data.product_boards.items()}
    unsupported = {pid: name for pid, name in data.unsupported_products.items() if pid not in pids}
    devices_dir = Path(sysfs_root) / "bus" / "usb" / "devices"
    if not devices_dir.is_dir():
        return []
    found: list[RecoveryDevice] = []
    for entry in sorted(devices_dir.iterdir()):
        if ":" in entry.name:  # an interface (1-2.1:1.0), not a device
            continue
        if _read(entry / "idVendor") != NVIDIA_VENDOR:
            continue
        product = (_read(entry / "idProduct") or "").lower()
        if product not in pids and product not in unsupported:
            continue  # e.g. 7020: a booted Jetson, not one in recovery mode
        busnum = _read(entry / "busnum")
        devpath = _read(entry / "devpath")
        # fill_devpaths() skips devices without busnum/devpath; so do we
        if not busnum or not devpath:
            continue
        found.append(
            RecoveryDevice(
                port=f"{busnum}-{devpath}",
                product_id=product,
                modules=pids.get(product, ()),
                serial=_read(entry / "serial") or None,
                sysfs_path=entry,
                name=unsupported.get(product) or names.get(product, ""),
            )
        )
    return sorted(found, key=lambda d: _port_key(d.port))


def _port_key(port: str) -> tuple[int, ...]:
    parts = port.replace("-", ".").split(".")
    return tuple(int(p) if p.isdigit() else 0 for p in parts)
