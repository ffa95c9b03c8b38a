"""Telemetry during the run: tegrastats on a Jetson, nvidia-smi on a discrete GPU, /proc otherwise.

A background thread keeps timestamped samples; each result summarises the samples of its
own time window (min/mean/max per field).
"""

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time

NVSMI_FIELDS = ("gpu_util_pct", "gpu_temp_c", "power_w", "gpu_clock_mhz", "mem_clock_mhz", "gpu_mem_used_mib")
NVSMI_QUERY = "utilization.gpu,temperature.gpu,power.draw,clocks.sm,clocks.mem,memory.used"


def parse_tegrastats(line):
    # type: (str) -> dict
    """One tegrastats line (TX2 .. Orin formats) -> numeric fields."""
    out = {}  # type: dict
    m = re.search(r"RAM (\d+)/(\d+)MB", line)
    if m:
        out["ram_used_mb"] = float(m.group(1))
        out["ram_total_mb"] = float(m.group(2))
    m = re.search(r"CPU \[([^\]]*)\]", line)
    if m:
        loads, freqs = [], []
        for core in m.group(1).split(","):
            cm = re.match(r"\s*(\d+)%@(\d+)", core)
            if cm:
                loads.append(float(cm.group(1)))
                freqs.append(float(cm.group(2)))
        if loads:
            out["cpu_util_pct"] = sum(loads) / len(loads)
            out["cpu_clock_mhz"] = max(freqs)
    m = re.search(r"GR3D_FREQ (\d+)%(?:@\[?(\d+))?", line)
    if m:
        out["gpu_util_pct"] = float(m.group(1))
        if m.group(2):
            out["gpu_clock_mhz"] = float(m.group(2))
    m = re.search(r"EMC_FREQ (\d+)%(?:@(\d+))?", line)
    if m:
        out["emc_util_pct"] = float(m.group(1))
    for name, temp in re.findall(r"\b([A-Za-z0-9_]+)@(-?\d+(?:\.\d+)?)C\b", line):
        key = name.lower()
        out["gpu_temp_c" if key == "gpu" else "temp_%s_c" % key] = float(temp)
    # Every power rail "NAME cur/avg" (TX2: no unit; Xavier/Orin: mW), e.g. VDD_IN 2000/2000,
    # POM_5V_IN 3000/3000, GPU 0mW/0mW (AGX Xavier), VDD_GPU_SOC 1234mW/1234mW, VIN_SYS_5V0 ...
    # The lookahead keeps "RAM 2012/7851MB" and "SWAP 0/3925MB" out.
    rails = {}  # type: dict
    for rail, cur in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/\d+(?:mW)?(?=\s|$)", line):
        rails[rail] = float(cur)
        out["power_%s_mw" % rail.lower()] = float(cur)
    power = input_power_mw(rails)
    if power is not None:
        out["power_w"] = power / 1000.0
    return out


# Rails that measure the whole module's input (TX2, Xavier NX, Orin NX/Nano): power_w is that rail.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


def input_power_mw(rails):
    # type: (dict) -> object
    """The module's input power in mW from one tegrastats line's rails, or None.

    An input rail (VDD_IN, POM_5V_IN) is used as is. Boards without one (AGX Xavier: GPU, CPU,
    SOC, CV, VDDRQ, SYS5V; AGX Orin: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, ...) report only
    their sub-rails: there power_w is the sum of every rail, VIN_SYS_5V0 included, as jtop
    totals it (it misses regulator losses, so it reads a little low).
    """
    for name in INPUT_RAILS:
        if name in rails:
            return rails[name]
    if "VIN_SYS_5V0" in rails or "SYS5V" in rails:
        return sum(rails.values())
    return None


def nvsmi_argv(gpu, interval_ms):
    # type: (object, int) -> list
    """The nvidia-smi sampling command, restricted to one GPU when it is known."""
    argv = ["nvidia-smi", "--query-gpu=" + NVSMI_QUERY, "--format=csv,noheader,nounits"]
    if gpu is not None:
        argv += ["-i", str(gpu)]
    argv += ["-lms", str(interval_ms)]
    return argv


