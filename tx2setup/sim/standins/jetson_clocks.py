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
MACHINES = {"t186": "quill", "t194": "galen", "t234": "concord"}


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
    lines = [f"SOC family:tegra{soc[1:]}  Machine:{MACHINES.get(soc, 'unknown')}", f"Online CPUs: {_ranges(online)}"]
    for cpu in online:
        cur = cpu_max if pinned else cpu_min
        lines.append(
            f"cpu{cpu}: Online=1 Governor=schedutil MinFreq={cpu_min} MaxFreq={cpu_max} CurrentFreq={cur} "
            "IdleStates: C1=1 c7=1"
        )
    gpu_min = gpu_max if pinned else 114750000
    lines.append(f"GPU MinFreq={gpu_min} MaxFreq={gpu_max} CurrentFreq={gpu_min}")
    emc_cur = emc_max if pinned else 204000000
    lines.append(f"EMC MinFreq=204000000 MaxFreq={emc_max} CurrentFreq={emc_cur} FreqOverride={int(pinned)}")
    lines.append(f"Fan: PWM={255 if pinned else 0}")
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
    if root == Path("/") and os.geteuid() != 0:
        sys.stderr.write("Error: Run this script($0) as a root user\n".replace("$0", "jetson_clocks"))
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
