"""Unit: Jetson identity from the matrix, the stand-in apt packages, ZED installer, Caffe tarball, root check."""

from __future__ import annotations

import pytest

from tx2setup.errors import NotRootError
from tx2setup.matrix import load as load_matrix
from tx2setup.sim import aptrepo, identity, zed
from tx2setup.sim.hostcmd import require_root


def test_nv_tegra_release_reads_back_as_the_l4t() -> None:
    m = load_matrix()
    for rel in m.releases:
        text = identity.nv_tegra_release(rel, "t186")
        assert identity.l4t_from_nv_tegra_release(text.splitlines()[0]) == rel.l4t
        assert ("# KERNEL_VARIANT: oot" in text) == (rel.l4t_major >= 36)  # R36 builds out-of-tree modules
        assert "STAND-IN" not in text  # the file is compared with real ones (tests/fixtures/real)


def test_devicetree_files_are_nul_terminated() -> None:
    m = load_matrix()
    dt = identity.devicetree(m.module("agx-orin"), "1234567890123")
    assert dt["model"] == b"NVIDIA Jetson AGX Orin Developer Kit\0"
    # one carrier+module variant, then the chip, as on a real board (not every variant the matrix knows)
    assert dt["compatible"].split(b"\0")[:-1] == [b"nvidia,p3737-0000+p3701-0000", b"nvidia,tegra234"]
    assert dt["serial-number"] == b"1234567890123\0"
    assert identity.serial_number("a") == identity.serial_number("a") != identity.serial_number("b")
    assert len(identity.serial_number("x")) == 13


def test_every_module_has_hardware_facts() -> None:
    assert set(identity.HARDWARE) == set(load_matrix().modules)


def test_apt_packages_pin_the_release_stack() -> None:
    m = load_matrix()
    rel = m.release(jetpack="4.6.4")
    pkgs = {p.name: p for p in aptrepo.common_packages(rel)}
    assert set(pkgs) == {
        "cuda-toolkit-10-2",
        "libcudnn8",
        "libcudnn8-dev",
        "python3-libnvinfer",
        "tensorrt",
        "nvidia-jetpack",
    }
    jp = pkgs["nvidia-jetpack"]
    # the real version strings of JetPack 4.6.4 (tests/fixtures/real/dpkg-query-jp4.txt)
    assert jp.version == "4.6.4-b39"
    assert "nvidia-l4t-core (= 32.7.4-20230608212426)" in jp.depends
    assert "cuda-toolkit-10-2 (= 10.2.460-1)" in jp.depends
    assert "libcudnn8 (= 8.2.1.32-1+cuda10.2)" in jp.depends
    for p in [*pkgs.values(), aptrepo.l4t_core(rel, "t186")]:
        assert "STAND-IN (tx2setup sim)" in p.control()
        assert "Architecture: all" in p.control()
    header = pkgs["libcudnn8-dev"].files["/usr/include/cudnn_version.h"][0]
    assert "#define CUDNN_MAJOR 8" in header and "#define CUDNN_PATCHLEVEL 1" in header
    assert "version.txt" in "".join(pkgs["cuda-toolkit-10-2"].files)
    jp5 = {p.name: p for p in aptrepo.common_packages(m.release(jetpack="5.1.2"))}
    assert any(f.endswith("version.json") for f in jp5["cuda-toolkit-11-4"].files)
    assert "tegra186" in aptrepo.l4t_core(rel, "t186").scripts["preinst"]


def test_zed_installer_checks_its_l4t() -> None:
    text = zed.installer(load_matrix().release(jetpack="5.1.2"))
    assert '"$MAJOR.$MINOR" != "35.4"' in text
    assert "#define ZED_SDK_MAJOR_VERSION 5" in text and "#define ZED_SDK_MINOR_VERSION 0" in text
    assert "skip_tools) TOOLS=0" in text


def test_sim_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(NotRootError) as exc:
        require_root()
    assert "needs root" in exc.value.message and "\n" not in exc.value.message


@pytest.mark.parametrize("argv", [["up"], ["down"], ["status"], ["inventory"], ["ssh", "tx2-1"]])
def test_every_sim_verb_refuses_non_root(monkeypatch: pytest.MonkeyPatch, cli: object, argv: list[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("TX2SETUP_SIM_DIR", "/nonexistent/tx2setup-sim-test")
    assert callable(cli)
    res = cli("sim", *argv)
    assert res.code == 2
    assert res.err.strip().count("\n") == 0 and "needs root" in res.err


@pytest.mark.parametrize("key", list(load_matrix().modules))
def test_compatible_is_one_known_variant_and_the_chip(key: str) -> None:
    module = load_matrix().module(key)
    names = identity.compatible(module)
    assert len(names) == 2
    assert names[0] in module.compatible and not names[0].startswith("nvidia,tegra")
    assert names[1] == f"nvidia,tegra{module.soc[1:]}"


@pytest.mark.parametrize(
    ("key", "mode", "online"),
    [
        ("agx-xavier", "MODE_10W", 2),
        ("agx-xavier", "MODE_15W", 4),
        ("agx-xavier", "MODE_30W_6CORE", 6),
        ("agx-xavier", "MAXN", 8),
        ("agx-orin", "MODE_15W", 4),
        ("agx-orin", "MAXN", 12),
        ("orin-nx", "MODE_10W", 4),
        ("xavier-nx", "MODE_10W_2CORE", 2),
        ("tx2", "MAXP_CORE_DENVER", 3),
    ],
)
def test_online_cores_per_mode(key: str, mode: str, online: int) -> None:
    assert len(identity.online_cpus(key, mode)) == online


def test_nvpmodel_conf_has_the_release_power_modes() -> None:
    # an emulated Orin Nano on JetPack 6.2 gets that release's table (MAXN_SUPER), on 6.0 not
    m = load_matrix()
    on_62 = identity.nvpmodel_conf(m.module("orin-nano", jetpack="6.2"))
    on_60 = identity.nvpmodel_conf(m.module("orin-nano", jetpack="6.0"))
    assert "MAXN_SUPER" in on_62
    assert "MAXN_SUPER" not in on_60
