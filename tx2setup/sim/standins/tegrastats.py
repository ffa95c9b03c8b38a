"""STAND-IN for NVIDIA's tegrastats (tx2setup sim): one telemetry line per interval.

The line has the real layout for the board's SoC and L4T (R35+ prefixes a timestamp and
writes power as mW), e.g. on a TX2 with L4T 32:

  RAM 2185/7854MB (lfb 512x4MB) SWAP 0/3927MB (cached 0MB) CPU [1%@2035,off,off,0%@2035,...]
  EMC_FREQ 0%@1866 GR3D_FREQ 0%@114 PLL@31C ... VDD_IN 1678/1678 VDD_SYS_CPU 152/152 ...

CPU loads are measured for real (/proc/stat of the host the board shares); which cores
are online and their clocks follow the board's nvpmodel mode; there is no GPU, so
GR3D_FREQ stays 0% (per GPC cluster on R35+ Xavier/Orin: 0%@[305]). The power rails
are the module's own, as the real tool prints them. Options as the real tool: --interval MS, --logfile FILE, --start,
--stop, --verbose.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import nvpmodel

BOARD = "etc/tx2setup-sim/board.json"
PIDFILE = "run/tegrastats.pid"
# Temperature sensors in the order real lines print them (tests/fixtures/real/):
# TX2 tegrastats-r32-tx2-default.txt, AGX Xavier tegrastats-r32-agx-xavier-default.txt,
# AGX Orin tegrastats-r35plus-agx-orin.txt (CV0..2 and GPU read -256C while power-gated).
TEMPS = {
    "t186": ["PLL", "MCPU", "PMIC", "Tboard", "GPU", "BCPU", "thermal", "Tdiode"],
    "t194": ["AO", "GPU", "Tboard", "Tdiode", "AUX", "CPU", "thermal", "PMIC"],
    "t234": ["CV0", "CPU", "Tboard", "SOC2", "Tdiode", "SOC0", "CV1", "GPU", "tj", "SOC1", "CV2"],
}
# engines the AGX Orin capture prints between GR3D_FREQ and the temperatures
T234_ENGINES = "VIC_FREQ 729 APE 174"
# Power rails are the module's INA3221 monitors, so they depend on the module (carrier
# design), not on the SoC or the L4T; the L4T only changes the unit (R35+ writes mW).
RAILS = {
    "tx2": ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"],
    "tx2-nx": ["VDD_IN", "VDD_CPU_GPU", "VDD_SOC"],
    "agx-xavier": ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"],
    "xavier-nx": ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"],
    # NC: unconnected INA3221 channels, printed as such (tegrastats-r35plus-agx-orin.txt)
    "agx-orin": ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "NC", "VDDQ_VDD2_1V8AO", "NC"],
    "orin-nx": ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"],
    "orin-nano": ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"],
}
# R35+ on Xavier and Orin prints the GPU clock per GPC cluster: GR3D_FREQ 0%@[0,0] (AGX
# Orin), 0%@[305] (Orin NX/Nano), 0%@[114] (Xavier NX); L4T 32 prints 0%@114.
GPU_CLUSTERS = {"agx-orin": 2}
GPU_IDLE_MHZ = {"t186": 114, "t194": 114, "t234": 305, "agx-orin": 0}
LINE_RE = re.compile(
    r"^(?:(?P<ts>\d\d-\d\d-\d{4} \d\d:\d\d:\d\d) )?RAM (?P<ram_used>\d+)/(?P<ram_total>\d+)MB "
    r"\(lfb (?P<lfb>\d+)x(?P<lfb_size>\d+)MB\) (?:SWAP (?P<swap_used>\d+)/(?P<swap_total>\d+)MB \(cached \d+MB\) )?"
    r"CPU \[(?P<cpus>[^\]]*)\] EMC_FREQ (?P<emc>\d+)%(?:@(?P<emc_mhz>\d+))? "
    r"GR3D_FREQ (?P<gr3d>\d+)%(?:@\[?(?P<gr3d_mhz>\d+)(?:,\d+)*\]?)?(?P<rest>.*)$"
)


class CpuSampler:
    """Per-CPU busy share between two reads of /proc/stat."""

    def __init__(self, stat_path: Path = Path("/proc/stat")) -> None:
        self.path = stat_path
        self.prev = self._read()

    def _read(self) -> list[tuple[int, int]]:
        out = []
        for line in self.path.read_text().splitlines():
            if re.match(r"cpu\d+ ", line):
                vals = [int(v) for v in line.split()[1:]]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
                out.append((sum(vals), idle))
        return out or [(1, 1)]

    def loads(self) -> list[int]:
        cur = self._read()
        loads = []
        for (t1, i1), (t0, i0) in zip(cur, self.prev, strict=False):
            dt = t1 - t0
            loads.append(0 if dt <= 0 else round(100 * (dt - (i1 - i0)) / dt))
        self.prev = cur
        return loads


def _meminfo(path: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    vals: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        vals[key] = int(rest.split()[0]) // 1024 if rest.split() else 0
    return vals.get("MemTotal", 0), vals.get("MemAvailable", 0)


def format_line(
    info: dict[str, Any],
    conf: nvpmodel.Conf,
    mode: int,
    loads: list[int],
    pinned: bool,
    host_used_mb: int,
    now: float,
    as_root: bool = True,
) -> str:
    """One tegrastats line for this board's SoC and L4T, from measured loads.

    On R32 the login user gets no clocks after EMC_FREQ and GR3D_FREQ ("EMC_FREQ 0%
    GR3D_FREQ 0%", tegrastats-r32-*-default.txt); root gets "@MHz" and APE
    (tegrastats-r28-tx2-root.txt). R35+ captures show the clocks; whether as root is not
    stated, so both users get them."""
    soc = info["soc"]
    r35 = int(info["l4t_major"]) >= 35
    total = int(info["ram_mb"])
    used = max(300, min(host_used_mb, int(total * 0.9)))
    online = set(conf.online_cpus(mode))
    cap = conf.value(mode, "CPU", "MAX_FREQ")
    top = int(info["cpu_max_mhz"])
    cpu_cap = top if cap is None or cap < 0 else cap // 1000
    cells = []
    for cpu in range(int(info["cpus"])):
        if cpu not in online:
            cells.append("off")
            continue
        load = loads[cpu % len(loads)] if loads else 0
        # schedutil: idle cores sit low unless jetson_clocks pinned them to the ceiling
        freq = cpu_cap if pinned else max(345, round(cpu_cap * (0.3 + 0.7 * load / 100)))
        cells.append(f"{load}%@{freq}")
    avg = sum(loads) / len(loads) if loads else 0.0
    module = info.get("module", "")
    idle_mhz = GPU_IDLE_MHZ.get(module, GPU_IDLE_MHZ.get(soc, 0))
    gpu_mhz = int(info["gpu_max_mhz"]) if pinned else idle_mhz
    clusters = ",".join([str(gpu_mhz)] * GPU_CLUSTERS.get(module, 1))
    gpu = f"[{clusters}]" if r35 and soc != "t186" else str(gpu_mhz)
    parts = []
    if r35:
        parts.append(time.strftime("%m-%d-%Y %H:%M:%S", time.localtime(now)))
    parts.append(f"RAM {used}/{total}MB (lfb {max(1, (total - used) // 16)}x4MB)")
    parts.append(f"SWAP 0/{total // 2}MB (cached 0MB)")
    parts.append(f"CPU [{','.join(cells)}]")
    clocks = r35 or as_root
    emc_pct = min(99, round(avg / 4))
    parts.append(f"EMC_FREQ {emc_pct}%@{info['emc_max_mhz']}" if clocks else f"EMC_FREQ {emc_pct}%")
    parts.append(f"GR3D_FREQ 0%@{gpu}" if clocks else "GR3D_FREQ 0%")
    if soc == "t234":
        parts.append(T234_ENGINES)
    elif as_root and not r35:
        parts.append("APE 150")
    base_t = 30.0 + avg * 0.15
    for i, sensor in enumerate(TEMPS[soc]):
        if sensor == "PMIC":
            parts.append("PMIC@100C")
        elif soc == "t234" and (sensor.startswith("CV") or sensor == "GPU"):
            parts.append(f"{sensor}@-256C")  # power-gated while idle; no GPU here ever works
        else:
            t = base_t + (i % 3) * 0.5
            parts.append(f"{sensor}@{t:.2f}C" if r35 else f"{sensor}@{t:.1f}C".replace(".0C", "C"))
    rails = RAILS.get(module, [])
    cpu_mw = round(150 + avg * 40)
    for rail in rails:
        if "CPU" in rail:
            mw = cpu_mw
        elif rail in ("VDD_IN", "SYS5V", "VIN_SYS_5V0"):
            mw = 1600 + cpu_mw
        elif "WIFI" in rail:
            mw = 0
        else:
            mw = 380 if "SOC" in rail else 150
        parts.append(f"{rail} {mw}mW/{mw}mW" if r35 else f"{rail} {mw}/{mw}")
    return " ".join(parts)


def parse_line(line: str) -> dict[str, Any]:
    """Parse a tegrastats line (real or stand-in) into numbers; ValueError if it is not one."""
    m = LINE_RE.match(line.strip())
    if not m:
        raise ValueError(f"not a tegrastats line: {line!r}")
    cpus: list[tuple[int, int] | None] = []
    for cell in m.group("cpus").split(","):
        cm = re.fullmatch(r"(\d+)%@(\d+)", cell.strip())
        cpus.append((int(cm.group(1)), int(cm.group(2))) if cm else None)
    rest = m.group("rest")
    temps = {k: float(v) for k, v in re.findall(r"(\w+)@(-?[\d.]+)C", rest)}
    rails = {k: (int(a), int(b)) for k, a, b in re.findall(r"(\w+) (\d+)(?:mW)?/(\d+)(?:mW)?", rest)}
    return {
        "timestamp": m.group("ts"),
        "ram_used_mb": int(m.group("ram_used")),
        "ram_total_mb": int(m.group("ram_total")),
        "swap_total_mb": int(m.group("swap_total")) if m.group("swap_total") else None,
        "cpus": cpus,
        "emc_pct": int(m.group("emc")),
        "gr3d_pct": int(m.group("gr3d")),
        "gr3d_mhz": int(m.group("gr3d_mhz")) if m.group("gr3d_mhz") else None,
        "temps_c": temps,
        "rails_mw": rails,
    }


USAGE = """Usage: tegrastats [-option]
Options:
  --help                : print this help screen
  --interval <millisec> : sample the information in <milliseconds>
  --logfile  <filename> : dump the output of tegrastats to <filename>
  --start               : run tegrastats as a daemon process in the background
  --stop                : stop any running instances of tegrastats
  --verbose             : print verbose message
(STAND-IN for NVIDIA tegrastats, tx2setup sim)
"""


def _stop(root: Path) -> int:
    pidfile = root / PIDFILE
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)
    return 0


def main(argv: list[str], root: Path = Path("/")) -> int:
    interval_ms = 1000
    logfile: str | None = None
    start = stop = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--help":
            sys.stdout.write(USAGE)
            return 0
        if a in ("--interval", "--logfile"):
            if i + 1 >= len(argv):
                sys.stderr.write(f"{a} needs an argument\n{USAGE}")
                return 1
            if a == "--interval":
                if not argv[i + 1].isdigit() or int(argv[i + 1]) <= 0:
                    sys.stderr.write(f"Invalid interval: {argv[i + 1]}\n")
                    return 1
                interval_ms = int(argv[i + 1])
            else:
                logfile = argv[i + 1]
            i += 1
        elif a == "--start":
            start = True
        elif a == "--stop":
            stop = True
        elif a == "--verbose":
            pass
        else:
            sys.stderr.write(f"Unknown option {a}\n{USAGE}")
            return 1
        i += 1
    if stop:
        return _stop(root)
    info = json.loads((root / BOARD).read_text())
    conf = nvpmodel.parse_conf((root / nvpmodel.CONF).read_text())
    if start:
        if os.fork() > 0:
            return 0
        os.setsid()
        # a daemon lets go of the caller's terminal or SSH channel, else that never closes
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        (root / PIDFILE).write_text(f"{os.getpid()}\n")
    out = open(logfile, "a", buffering=1) if logfile else sys.stdout  # noqa: SIM115 - lives as long as the loop
    sampler = CpuSampler()
    try:
        while True:
            time.sleep(interval_ms / 1000)  # the real tool also waits one interval before its first line
            mode = nvpmodel.current_mode(conf, root)
            pinned = (root / nvpmodel.CLOCKS_STATE).exists()
            total, avail = _meminfo()
            loads = sampler.loads()
            line = format_line(info, conf, mode, loads, pinned, total - avail, time.time(), nvpmodel.is_root(root))
            out.write(line + "\n")
            out.flush()
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
