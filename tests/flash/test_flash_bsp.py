"""The BSP folder: version, checks, building the per-L4T cache from sha256-pinned tarballs."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from flash_helpers import set_bsp_version

from tx2setup.errors import ChecksumError, EnvironmentProblem, UserError
from tx2setup.flash import bsp as bsp_mod
from tx2setup.flash.bsp import LocalArtifact


def test_version_comes_from_bsp_version_then_nv_tegra_release(bsp: Path) -> None:
    assert bsp_mod.read_version(bsp) == "32.7.4"
    (bsp / "nv_tegra" / "bsp_version").unlink()
    assert bsp_mod.read_version(bsp) is None
    (bsp / "rootfs" / "etc" / "nv_tegra_release").write_text(
        "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
        "DATE: Tue Aug  1 19:57:35 UTC 2023\n"
    )
    assert bsp_mod.read_version(bsp) == "35.4.1"


def test_check_accepts_the_right_bsp_and_names_what_is_wrong(bsp: Path) -> None:
    bsp_mod.check(bsp, "32.7.4", "4.6.4")
    wrong = r"holds L4T 32\.7\.4, but the plan needs L4T 35\.4\.1 \(JetPack 5\.1\.2\)"
    with pytest.raises(EnvironmentProblem, match=wrong):
        bsp_mod.check(bsp, "35.4.1", "5.1.2")
    set_bsp_version(bsp, "35.1.0")
    bsp_mod.check(bsp, "35.1", "5.0.2")  # 35.1 and 35.1.0 are the same release
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        bsp_mod.check(bsp / "nope", "32.7.4", "4.6.4")
    with pytest.raises(EnvironmentProblem, match=r"L4T 35\.1\.0 has no board config jetson-nope\.conf"):
        bsp_mod.check(bsp, "35.1.0", "5.0.2", boards=["jetson-nope"])


def test_only_the_tools_the_flash_runs_are_required(bsp: Path) -> None:
    """An L4T 28.2.1 BSP has neither l4t_initrd_flash.sh nor l4t_create_default_user.sh."""
    set_bsp_version(bsp, "28.2.1")
    (bsp / "tools" / "kernel_flash" / "l4t_initrd_flash.sh").unlink()
    single = bsp_mod.required_tools(initrd=False)
    assert bsp_mod.INITRD_FLASH not in single and bsp_mod.CREATE_USER in single
    bsp_mod.check(bsp, "28.2.1", "3.3", single)  # one board with flash.sh: fine without the initrd flasher
    no_initrd = r"L4T 28\.2\.1 has no tools/kernel_flash/l4t_initrd_flash\.sh: a mass"
    with pytest.raises(EnvironmentProblem, match=no_initrd):
        bsp_mod.check(bsp, "28.2.1", "3.3", bsp_mod.required_tools(initrd=True))
    (bsp / "tools" / "l4t_create_default_user.sh").unlink()
    with pytest.raises(
        EnvironmentProblem, match=r"L4T 28\.2\.1 has no tools/l4t_create_default_user\.sh: without it .* setup wizard"
    ) as exc:
        bsp_mod.check(bsp, "28.2.1", "3.3", single)
    assert "\n" not in exc.value.message
    bsp_mod.check(bsp, "28.2.1", "3.3", bsp_mod.required_tools(initrd=False, default_user=False))


def test_check_refuses_an_empty_rootfs(bsp: Path) -> None:
    shutil.rmtree(bsp / "rootfs")
    (bsp / "rootfs").mkdir()
    with pytest.raises(EnvironmentProblem, match="rootfs holds no root filesystem"):
        bsp_mod.check(bsp, "32.7.4", "4.6.4")


def _tarballs(bsp: Path, out: Path) -> tuple[LocalArtifact, LocalArtifact]:
    """A driver package (Linux_for_Tegra/ without the rootfs) and a sample rootfs tarball,
    laid out like NVIDIA's Jetson_Linux_R*.tbz2 and Tegra_Linux_Sample-Root-Filesystem_R*.tbz2."""
    rootfs_dir = out / "rootfs-src"
    shutil.move(str(bsp / "rootfs"), rootfs_dir)
    (bsp / "rootfs").mkdir()
    driver = out / "Jetson_Linux_R32.7.4_aarch64.tbz2"
    rootfs = out / "Tegra_Linux_Sample-Root-Filesystem_R32.7.4_aarch64.tbz2"
    subprocess.run(["tar", "-cjf", str(driver), "-C", str(bsp.parent), bsp.name], check=True)
    subprocess.run(["tar", "-cjf", str(rootfs), "-C", str(rootfs_dir), "."], check=True)

    def art(p: Path) -> LocalArtifact:
        return LocalArtifact(p, hashlib.sha256(p.read_bytes()).hexdigest())

    return art(driver), art(rootfs)