def torch_gpu_id():
    # type: () -> object
    """nvidia-smi's id of the GPU torch uses: its UUID when torch exposes one.

    torch's index counts only the CUDA_VISIBLE_DEVICES GPUs, nvidia-smi's counts all of them,
    so a bare index would point at another GPU whenever that variable is set.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        return text if text.startswith(("GPU-", "MIG-")) else "GPU-" + text
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        return visible[index] if index < len(visible) else None
    return index


def empty_summary():
    # type: () -> dict
    """The telemetry block when none was sampled (--no-telemetry): every key, null values."""
    return {"source": None, "samples": 0, "interval_ms": None, "fields": {}}


def parse_nvsmi(line):
    # type: (str) -> dict
    out = {}
    for name, value in zip(NVSMI_FIELDS, line.split(",")):
        with contextlib.suppress(ValueError):  # [N/A] on GPUs that do not report it
            out[name] = float(value.strip())
    return out


class _ProcReader(object):
    def __init__(self):
        # type: () -> None
        self._last = self._cpu_times()

    @staticmethod
    def _cpu_times():
        # type: () -> tuple
        with open("/proc/stat") as fh:
            vals = [float(v) for v in fh.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0.0)
        return sum(vals), idle

    def read(self):
        # type: () -> dict
        out = {}
        total, idle = self._cpu_times()
        dt, di = total - self._last[0], idle - self._last[1]
        self._last = (total, idle)
        if dt > 0:
            out["cpu_util_pct"] = 100.0 * (1.0 - di / dt)
        mem = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                mem[k] = float(v.split()[0]) / 1024.0
        if "MemTotal" in mem and "MemAvailable" in mem:
            out["ram_used_mb"] = mem["MemTotal"] - mem["MemAvailable"]
        temps = []
        base = "/sys/class/thermal"
        if os.path.isdir(base):
            for zone in os.listdir(base):
                try:
                    with open(os.path.join(base, zone, "temp")) as fh:
                        temps.append(float(fh.read().strip()) / 1000.0)
                except (OSError, ValueError):
                    pass
        if temps:
            out["temp_max_c"] = max(temps)
        try:
            with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq") as fh:
                out["cpu_clock_mhz"] = float(fh.read().strip()) / 1000.0
        except (OSError, ValueError):
            pass
        return out


class Telemetry(object):
    """Start, then ``summary(t0, t1)`` for any window, then stop."""

    def __init__(self, interval_ms=200, prefer=None, gpu=None):
        # type: (int, object, object) -> None
        self.interval_ms = interval_ms
        self.gpu = gpu  # nvidia-smi -i: the GPU in use (UUID or index), not every GPU of the host
        self.samples = []  # type: list  # (time, dict)
        self._proc = None  # type: object
        self._thread = None  # type: object
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.source = prefer or self._choose()
        self.error = None  # type: object

    @staticmethod
    def _choose():
        # type: () -> str
        if shutil.which("tegrastats"):
            return "tegrastats"
        if shutil.which("nvidia-smi"):
            return "nvidia-smi"
        return "proc"

    def start(self):
        # type: () -> Telemetry
        if self.source == "tegrastats":
            argv = ["tegrastats", "--interval", str(self.interval_ms)]
            self._spawn(argv, parse_tegrastats)
        elif self.source == "nvidia-smi":
            if self.gpu is not None and not self._nvsmi_knows(self.gpu):
                # an id nvidia-smi does not take (old torch, MIG): sample all GPUs, and say so
                self.error = "nvidia-smi -i %s failed: every GPU of the host is sampled" % self.gpu
                self.gpu = None
            argv = nvsmi_argv(self.gpu, self.interval_ms)
            self._spawn(argv, parse_nvsmi)
        else:
            self._thread = threading.Thread(target=self._poll_proc, name="bench-telemetry")
            self._thread.daemon = True
            self._thread.start()
        return self

    @staticmethod
    def _nvsmi_knows(gpu):
        # type: (object) -> bool
        try:
            proc = subprocess.run(
                ["nvidia-smi", "-i", str(gpu), "--query-gpu=name", "--format=csv,noheader"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0

    def _spawn(self, argv, parse):
        # type: (list, object) -> None
        try:
            self._proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True
            )
        except OSError as exc:
            self.error = "%s: %s" % (argv[0], exc)
            self.source = "proc"
            self.start()
            return
        self._thread = threading.Thread(target=self._read_lines, args=(parse,), name="bench-telemetry")
        self._thread.daemon = True
        self._thread.start()

    def _read_lines(self, parse):
        # type: (object) -> None
        for line in self._proc.stdout:
            fields = parse(line)
            if fields:
                with self._lock:
                    self.samples.append((time.perf_counter(), fields))

    def _poll_proc(self):
        # type: () -> None
        reader = _ProcReader()
        while not self._stop.wait(self.interval_ms / 1000.0):
            fields = reader.read()
            with self._lock:
                self.samples.append((time.perf_counter(), fields))

    def stop(self):
        # type: () -> None
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def summary(self, t0=None, t1=None):
        # type: (object, object) -> dict
        with self._lock:
            window = [f for t, f in self.samples if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        fields = {}  # type: dict
        for sample in window:
            for k, v in sample.items():
                fields.setdefault(k, []).append(v)
        stats = dict((k, {"min": min(v), "mean": sum(v) / len(v), "max": max(v)}) for k, v in sorted(fields.items()))
        out = {"source": self.source, "samples": len(window), "interval_ms": self.interval_ms, "fields": stats}
        if self.error:
            out["error"] = self.error
        return out
