"""STAND-IN for NVIDIA's jetson_clocks (tx2setup sim): pin clocks to the mode's maximum.

Same options as the real script: no option pins CPU/GPU/EMC to the current nvpmodel mode's
ceilings (until the next mode change), --show prints the clocks in the real layout,
--store [file] saves the current settings (default $HOME/l4t_dfs.conf) and
--restore [file] brings them back. The state lives in /run/tx2setup-sim/jetson_clocks, so
a reboot forgets it, as on a real board.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import nvpmodel

BOARD = "etc/tx2setup-sim/board.json"
# cpuidle state names per SoC, as `jetson_clocks --show` lists them: Xavier "C1=1 c6=1 "
# (tests/fixtures/real/jetson_clocks-show-r32-xavier-nx-root.txt), Orin "WFI=1 c7=1 "
# (jetson_clocks-show-r35-agx-orin-root.txt). TX2: no public capture found; its cpuidle
# states are C1 and c7 in the L4T R32 device tree (unverified, docs/real-boards.md).
IDLE_STATES = {"t186": "C1=1 c7=1 ", "t194": "C1=1 c6=1 ", "t234": "WFI=1 c7=1 "}
# The script's own words when not run as root (NVIDIA jetson_clocks, main(): it echoes the
# --show headline before the check, and $0 is the path typed): jetson_clocks-show-default-user.txt
ROOT_ERROR = "Error: Run this script({path}) as a root user\n"
INSTALLED_AT = "/usr/bin/jetson_clocks"


def headline(info: dict[str, object]) -> str:
    """'SOC family:tegra186  Machine:NVIDIA Jetson TX2' (two spaces, the device-tree model)."""
    return f"SOC family:tegra{str(info['soc'])[1:]}  Machine:{info['model']}\n"


def cpu_order(cpus: list[int], l4t_major: int) -> list[int]:
    """The script's glob order: R32 lists /sys/devices/system/cpu/cpu[0-9] (cpu0..cpu9),
    R35+ cpu[0-9]* sorted as text, so cpu10 and cpu11 come before cpu2 (AGX Orin capture)."""
    if l4t_major < 35:
        return sorted(c for c in cpus if c < 10)
    return sorted(cpus, key=lambda c: f"cpu{c}")


def show(root: Path) -> str:
    info = json.loads((root / BOARD).read_text())
    conf = nvpmodel.parse_conf((root / nvpmodel.CONF).read_text())
    mode = nvpmodel.current_mode(conf, root)
    pinned = (root / nvpmodel.CLOCKS_STATE).exists()
    online = conf.online_cpus(mode)
    cap = conf.value(mode, "CPU", "MAX_FREQ")
    cpu_max = int(info["cpu_max_mhz"]) * 1000 if cap is None or cap < 0 else cap
    cpu_min = cpu_max if pinned else 345600
    gpu_max = int(info["gpu_max_mhz"]) * 1_000_000
    emc_max = int(info["emc_max_mhz"]) * 1_000_000
    soc = info["soc"]
    idle = IDLE_STATES.get(soc, "C1=1 c7=1 ")
    lines = [headline(info).rstrip("\n"), f"Online CPUs: {_ranges(online)}"]
    for cpu in cpu_order(online, int(info["l4t_major"])):
        cur = cpu_max if pinned else cpu_min
        lines.append(
            f"cpu{cpu}: Online=1 Governor=schedutil MinFreq={cpu_min} MaxFreq={cpu_max} CurrentFreq={cur} "
            f"IdleStates: {idle}"
        )
    gpu_min = gpu_max if pinned else 114750000
    lines.append(f"GPU MinFreq={gpu_min} MaxFreq={gpu_max} CurrentFreq={gpu_min}")
    emc_cur = emc_max if pinned else 204000000
    lines.append(f"EMC MinFreq=204000000 MaxFreq={emc_max} CurrentFreq={emc_cur} FreqOverride={int(pinned)}")
    pwm = 255 if pinned else 0
    # R32's script reads /sys/devices/pwm-fan/target_pwm; R35's walks the hwmon pwm nodes
    # and names nvfancontrol's state (NVIDIA jetson_clocks, do_fan, R32.4 and R35 copies)
    if int(info["l4t_major"]) >= 35:
        lines.append(f"FAN Dynamic Speed control=active hwmon4_pwm1={pwm}")
    else:
        lines.append(f"Fan: PWM={pwm}")
    lines.append(f"NV Power Mode: {conf.modes[mode]}")
    return "\n".join(lines) + "\n"


def _ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 4] -> '0-2,4' (the kernel's notation for CPU lists)."""
    groups: list[list[int]] = []
    for c in sorted(cpus):
        if groups and c == groups[-1][-1] + 1:
            groups[-1].append(c)
        else:
            groups.append([c])
    return ",".join(f"{g[0]}" if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)


def main(argv: list[str], root: Path = Path("/")) -> int:
    state = root / nvpmodel.CLOCKS_STATE
    default_file = Path(os.environ.get("HOME", "/root")) / "l4t_dfs.conf"
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(
            "usage: jetson_clocks [options]\n  --show             display current settings\n"
            "  --store [file]     store current settings to a file (default: ${HOME}/l4t_dfs.conf)\n"
            "  --restore [file]   restore saved settings from a file (default: ${HOME}/l4t_dfs.conf)\n"
            "  run jetson_clocks without any option to set static max frequency to CPU, GPU and EMC clocks.\n"
            "(STAND-IN for NVIDIA jetson_clocks, tx2setup sim)\n"
        )
        return 0
    if argv and argv[0] == "--show" and not nvpmodel.is_root(root):
        sys.stdout.write(headline(json.loads((root / BOARD).read_text())))
    if not nvpmodel.is_root(root):
        sys.stdout.write(ROOT_ERROR.format(path=INSTALLED_AT))
        return 1
    if argv and argv[0] == "--show":
        sys.stdout.write(show(root))
        return 0
    if argv and argv[0] in ("--store", "--restore"):
        target = Path(argv[1]) if len(argv) > 1 else default_file
        if argv[0] == "--store":
            target.write_text(f"# jetson_clocks state (STAND-IN, tx2setup sim)\npinned {int(state.exists())}\n")
            return 0
        if not target.exists():
            sys.stderr.write(f"Error: file {target} doesn't exist\n")
            return 1
        pinned = "pinned 1" in target.read_text()
        if pinned:
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text("pinned\n")
        else:
            state.unlink(missing_ok=True)
        return 0
    if argv:
        sys.stderr.write(f"Error: unknown option {argv[0]}\n")
        return 1
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("pinned\n")
    return 0