def test_build_from_tarballs(bsp: Path, tmp_path: Path) -> None:
    driver, rootfs = _tarballs(bsp, tmp_path)
    dest = tmp_path / "cache" / "bsp" / "32.7.4" / "Linux_for_Tegra"
    assert bsp_mod.build_from_tarballs("32.7.4", "4.6.4", driver, rootfs, dest) == dest
    bsp_mod.check(dest, "32.7.4", "4.6.4")
    assert (dest / "rootfs" / "etc" / "passwd").read_text().startswith("root:")
    assert sorted(p.name for p in dest.parent.parent.iterdir()) == ["32.7.4"]  # no staging left


def test_a_wrong_checksum_refuses_before_extracting(bsp: Path, tmp_path: Path) -> None:
    driver, rootfs = _tarballs(bsp, tmp_path)
    bad = LocalArtifact(rootfs.path, "0" * 64)
    dest = tmp_path / "cache" / "bsp" / "32.7.4" / "Linux_for_Tegra"
    with pytest.raises(ChecksumError, match=rf"{rootfs.path.name}: sha256 is {rootfs.sha256}, expected 0{{64}}"):
        bsp_mod.build_from_tarballs("32.7.4", "4.6.4", driver, bad, dest)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(UserError, match="sha256 'xyz' is not 64 lowercase hex digits"):
        LocalArtifact(driver.path, "xyz").verify("driver package")


def test_a_tarball_of_another_release_leaves_nothing_behind(bsp: Path, tmp_path: Path) -> None:
    driver, rootfs = _tarballs(bsp, tmp_path)
    dest = tmp_path / "cache" / "bsp" / "32.7.6" / "Linux_for_Tegra"
    with pytest.raises(EnvironmentProblem, match=r"holds L4T 32\.7\.4, but the plan needs L4T 32\.7\.6"):
        bsp_mod.build_from_tarballs("32.7.6", "4.6.6", driver, rootfs, dest)
    assert list((tmp_path / "cache" / "bsp").iterdir()) == []


def test_apply_binaries_marker(bsp: Path, tmp_path: Path) -> None:
    assert not bsp_mod.applied(bsp, "32.7.4")
    bsp_mod.record_applied(bsp, "32.7.4", tmp_path / "apply.log")
    assert bsp_mod.applied(bsp, "32.7.4")
    assert not bsp_mod.applied(bsp, "32.7.6")  # a marker for another release does not count


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "c"))
    assert bsp_mod.cached_bsp("32.7.4") == tmp_path / "c" / "bsp" / "32.7.4" / "Linux_for_Tegra"


def test_the_driver_package_is_read_without_extracting(bsp: Path, tmp_path: Path) -> None:
    driver, _ = _tarballs(bsp, tmp_path)
    wanted = [bsp_mod.INITRD_FLASH, bsp_mod.CREATE_USER, "jetson-tx2.conf", "jetson-nope.conf"]
    info = bsp_mod.scan_driver_package(driver.path, wanted)
    assert info.version == "32.7.4"
    assert info.members == {bsp_mod.INITRD_FLASH, bsp_mod.CREATE_USER, "jetson-tx2.conf"}
    bsp_mod.check_driver_package(driver.path, "32.7.4", "4.6.4", bsp_mod.required_tools(True), ["jetson-tx2"])
    with pytest.raises(EnvironmentProblem, match=r"holds L4T 32\.7\.4, but the plan needs L4T 35\.4\.1"):
        bsp_mod.check_driver_package(driver.path, "35.4.1", "5.1.2", bsp_mod.required_tools(True))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["Linux_for_Tegra", "rootfs-src", driver.path.name, "Tegra_Linux_Sample-Root-Filesystem_R32.7.4_aarch64.tbz2"]
    )  # nothing was extracted next to the tarball
    (tmp_path / "junk.tbz2").write_bytes(b"not a tarball")
    with pytest.raises(EnvironmentProblem, match="cannot read the tarball"):
        bsp_mod.scan_driver_package(tmp_path / "junk.tbz2", [])


def test_every_bsp_download_names_a_tarball_and_every_product_board_is_allowed() -> None:
    from tx2setup.flash import bsp_data
    from tx2setup.matrix import load

    data = bsp_data.load()
    matrix = load()
    assert data.release("32.7.4") is not None
    rel = data.release("32.7.4")
    assert rel is not None and rel.driver.file == "jetson_linux_r32.7.4_aarch64.tbz2"
    assert rel.driver.url_from("http://127.0.0.1:8/m/") == "http://127.0.0.1:8/m/jetson_linux_r32.7.4_aarch64.tbz2"
    for pid, pb in data.product_boards.items():
        assert pid in matrix.module(pb.module).usb_product_ids
    for key, boards in data.flash_boards.items():
        assert matrix.module(key).flash_board in boards
    with pytest.raises(Exception, match="not an https URL"):
        bsp_data.parse({"schema_version": 1, "releases": {"1.2.3": {"driver": {"url": "ftp://x/a.tbz2"}}}})
