"""Unit: the stand-in L4T tools (nvpmodel, jetson_clocks, tegrastats) against a fake board root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tx2setup import status
from tx2setup.bench import telemetry
from tx2setup.matrix import load as load_matrix
from tx2setup.sim import identity
from tx2setup.sim.standins import jetson_clocks, nvpmodel, tegrastats

# Real lines, from NVIDIA forum posts (TX2 on L4T 32; AGX Orin on L4T 35): the parser must read them too.
REAL_TX2 = (
    "RAM 2185/7854MB (lfb 1033x4MB) SWAP 0/3927MB (cached 0MB) CPU [1%@345,off,off,0%@345,0%@345,1%@345] "
    "EMC_FREQ 0% GR3D_FREQ 0% PLL@31C MCPU@31C PMIC@100C Tboard@27C GPU@29.5C BCPU@31C thermal@30.7C "
    "Tdiode@28C VDD_SYS_GPU 152/152 VDD_SYS_SOC 381/381 VDD_4V0_WIFI 0/0 VDD_IN 1678/1678 VDD_SYS_CPU 152/152 "
    "VDD_SYS_DDR 266/266"
)
REAL_ORIN = (
    "08-19-2023 10:05:34 RAM 2478/30536MB (lfb 6278x4MB) SWAP 0/15268MB (cached 0MB) "
    "CPU [0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,off,off,off,off] EMC_FREQ 0%@2133 "
    "GR3D_FREQ 0%@0 VIC_FREQ 729 APE 174 CV0@-256C CPU@45.75C SOC2@42.5C SOC0@43.1C CV1@-256C GPU@-256C "
    "tj@45.75C SOC1@41.9C CV2@-256C VDD_GPU_SOC 2373mW/2373mW VDD_CPU_CV 395mW/395mW VIN_SYS_5V0 3412mW/3412mW"
)


def make_root(tmp_path: Path, module_key: str, jetpack: str) -> Path:
    m = load_matrix()
    module = m.module(module_key)
    root = tmp_path / module_key
    (root / "etc/tx2setup-sim").mkdir(parents=True)
    (root / "etc/nvpmodel.conf").write_text(identity.nvpmodel_conf(module))
    info = identity.board_info("b1", module, m.release(jetpack=jetpack))
    (root / "etc/tx2setup-sim/board.json").write_text(json.dumps(info))
    return root


def run(capsys: pytest.CaptureFixture[str], fn: object, argv: list[str], root: Path) -> tuple[int, str, str]:
    assert callable(fn)
    code = fn(argv, root)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_nvpmodel_conf_round_trips_the_matrix_modes() -> None:
    m = load_matrix()
    for key in m.modules:
        module = m.module(key)
        conf = nvpmodel.parse_conf(identity.nvpmodel_conf(module))
        assert conf.modes == module.power_modes
        assert conf.default == module.default_power_mode


def test_nvpmodel_query_set_persist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "tx2", "4.6.4")
    assert run(capsys, nvpmodel.main, ["-q"], root) == (0, "NV Power Mode: MAXP_CORE_ARM\n3\n", "")
    assert run(capsys, nvpmodel.main, ["-m", "0"], root)[0] == 0
    assert (root / nvpmodel.STATUS).read_text() == "pmode:0000\n"
    assert run(capsys, nvpmodel.main, ["-q"], root)[1] == "NV Power Mode: MAXN\n0\n"
    code, _, err = run(capsys, nvpmodel.main, ["-m", "7"], root)
    assert code == 1 and "Invalid power mode ID: 7" in err
    assert run(capsys, nvpmodel.main, ["-q"], root)[1] == "NV Power Mode: MAXN\n0\n"  # unchanged
    out = run(capsys, nvpmodel.main, ["-p", "--verbose"], root)[1]
    assert "NVPM VERB: POWER_MODEL: ID=4 NAME=MAXP_CORE_DENVER" in out


def test_nvpmodel_ignores_a_corrupt_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "agx-orin", "6.2")
    (root / nvpmodel.STATUS).parent.mkdir(parents=True)
    (root / nvpmodel.STATUS).write_text("garbage")
    assert run(capsys, nvpmodel.main, ["-q"], root)[1] == "NV Power Mode: MODE_30W\n2\n"


def test_mode_change_drops_jetson_clocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "tx2", "4.6.4")
    assert run(capsys, jetson_clocks.main, [], root)[0] == 0
    assert "FreqOverride=1" in run(capsys, jetson_clocks.main, ["--show"], root)[1]
    run(capsys, nvpmodel.main, ["-m", "1"], root)
    show = run(capsys, jetson_clocks.main, ["--show"], root)[1]
    assert "FreqOverride=0" in show
    assert "Online CPUs: 0,3-5" in show  # MAXQ parks the Denver pair
    assert show.rstrip().endswith("NV Power Mode: MAXQ")
    assert show.startswith("SOC family:tegra186  Machine:NVIDIA Jetson TX2\n")  # the model, as the real script


def test_jetson_clocks_store_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "xavier-nx", "5.1.2")
    saved = tmp_path / "dfs.conf"
    run(capsys, jetson_clocks.main, ["--store", str(saved)], root)
    run(capsys, jetson_clocks.main, [], root)
    assert (root / nvpmodel.CLOCKS_STATE).exists()
    assert run(capsys, jetson_clocks.main, ["--restore", str(saved)], root)[0] == 0
    assert not (root / nvpmodel.CLOCKS_STATE).exists()
    code, _, err = run(capsys, jetson_clocks.main, ["--restore", str(tmp_path / "none")], root)
    assert code == 1 and "doesn't exist" in err


@pytest.mark.parametrize("line", [REAL_TX2, REAL_ORIN])
def test_parser_reads_real_tegrastats_lines(line: str) -> None:
    p = tegrastats.parse_line(line)
    assert p["ram_total_mb"] in (7854, 30536)
    assert p["cpus"][1] is None or p["cpus"][1][1] > 0
    assert p["temps_c"]["PMIC" if "PMIC" in line else "tj"] > 0
    assert p["rails_mw"]


# The rails each module's tegrastats prints (its INA3221 monitors) and its GR3D_FREQ field,
# from real lines: they depend on the module and the L4T, not on the SoC alone.
TX2_RAILS = ["VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"]
NX_RAILS = ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
AGX_XAVIER_RAILS = ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"]
AGX_ORIN_RAILS = ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "NC", "VDDQ_VDD2_1V8AO"]  # NC twice, one key


@pytest.mark.parametrize(
    ("module", "jetpack", "cpus", "rails", "gr3d"),
    [
        ("tx2", "4.6.4", 6, TX2_RAILS, "GR3D_FREQ 0%@114 "),
        ("tx2-nx", "4.6.4", 6, ["VDD_IN", "VDD_CPU_GPU", "VDD_SOC"], "GR3D_FREQ 0%@114 "),
        ("agx-xavier", "4.6.4", 8, AGX_XAVIER_RAILS, "GR3D_FREQ 0%@114 "),
        ("agx-xavier", "5.1.2", 8, AGX_XAVIER_RAILS, "GR3D_FREQ 0%@[114] "),
        ("xavier-nx", "4.6.4", 6, NX_RAILS, "GR3D_FREQ 0%@114 "),
        ("xavier-nx", "5.1.2", 6, NX_RAILS, "GR3D_FREQ 0%@[114] "),
        ("orin-nx", "5.1.2", 8, NX_RAILS, "GR3D_FREQ 0%@[305] "),
        ("orin-nano", "6.2", 6, NX_RAILS, "GR3D_FREQ 0%@[305] "),
        ("agx-orin", "5.1.2", 12, AGX_ORIN_RAILS, "GR3D_FREQ 0%@[0,0] "),
        ("agx-orin", "6.2", 12, AGX_ORIN_RAILS, "GR3D_FREQ 0%@[0,0] "),
    ],
)
def test_standin_lines_have_the_real_layout(
    tmp_path: Path, module: str, jetpack: str, cpus: int, rails: list[str], gr3d: str
) -> None:
    root = make_root(tmp_path, module, jetpack)
    info = json.loads((root / "etc/tx2setup-sim/board.json").read_text())
    stamped = int(info["l4t_major"]) >= 35
    conf = nvpmodel.parse_conf((root / nvpmodel.CONF).read_text())
    line = tegrastats.format_line(info, conf, conf.default, [10, 90], False, 1500, 1_700_000_000.0)
    p = tegrastats.parse_line(line)
    assert len(p["cpus"]) == cpus
    assert (p["timestamp"] is not None) == stamped
    assert list(p["rails_mw"]) == rails
    assert ("mW/" in line) == stamped  # R35+ writes units
    assert gr3d in line
    assert p["ram_used_mb"] == 1500 and p["gr3d_pct"] == 0
    loads = [c[0] for c in p["cpus"] if c is not None]
    assert set(loads) <= {10, 90}
    # what the acceptance benchmark's telemetry reader makes of it
    t = telemetry.parse_tegrastats(line)
    assert t["gpu_util_pct"] == 0.0 and "gpu_clock_mhz" in t
    assert {k for k in t if k.startswith("power_") and k.endswith("_mw")} == {f"power_{r.lower()}_mw" for r in rails}
    if info["soc"] == "t234":
        assert "gpu_temp_c" not in status.parse_tegrastats(line)  # GPU@-256C: gated, no reading


def test_every_module_has_its_rails() -> None:
    assert set(tegrastats.RAILS) == set(load_matrix().modules)


@pytest.mark.parametrize("gr3d", ["GR3D_FREQ 0%@[305,305]", "GR3D_FREQ 12%@[611]", "GR3D_FREQ 3%@1300", "GR3D_FREQ 0%"])
def test_parser_reads_every_gr3d_form(gr3d: str) -> None:
    line = REAL_ORIN.replace("GR3D_FREQ 0%@0", gr3d)
    p = tegrastats.parse_line(line)
    assert p["gr3d_pct"] == int(gr3d.split()[1].split("%")[0])


def test_offline_cores_and_pinned_clocks_follow_the_mode(tmp_path: Path) -> None:
    root = make_root(tmp_path, "tx2", "4.6.4")
    info = json.loads((root / "etc/tx2setup-sim/board.json").read_text())
    conf = nvpmodel.parse_conf((root / nvpmodel.CONF).read_text())
    maxq = next(k for k, v in conf.modes.items() if v == "MAXQ")
    p = tegrastats.parse_line(tegrastats.format_line(info, conf, maxq, [0] * 6, True, 900, 0.0))
    assert [c is None for c in p["cpus"]] == [False, True, True, False, False, False]
    assert {c[1] for c in p["cpus"] if c} == {1200}  # pinned to MAXQ's ceiling
    maxn = tegrastats.parse_line(tegrastats.format_line(info, conf, 0, [0] * 6, True, 900, 0.0))
    assert {c[1] for c in maxn["cpus"] if c} == {2035}


def test_cpu_sampler_measures_busy_share(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0\ncpu0 100 0 0 100 0\ncpu1 0 0 0 200 0\n")
    s = tegrastats.CpuSampler(stat)
    stat.write_text("cpu  0 0 0 0\ncpu0 175 0 0 125 0\ncpu1 0 0 0 300 0\n")
    assert s.loads() == [75, 0]


def test_not_a_tegrastats_line() -> None:
    with pytest.raises(ValueError, match="not a tegrastats line"):
        tegrastats.parse_line("hello")


def test_jetson_clocks_state_is_forgotten_at_reboot() -> None:
    assert nvpmodel.CLOCKS_STATE.startswith("run/")  # /run is a tmpfs on every boot


def test_orin_mode_that_replans_cores_asks_to_reboot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    root = make_root(tmp_path, "agx-orin", "6.2")
    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    code, out, _ = run(capsys, nvpmodel.main, ["-m", "0"], root)  # 30W (8 cores) -> MAXN (12)
    assert code == 0
    assert "NVPM WARN: Reboot required for changing to this power mode: 0" in out
    assert "enter YES/yes to confirm" in out
    assert (root / nvpmodel.STATUS).read_text() == "pmode:0000\n"  # stored, applies at the next boot
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, _ = run(capsys, nvpmodel.main, ["-m", "0"], root)  # same cores: no question
    assert code == 0 and "Reboot required" not in out


def test_older_l4t_and_same_cores_do_not_ask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path, "agx-xavier", "5.1.2")
    code, out, _ = run(capsys, nvpmodel.main, ["-m", "0"], root)
    assert code == 0 and "Reboot required" not in out
