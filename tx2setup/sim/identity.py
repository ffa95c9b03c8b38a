"""A board's Jetson identity, from the matrix: pure functions, no I/O.

What a real board shows and the sim reproduces: /etc/nv_tegra_release, the device-tree
files under /sys/firmware/devicetree/base, /etc/nvpmodel.conf (the power-mode table the
stand-in nvpmodel reads, in the real file's format) and the small JSON the stand-in
tools read for the hardware facts nvpmodel.conf does not hold.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from tx2setup.matrix import Module, Release, l4t_from_release_line, version_key


@dataclass(frozen=True)
class Hardware:
    """Facts used by the stand-in tools: CPU layout and clock ceilings (MHz)."""

    cpus: int
    cpu_max_mhz: int
    gpu_max_mhz: int
    emc_max_mhz: int
    ram_mb: int


# From NVIDIA's module data sheets (maximum clocks in MAXN).
HARDWARE: dict[str, Hardware] = {
    "tx2": Hardware(cpus=6, cpu_max_mhz=2035, gpu_max_mhz=1300, emc_max_mhz=1866, ram_mb=7854),
    "tx2-nx": Hardware(cpus=6, cpu_max_mhz=2035, gpu_max_mhz=1300, emc_max_mhz=1866, ram_mb=3956),
    "xavier-nx": Hardware(cpus=6, cpu_max_mhz=1907, gpu_max_mhz=1100, emc_max_mhz=1866, ram_mb=7765),
    "agx-xavier": Hardware(cpus=8, cpu_max_mhz=2265, gpu_max_mhz=1377, emc_max_mhz=2133, ram_mb=15692),
    "orin-nx": Hardware(cpus=8, cpu_max_mhz=1984, gpu_max_mhz=918, emc_max_mhz=3199, ram_mb=15388),
    "orin-nano": Hardware(cpus=6, cpu_max_mhz=1510, gpu_max_mhz=625, emc_max_mhz=2133, ram_mb=7620),
    "agx-orin": Hardware(cpus=12, cpu_max_mhz=2201, gpu_max_mhz=1300, emc_max_mhz=3199, ram_mb=30536),
}
STANDIN_NOTE = "STAND-IN (tx2setup sim): written for an emulated board, not by NVIDIA"


def nv_tegra_release(release: Release, soc: str) -> str:
    """The whole /etc/nv_tegra_release, as a real board has it: the first line, then on R36
    "# KERNEL_VARIANT: oot" (JetPack 6's out-of-tree kernel modules) and the userspace
    library lines (tests/fixtures/real/nv_tegra_release-r36-orin-nx.txt, the whole file).
    R32/R35 captures found show the first line only (head -n 1): their later lines are
    assumed to be the two TARGET_USERSPACE lines, unverified (docs/real-boards.md). No
    stand-in marker is added here: readers compare the file with real ones; board.json
    says the board is emulated."""
    lines = [release_line(release, soc)]
    if release.l4t_major >= 36:
        lines.append("# KERNEL_VARIANT: oot")
    lines += [
        "TARGET_USERSPACE_LIB_DIR=nvidia",
        "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia",
    ]
    return "\n".join(lines) + "\n"


def release_line(release: Release, soc: str) -> str:
    """The first line, with the BOARD field real boards write (see matrix.Release.nv_tegra_release)."""
    return release.nv_tegra_release(soc)


def l4t_from_nv_tegra_release(first_line: str) -> str:
    """'# R32 (release), REVISION: 7.4, ...' -> '32.7.4' (the reading design.md section 4 describes)."""
    l4t = l4t_from_release_line(first_line)
    if l4t is None:
        raise ValueError(f"not an nv_tegra_release line: {first_line!r}")
    return l4t


def serial_number(seed: str) -> str:
    """A 13-digit serial like a real module's, stable for one board."""
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 10**13).zfill(13)


def compatible(module: Module) -> list[str]:
    """A real board's compatible names ONE carrier+module variant, then the chip
    ("nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"); the matrix lists every variant it
    recognises. The sim's board is the first variant listed."""
    variants = [c for c in module.compatible if not c.startswith("nvidia,tegra")]
    chips = [c for c in module.compatible if c.startswith("nvidia,tegra")]
    return variants[:1] + chips


