from __future__ import annotations

import time

import pytest

from tx2setup.bench import cli
from tx2setup.bench.conditions import jetson_clocks_state, l4t_version, nvpmodel_mode
from tx2setup.bench.report import load_json
from tx2setup.bench.telemetry import Telemetry, nvsmi_argv, parse_nvsmi, parse_tegrastats

from .conftest import FAST

TX2_LINE = (
    "RAM 2012/7851MB (lfb 2x4MB) SWAP 0/3925MB (cached 0MB) CPU [12%@2035,off,off,3%@2035,5%@2035,1%@2035] "
    "EMC_FREQ 0% GR3D_FREQ 37%@1300 APE 150 PLL@39C MCPU@39C PMIC@100C Tboard@35C GPU@38C BCPU@39C "
    "thermal@38.5C Tdiode@36.25C VDD_IN 2000/2000 VDD_CPU 229/229 VDD_GPU 76/76 VDD_SOC 687/687"
)
ORIN_LINE = (
    "RAM 3149/30536MB (lfb 6x4MB) CPU [1%@729,0%@729] GR3D_FREQ 0%@[305,0] cpu@47.5C gpu@45.5C "
    "VDD_GPU_SOC 2000mW/2000mW VDD_CPU_CV 400mW/400mW VIN_SYS_5V0 3000mW/3000mW"
)


def test_parse_tegrastats_tx2():
    f = parse_tegrastats(TX2_LINE)
    assert f["ram_used_mb"] == 2012 and f["ram_total_mb"] == 7851
    assert f["cpu_util_pct"] == pytest.approx((12 + 3 + 5 + 1) / 4)
    assert f["gpu_util_pct"] == 37 and f["gpu_clock_mhz"] == 1300
    assert f["gpu_temp_c"] == 38 and f["temp_thermal_c"] == 38.5
    assert f["power_vdd_in_mw"] == 2000 and f["power_w"] == 2.0


def test_parse_tegrastats_orin_bracketed_clock_and_mw():
    f = parse_tegrastats(ORIN_LINE)
    assert f["gpu_clock_mhz"] == 305 and f["gpu_temp_c"] == 45.5
    assert f["power_vdd_gpu_soc_mw"] == 2000 and f["power_vin_sys_5v0_mw"] == 3000
    assert f["power_w"] == pytest.approx(5.4)  # no input rail on AGX Orin: the sum of its rails
    assert "power_ram_mw" not in f and "power_swap_mw" not in f


AGX_XAVIER_LINE = (
    "RAM 1903/15692MB (lfb 3058x4MB) SWAP 0/7846MB (cached 0MB) CPU [2%@1190,1%@1190] EMC_FREQ 0% "
    "GR3D_FREQ 0% AO@33C GPU@33.5C Tdiode@36.25C PMIC@100C AUX@32.5C CPU@34C thermal@33.45C "
    "GPU 0/0 CPU 155/155 SOC 930/930 CV 0/0 VDDRQ 155/155 SYS5V 1636/1636"
)
ORIN_NANO_LINE = (
    "RAM 2177/7620MB (lfb 2x4MB) CPU [0%@1510,0%@1510] GR3D_FREQ 0% cpu@47.5C gpu@46.5C "
    "VDD_IN 4806mW/4806mW VDD_CPU_GPU_CV 520mW/520mW VDD_SOC 1400mW/1400mW"
)


def test_parse_tegrastats_every_rail_and_input_power():
    xav = parse_tegrastats(AGX_XAVIER_LINE)
    assert xav["power_gpu_mw"] == 0 and xav["power_sys5v_mw"] == 1636 and xav["power_cpu_mw"] == 155
    assert xav["power_w"] == pytest.approx((155 + 930 + 155 + 1636) / 1000.0)
    nano = parse_tegrastats(ORIN_NANO_LINE)
    assert nano["power_vdd_cpu_gpu_cv_mw"] == 520
    assert nano["power_w"] == pytest.approx(4.806)  # the input rail, not a sum
    pom = parse_tegrastats("RAM 1/2MB POM_5V_IN 3000/2900 POM_5V_GPU 500/500")
    assert pom["power_w"] == 3.0 and pom["power_pom_5v_gpu_mw"] == 500


def test_nvidia_smi_queries_only_the_gpu_in_use():
    argv = nvsmi_argv("GPU-1234", 200)
    assert argv[argv.index("-i") + 1] == "GPU-1234"
    assert "-i" not in nvsmi_argv(None, 200)


def test_no_telemetry_keeps_every_key(tmp_path):
    out = tmp_path / "r.json"
    assert cli.main(["--backends", "cpu-fp32", "--json", str(out), *FAST]) == 0
    doc = load_json(str(out))
    keys = {"source", "samples", "interval_ms", "fields"}
    assert set(doc["telemetry"]) == keys and doc["telemetry"]["source"] is None
    r = doc["results"][0]
    assert set(r["inference"]["telemetry"]) == keys
    assert set(r["end_to_end"]["telemetry"]) == keys


def test_parse_nvidia_smi_skips_na():
    f = parse_nvsmi("87, 41, 183.5, 1980, 2619, [N/A]")
    assert f == {"gpu_util_pct": 87, "gpu_temp_c": 41, "power_w": 183.5, "gpu_clock_mhz": 1980, "mem_clock_mhz": 2619}


def test_proc_telemetry_summarises_a_window():
    tel = Telemetry(interval_ms=20, prefer="proc").start()
    deadline = time.monotonic() + 5
    while len(tel.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    tel.stop()
    s = tel.summary()
    assert s["source"] == "proc" and s["samples"] >= 3
    util = s["fields"]["cpu_util_pct"]
    assert 0 <= util["min"] <= util["mean"] <= util["max"] <= 100
    assert tel.summary(t0=time.perf_counter() + 100)["samples"] == 0


def test_conditions_parsers():
    assert l4t_version("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, EABI: aarch64") == "32.7.1"
    assert l4t_version(None) is None
    assert nvpmodel_mode("NV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert nvpmodel_mode("NV Power Mode: MAXP_CORE_ARM\n3") == {"name": "MAXP_CORE_ARM", "id": 3}
    assert jetson_clocks_state()["method"]


def test_nvidia_smi_falls_back_when_it_rejects_the_id(tmp_path, monkeypatch):
    # a stand-in nvidia-smi that rejects "-i" and prints one sample line otherwise
    fake = tmp_path / "nvidia-smi"
    fake.write_text('#!/bin/sh\ncase "$*" in *"-i "*) exit 6;; esac\necho "50, 40, 100.0, 1500, 2000, 10"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    tel = Telemetry(interval_ms=50, prefer="nvidia-smi", gpu="GPU-bogus").start()
    tel._thread.join(timeout=30)  # the stand-in exits after one line: the reader ends at EOF
    tel.stop()
    s = tel.summary()
    assert s["source"] == "nvidia-smi" and "every GPU of the host is sampled" in s["error"]
    assert s["samples"] == 1 and s["fields"]["gpu_util_pct"]["mean"] == 50
