"""The conditions recorded with every result (design.md section 7)."""

import os
import platform
import re
import shutil
import subprocess
import sys

import numpy as np
import torch


def _read(path):
    # type: (str) -> object
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip("\x00 \n")
    except OSError:
        return None


def _run(argv, timeout=10):
    # type: (list, float) -> object
    """stdout of a tool, or None if it is missing or fails."""
    if not shutil.which(argv[0]):
        return None
    try:
        proc = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def l4t_version(text):
    # type: (object) -> object
    """'# R32 (release), REVISION: 7.1, ...' -> '32.7.1'."""
    if not text:
        return None
    m = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", text)
    return "%s.%s" % (m.group(1), m.group(2)) if m else None


def nvpmodel_mode(text):
    # type: (object) -> object
    """`nvpmodel -q` ('NV Power Mode: MAXN\\n0') -> {'name': 'MAXN', 'id': 0}."""
    if not text:
        return None
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        return None
    ids = re.findall(r"^\s*(\d+)\s*$", text, re.M)
    return {"name": m.group(1), "id": int(ids[0]) if ids else None}


def jetson_clocks_state():
    # type: () -> dict
    """Whether clocks are pinned: `jetson_clocks --show` when it can run, else min == max CPU frequency."""
    out = _run(["jetson_clocks", "--show"])
    if out:
        # jetson_clocks pins every CPU's MinFreq to its MaxFreq
        pairs = re.findall(r"MinFreq=(\d+) MaxFreq=(\d+)", out)
        if pairs:
            return {"pinned": all(a == b for a, b in pairs), "method": "jetson_clocks --show"}
    lo = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq")
    hi = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq")
    if lo and hi:
        return {"pinned": lo == hi, "method": "cpu0 scaling_min_freq == scaling_max_freq"}
    return {"pinned": None, "method": "unknown (no jetson_clocks, no cpufreq)"}


def cpu_name():
    # type: () -> str
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model"):
        m = re.search(r"^%s\s*:\s*(.+)$" % key, text, re.M)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine()


def collect(extra=None):
    # type: (object) -> dict
    nv = _read("/etc/nv_tegra_release")
    model = _read("/proc/device-tree/model")
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {
            "name": props.name,
            "capability": "%d.%d" % (props.major, props.minor),
            "memory_mib": props.total_memory // (1024 * 1024),
            "multiprocessors": props.multi_processor_count,
        }
        smi = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        if smi:
            gpu["driver"] = smi.strip().splitlines()[0]
    try:
        import tensorrt

        trt_version = tensorrt.__version__  # type: object
    except ImportError:
        trt_version = None
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__  # type: object
    except ImportError:
        ort_version = None
    cond = {
        "machine": platform.node(),
        "board": model,
        "jetson": nv is not None,
        "l4t": l4t_version(nv),
        "nv_tegra_release": nv.splitlines()[0] if nv else None,
        "nvpmodel": nvpmodel_mode(_run(["nvpmodel", "-q"])),
        "jetson_clocks": jetson_clocks_state(),
        "os": platform.platform(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tensorrt": trt_version,
        "onnxruntime": ort_version,
        "tf32": False,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "argv": list(sys.argv),
    }
    if extra:
        cond.update(extra)
    return cond