def devicetree(module: Module, serial: str) -> dict[str, bytes]:
    """The files under /sys/firmware/devicetree/base: NUL-terminated, as the kernel writes them."""
    return {
        "model": module.model.encode() + b"\0",
        "compatible": b"".join(c.encode() + b"\0" for c in compatible(module)),
        "serial-number": serial.encode() + b"\0",
    }


# Budget modes whose names give no core count still take cores offline in the real
# nvpmodel.conf: AGX Xavier 10 W / 15 W keep 2 / 4 of 8, AGX Orin 15 W / 30 W 4 / 8 of 12,
# Orin NX 10 W 4 of 8.
BUDGET_CORES = {
    ("agx-xavier", "MODE_10W"): 2,
    ("agx-xavier", "MODE_15W"): 4,
    ("agx-orin", "MODE_15W"): 4,
    ("agx-orin", "MODE_30W"): 8,
    ("orin-nx", "MODE_10W"): 4,
}


def online_cpus(module_key: str, mode_name: str) -> list[int]:
    """Which CPUs a power mode keeps online (TX2: the Denver pair is 1-2; names like _4CORE say the count)."""
    n = HARDWARE[module_key].cpus
    if (module_key, mode_name) in BUDGET_CORES:
        return list(range(BUDGET_CORES[module_key, mode_name]))
    if module_key in ("tx2", "tx2-nx"):
        if mode_name in ("MAXQ", "MAXP_CORE_ARM"):
            return [0, 3, 4, 5]
        if mode_name == "MAXP_CORE_DENVER":
            return [0, 1, 2]
        return list(range(n))
    m = re.search(r"_(\d+)CORE", mode_name)
    if m:
        return list(range(min(n, int(m.group(1)))))
    return list(range(n))


def mode_cpu_max_mhz(module_key: str, mode_name: str) -> int:
    """The CPU ceiling a mode sets: MAXN runs at the top clock, budget modes lower."""
    top = HARDWARE[module_key].cpu_max_mhz
    m = re.search(r"(\d+)W", mode_name)
    if mode_name.startswith("MAXN") or mode_name in ("MAXP_CORE_ARM", "MAXP_CORE_DENVER"):
        return top
    if mode_name == "MAXQ":
        return min(top, 1200)
    if mode_name == "MAXP_CORE_ALL":
        return min(top, 1400)
    if m:
        watts = int(m.group(1))
        return min(top, 800 + watts * 50)
    return top


def nvpmodel_conf(module: Module) -> str:
    """/etc/nvpmodel.conf in the real file's layout (POWER_MODEL blocks, then PM_CONFIG)."""
    hw = HARDWARE[module.key]
    out = [f"# {STANDIN_NOTE}", f"# {module.name} ({module.soc}) power modes, from tx2setup's matrix", ""]
    for mode_id, name in sorted(module.power_modes.items()):
        online = set(online_cpus(module.key, name))
        out.append(f"< POWER_MODEL ID={mode_id} NAME={name} >")
        out += [f"CPU_ONLINE CORE_{c} {1 if c in online else 0}" for c in range(hw.cpus)]
        out.append("CPU MIN_FREQ 0")
        cap = mode_cpu_max_mhz(module.key, name)
        out.append(f"CPU MAX_FREQ {-1 if cap == hw.cpu_max_mhz else cap * 1000}")
        out.append("GPU MIN_FREQ 0")
        out.append(f"GPU MAX_FREQ {-1 if name.startswith('MAXN') else hw.gpu_max_mhz * 800_000}")
        out.append("EMC MAX_FREQ 0")
        out.append("")
    out.append(f"< PM_CONFIG DEFAULT={module.default_power_mode} >")
    return "\n".join(out) + "\n"


def board_info(name: str, module: Module, release: Release) -> dict[str, Any]:
    """/etc/tx2setup-sim/board.json: what the stand-in tools need beyond nvpmodel.conf."""
    hw = HARDWARE[module.key]
    return {
        "stand_in": STANDIN_NOTE,
        "name": name,
        "module": module.key,
        "soc": module.soc,
        "model": module.model,
        "l4t": release.l4t,
        "l4t_major": version_key(release.l4t)[0],
        "jetpack": release.jetpack,
        "cpus": hw.cpus,
        "cpu_max_mhz": hw.cpu_max_mhz,
        "gpu_max_mhz": hw.gpu_max_mhz,
        "emc_max_mhz": hw.emc_max_mhz,
        "ram_mb": hw.ram_mb,
    }
