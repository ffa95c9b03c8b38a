"""A whole `tx2setup flash` run against the stand-ins, and every refusal (nothing started)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flash_helpers import TX2_PAIR, hooks, set_bsp_version, sysfs

from tx2setup.errors import EnvironmentProblem, NotRootError, RemoteError, UserError
from tx2setup.flash import session
from tx2setup.flash.session import FlashOptions

NX_AND_TX2 = """\
[jetsons]
car-tx2-01 ansible_host=10.0.0.1 usb_port=1-2.1 jetson_module=tx2
car-nx-01 ansible_host=10.0.0.2 usb_port=2-1 jetson_module=xavier-nx

[jetsons:vars]
jetpack=4.6.4
flash_user=nvidia
flash_password=pw
"""


@pytest.fixture
def opts(tmp_path: Path, bsp: Path, write_inventory: Callable[..., Path]) -> Callable[..., FlashOptions]:
    def make(inventory: str = TX2_PAIR, board_tree: str = "two-tx2", **kw: object) -> FlashOptions:
        base: dict[str, object] = {
            "inventory": write_inventory(inventory),
            "sysfs_root": sysfs(board_tree),
            "bsp": bsp,
            "log_dir": tmp_path / "logs",
            "accept_license": True,
            "wait": False,
            "timeout_s": 30.0,
        }
        base.update(kw)
        return FlashOptions(**base)  # type: ignore[arg-type]

    return make


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch, calls: Path) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("two-tx2")))


def _nothing_started(calls: Path, tmp_path: Path) -> None:
    assert not calls.exists(), calls.read_text()
    assert not (tmp_path / "logs").exists()


# -- refusals: one line, a non-zero exit class, nothing started -----------------------------


def test_refuses_when_not_root(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    with pytest.raises(NotRootError, match="must run as root") as exc:
        session.prepare(opts(), hooks(is_root=lambda: False))
    assert exc.value.exit_code == 2 and "\n" not in exc.value.message
    _nothing_started(calls, tmp_path)


def test_refuses_then_provision_without_a_provisioning_module(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    with pytest.raises(EnvironmentProblem, match=r"--then-provision: provisioning .* is not available"):
        session.prepare(opts(then_provision=True, wait=True), hooks(provision_available=lambda: False))
    with pytest.raises(UserError, match=r"--then-provision with --no-wait: boards that were not seen .* cannot be"):
        session.prepare(opts(then_provision=True, wait=False), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_when_no_board_is_in_recovery_mode(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        EnvironmentProblem, match=r"no board is in USB recovery mode \(no NVIDIA 0955:\{7018, 7019, 7023, "
    ) as exc:
        session.prepare(opts(board_tree="none"), hooks())
    assert exc.value.exit_code == 3
    _nothing_started(calls, tmp_path)


def test_refuses_a_product_id_that_does_not_fit_the_module(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    inv = TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", "")
    inv = inv.replace("usb_port=1-2.1", "usb_port=2-1")  # 2-1 is a Xavier NX in `mixed`
    with pytest.raises(
        UserError,
        match=r"host car-tx2-01: jetson_module: tx2, but the board at USB port 2-1 is a xavier-nx \(USB product 7e19\)",
    ):
        session.prepare(opts(inv, "mixed"), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_when_no_detected_board_is_assigned(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    inv = TX2_PAIR.replace(" usb_port=1-2.1", "").replace(" usb_port=1-2.2", "")
    with pytest.raises(UserError, match=r"boards in recovery mode at 1-2\.1 \(tx2 or tx2-nx\), 1-2\.2 .* set usb_port"):
        session.prepare(opts(inv), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_a_mass_flash_of_mixed_hardware(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    mixes = r"mass flash needs identical hardware.*car-nx-01 \(xavier-nx, 7e19, jetson-xavier-nx-devkit\)"
    with pytest.raises(UserError, match=mixes):
        session.prepare(opts(NX_AND_TX2, "mixed"), hooks())
    _nothing_started(calls, tmp_path)
    # one by one, the same boards are fine
    prep = session.prepare(opts(NX_AND_TX2, "mixed", one_by_one=True), hooks())
    assert not prep.mass and [t.port for t in prep.targets] == ["2-1", "1-2.1"]


def test_refuses_a_mass_flash_that_would_take_an_unclaimed_board(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    # `crowded`: the two TX2s of the inventory, and a Xavier NX at 2-1 that no host claims
    with pytest.raises(UserError, match=r"the one\(s\) at USB port 2-1 \(xavier-nx\) belong to no inventory host"):
        session.prepare(opts(TX2_PAIR, "crowded"), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_boards_planning_different_l4t(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    inv = TX2_PAIR.replace(
        "car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2",
        "car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2 jetpack=4.6.6",
    )
    with pytest.raises(UserError, match=r"different L4T releases: car-tx2-01 \(32\.7\.4\), car-tx2-02 \(32\.7\.6\)"):
        session.prepare(opts(inv), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_a_bsp_of_another_release(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, tmp_path: Path
) -> None:
    set_bsp_version(bsp, "32.7.1")
    with pytest.raises(
        EnvironmentProblem, match=r"holds L4T 32\.7\.1, but the plan needs L4T 32\.7\.4 \(JetPack 4\.6\.4\)"
    ):
        session.prepare(opts(), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_a_missing_bsp(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    # nothing listens on port 9 here: the download fails at once (no request leaves this machine)
    with pytest.raises(
        EnvironmentProblem,
        match=r"no BSP for L4T 32\.7\.4 \(JetPack 4\.6\.4\) yet, and cannot fetch http://127\.0\.0\.1:9/jetson_linux_r32"
        r"\.7\.4_aarch64\.tbz2: .*: pass --bsp DIR",
    ):
        session.prepare(opts(bsp=None, bsp_mirror="http://127.0.0.1:9"), hooks())
    assert not (tmp_path / "cache" / "bsp").exists()
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        session.prepare(opts(bsp=tmp_path / "elsewhere"), hooks())
    _nothing_started(calls, tmp_path)


def test_refuses_too_little_disk(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    seen: list[Path] = []

    def free(path: Path) -> int:
        seen.append(path)
        return 5 << 30

    with pytest.raises(EnvironmentProblem, match=r"too little disk space .*: 5\.0 GiB free, flashing needs 32\.0 GiB"):
        session.prepare(opts(), hooks(disk_free=free))
    assert seen == [tmp_path / "Linux_for_Tegra"]
    _nothing_started(calls, tmp_path)


def test_refuses_without_the_license_and_without_a_password(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="pass --accept-license"):
        session.prepare(opts(accept_license=False), hooks())
    with pytest.raises(UserError, match="host car-tx2-01: flash_password: missing"):
        session.prepare(opts(TX2_PAIR.replace("flash_password=s3cret-pass", "")), hooks())
    _nothing_started(calls, tmp_path)


def test_refusal_through_the_cli_is_one_line(cli, write_inventory: Callable[..., Path], calls: Path) -> None:  # type: ignore[no-untyped-def]
    inv = write_inventory(TX2_PAIR)
    res = cli("flash", "-i", str(inv), "--sysfs-root", str(sysfs("none")), "--accept-license")
    assert res.code == 3
    assert res.err.startswith("error: no board is in USB recovery mode") and res.err.count("\n") == 1
    assert not calls.exists()


# -- whole runs ----------------------------------------------------------------------------


def test_massflash_run_through_the_cli(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FAIL_PORTS", "1-2.2")
    inv = write_inventory(TX2_PAIR)
    args = ["flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp)]
    args += ["--accept-license", "--no-wait", "--log-dir", str(tmp_path / "logs"), "--json", "--min-free-gib", "0"]
    res = cli(*args)
    assert res.code == 4, res.err
    assert res.err.strip().splitlines()[-1].startswith("error: 1 of 2 boards: car-tx2-02 (failed); logs in ")
    summary = json.loads(res.out)
    assert summary["mode"] == "massflash" and summary["l4t"] == "32.7.4" and summary["ok"] is False
    assert [(b["board"], b["status"], b["detail"]) for b in summary["boards"]] == [
        ("car-tx2-01", "flashed", ""),
        ("car-tx2-02", "failed", "Flash failure"),
    ]
    assert summary["next"] == f"tx2setup provision -i {inv} --limit car-tx2-01"
    tools = [ln.split(" ", 1)[0] for ln in calls.read_text().splitlines()]
    assert tools == [
        "apply_binaries.sh",
        "l4t_create_default_user.sh",
        "l4t_initrd_flash.sh",
        "l4t_initrd_flash.sh",
    ]
    passwd = (bsp / "rootfs" / "etc" / "passwd").read_text()
    assert "nvidia:x:1000:1000" in passwd
    for log in (tmp_path / "logs").iterdir():
        assert "s3cret-pass" not in log.read_text(), log

    # a second run does not apply the binaries again (the marker says it ran)
    monkeypatch.delenv("STANDIN_FAIL_PORTS")
    calls.unlink()
    args[args.index("--log-dir") + 1] = str(tmp_path / "logs2")
    res = cli(*args)
    assert res.code == 0, res.err
    assert json.loads(res.out)["ok"] is True
    assert "apply_binaries.sh" not in calls.read_text()


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP listener on 127.0.0.1: a board whose SSH port is up."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_one_by_one_then_wait_for_the_network(
    opts: Callable[..., FlashOptions], calls: Path, listener: int, tmp_path: Path
) -> None:
    inv = TX2_PAIR.replace("usb_port=1-2.1", f"usb_port=1-2.1 ansible_port={listener}")
    inv = inv.replace("usb_port=1-2.2", "usb_port=1-2.2 ansible_port=9")  # 127.0.0.2:9: nothing listens
    prep = session.prepare(opts(inv, one_by_one=True, wait=True, wait_timeout_s=1.0), hooks())
    summary = session.execute(prep, hooks())
    assert summary.mode == "one by one"
    assert [(r.board, r.status, r.network) for r in summary.results] == [
        ("car-tx2-01", "flashed", "up at 127.0.0.1"),
        ("car-tx2-02", "flashed", "not seen within 1 s"),
    ]
    flashes = [ln for ln in calls.read_text().splitlines() if ln.startswith("flash.sh")]
    assert flashes == [
        "flash.sh --usb-instance 1-2.1 jetson-tx2 mmcblk0p1",
        "flash.sh --usb-instance 1-2.2 jetson-tx2 mmcblk0p1",
    ]
    users = [ln for ln in calls.read_text().splitlines() if ln.startswith("l4t_create_default_user.sh")]
    assert [u.rsplit(" ", 1)[-1] for u in users] == ["car-tx2-01", "car-tx2-02"]  # -n: each board's hostname
    log = (tmp_path / "logs" / "car-tx2-01.log").read_text()
    assert log.index("Creating: Username - nvidia") < log.index("has been flashed successfully")


def test_boards_found_by_mac_in_the_neighbour_table(tmp_path: Path, listener: int) -> None:
    from tx2setup.flash import network

    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.9.9.9         0x1         0x0         00:04:4b:aa:bb:cc     *        eth0\n"
        "127.0.0.1        0x1         0x2         00:04:4B:AA:BB:CC     *        eth0\n"
    )
    assert network.arp_lookup("00:04:4b:aa:bb:cc", arp) == ["127.0.0.1"]  # the incomplete entry is skipped
    target = network.NetTarget("b", "unresolvable.invalid", listener, "00:04:4b:aa:bb:cc")
    assert network.wait_for([target], 2.0, 0.05, arp) == {"b": "127.0.0.1"}


def test_orin_nano_single_flash_takes_the_initrd_path(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("orin-nano")))
    set_bsp_version(bsp, "36.4.3")
    inv = "[orin]\nnano-01 ansible_host=10.0.0.9 usb_port=3-1 jetson_module=orin-nano jetpack=6.2\n"
    inv += "[orin:vars]\nflash_user=nvidia\nflash_password=pw\n"
    summary = session.execute(session.prepare(opts(inv, "orin-nano"), hooks()), hooks())
    assert [(r.board, r.status) for r in summary.results] == [("nano-01", "flashed")]
    flash = [ln for ln in calls.read_text().splitlines() if ln.startswith("l4t_initrd_flash.sh")]
    assert flash == [
        "l4t_initrd_flash.sh --usb-instance 3-1 --external-device nvme0n1p1 "
        "-c tools/kernel_flash/flash_l4t_t234_nvme.xml -p -c bootloader/generic/cfg/flash_t234_qspi.xml "
        "--network usb0 --showlogs jetson-orin-nano-devkit internal"
    ]
    assert "Flash is successful" in summary.results[0].log.read_text()


def test_interactive_matching_assigns_by_asking(opts: Callable[..., FlashOptions]) -> None:
    inv = TX2_PAIR.replace(" usb_port=1-2.1", "").replace(" usb_port=1-2.2", "")
    answers = {"1-2.1": "car-tx2-02", "1-2.2": None}
    prep = session.prepare(opts(inv), hooks(ask_board=lambda dev, names: answers[dev.port]))
    assert [(a.board.name, a.device.port, a.how) for a in prep.assignments] == [("car-tx2-02", "1-2.1", "asked")]
    assert not prep.mass


def _serve_tarballs(bsp: Path, tmp_path: Path, version: str = "32.7.4") -> Path:
    """The stand-in BSP packed like NVIDIA's two tarballs for L4T 32.7.4, under the names the data file gives."""
    set_bsp_version(bsp, version)
    shutil.move(str(bsp / "rootfs"), tmp_path / "rootfs-src")
    (bsp / "rootfs").mkdir()
    served = tmp_path / "nvidia"
    served.mkdir()
    driver = served / "jetson_linux_r32.7.4_aarch64.tbz2"
    rootfs = served / "tegra_linux_sample-root-filesystem_r32.7.4_aarch64.tbz2"
    subprocess.run(["tar", "-cjf", str(driver), "-C", str(tmp_path), "Linux_for_Tegra"], check=True)
    subprocess.run(["tar", "-cjf", str(rootfs), "-C", str(tmp_path / "rootfs-src"), "."], check=True)
    shutil.rmtree(bsp)  # from here on the only BSP is the one in the tarballs
    return served


def test_bsp_cache_built_from_the_artifact_cache(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --bsp: the tarballs come through the artifact cache from a real HTTP server, pinned in tx2setup.lock."""
    from tx2setup import cache

    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    served = _serve_tarballs(bsp, tmp_path)
    inv = write_inventory(TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", ""))
    lock = inv.parent / "tx2setup.lock"
    built = tmp_path / "cache" / "bsp" / "32.7.4" / "Linux_for_Tegra"
    with cache.CacheServer(served) as server:
        rootfs_url = f"{server.base_url}/tegra_linux_sample-root-filesystem_r32.7.4_aarch64.tbz2"
        base = ["flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--accept-license", "--no-wait"]
        base += ["--min-free-gib", "0", "--bsp-mirror", server.base_url, "--json"]

        # a pin that the served rootfs does not match: exit 5, one line, nothing extracted or run
        cache.LockFile(lock, {rootfs_url: cache.Pin("f" * 64, -1, cache.artifact_key(rootfs_url))}).save()
        res = cli(*base)
        assert res.code == 5, res.err
        lines = res.err.splitlines()
        assert lines[0].startswith("BSP for L4T 32.7.4: fetching/checking its two tarballs")  # the one note
        assert len(lines) == 2 and lines[1].startswith("error: download of " + rootfs_url)
        assert not (tmp_path / "cache" / "bsp").exists() and not calls.exists()

        # without the bad pin: fetched, pinned, checked, extracted once, apply_binaries once
        lock.unlink()
        res = cli(*base)
        assert res.code == 0, res.err
        assert json.loads(res.out)["bsp"] == str(built)
        pins = cache.LockFile.load(lock).pins
        assert sorted(pins) == sorted([f"{server.base_url}/{p.name}" for p in served.iterdir()])
        for url, pin in pins.items():
            assert pin.sha256 == cache.sha256_file(served / url.rsplit("/", 1)[-1])
        assert (built / ".tx2setup-apply-binaries.json").exists()
        assert (built / "rootfs" / "etc" / "nv_tegra_release").read_text().startswith("# R32 (release), REVISION: 7.4")
        assert [ln.split()[0] for ln in calls.read_text().splitlines()][:2] == [
            "apply_binaries.sh",
            "l4t_create_default_user.sh",
        ]

        # a second run: no download, no extraction, no apply_binaries
        sent = server.bytes_served
        (built / "extracted-once").write_text("")
        calls.unlink()
        res = cli(*base)
        assert res.code == 0, res.err
        assert server.bytes_served == sent
        assert (built / "extracted-once").exists()
        assert "apply_binaries.sh" not in calls.read_text()


def test_cache_sync_with_bsp_prefetches_what_flash_needs(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cache sync --with-bsp` fetches and pins the BSP tarballs; a flash afterwards downloads nothing."""
    from tx2setup import cache

    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    served = _serve_tarballs(bsp, tmp_path)
    one_board = TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", "")
    # no components: the only artifacts are the BSP's (nothing else to fetch from the internet)
    inv = write_inventory(one_board.replace("usb_port=1-2.1", "usb_port=1-2.1 components=[]"))
    with cache.CacheServer(served) as server:
        res = cli("cache", "sync", "-i", str(inv), "--with-bsp", "--bsp-mirror", server.base_url, "--json")
        assert res.code == 0, res.err
        rows = json.loads(res.out)["artifacts"]
        assert sorted(r["url"] for r in rows) == sorted(f"{server.base_url}/{p.name}" for p in served.iterdir())
        assert all(r["fetched"] == r["size"] > 0 for r in rows)
        assert sorted(cache.LockFile.load(inv.parent / "tx2setup.lock").pins) == sorted(r["url"] for r in rows)
        sent = server.bytes_served
        assert sent == sum(r["size"] for r in rows)

        res = cli(
            "flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--accept-license", "--no-wait",
            "--min-free-gib", "0", "--bsp-mirror", server.base_url, "--json",
        )  # fmt: skip
        assert res.code == 0, res.err
        assert server.bytes_served == sent  # the flash found both tarballs in the cache


def test_a_tarball_of_another_release_is_refused_before_extraction(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tx2setup import cache

    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    served = _serve_tarballs(bsp, tmp_path, version="32.7.1")  # named 32.7.4, holds 32.7.1
    other = r"jetson_linux_r32\.7\.4_aarch64\.tbz2 holds L4T 32\.7\.1, but"
    with cache.CacheServer(served) as server, pytest.raises(EnvironmentProblem, match=other):
        session.prepare(opts(bsp=None, bsp_mirror=server.base_url), hooks())
    assert not (tmp_path / "cache" / "bsp").exists()
    _nothing_started(calls, tmp_path)


def test_too_little_disk_is_refused_before_the_tarballs_are_fetched(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tx2setup import cache

    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    served = _serve_tarballs(bsp, tmp_path)
    with cache.CacheServer(served) as server:
        with pytest.raises(EnvironmentProblem, match=r"too little disk space .*: 5\.0 GiB free"):
            session.prepare(opts(bsp=None, bsp_mirror=server.base_url), hooks(disk_free=lambda _p: 5 << 30))
        assert server.bytes_served == 0
    assert not (tmp_path / "cache" / "bsp").exists()
    _nothing_started(calls, tmp_path)


def test_then_provision_calls_the_provisioning_seam(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The seam's contract: tx2setup.provision.run(inventory_path, limit=...) and its `.ok`."""
    import types

    got: list[tuple[str, str]] = []

    def run(inventory_path: str, limit: str) -> object:
        got.append((inventory_path, limit))
        return types.SimpleNamespace(
            ok=limit == "a,b", bad_hosts=[types.SimpleNamespace(name="c", status="unreachable")]
        )

    monkeypatch.setattr(session.provision, "run", run)
    session.run_provision(tmp_path / "lab.ini", ["a", "b"])
    assert got == [(str(tmp_path / "lab.ini"), "a,b")]
    with pytest.raises(RemoteError, match=r"flashed, but provisioning failed on: c \(unreachable\)"):
        session.run_provision(tmp_path / "lab.ini", ["c"])


def test_list_shows_ports_hosts_and_mismatches(cli, write_inventory: Callable[..., Path]) -> None:  # type: ignore[no-untyped-def]
    inv = write_inventory(NX_AND_TX2.replace("usb_port=2-1", "usb_port=2-2"))  # 2-2 is an AGX Orin
    res = cli("flash", "--list", "--json", "-i", str(inv), "--sysfs-root", str(sysfs("mixed")))
    assert res.code == 0, res.err
    rows = {d["port"]: d for d in json.loads(res.out)["devices"]}
    assert (rows["1-2.1"]["host"], rows["1-2.1"]["matched_by"], rows["1-2.1"]["check"]) == (
        "car-tx2-01",
        "usb_port",
        "ok",
    )
    assert rows["2-2"]["check"] == "MISMATCH: inventory says xavier-nx"
    assert rows["2-1"]["check"] == "unassigned"
    # without an inventory: just what is in recovery mode, as a table
    res = cli("flash", "--list", "--sysfs-root", str(sysfs("none")))
    assert res.code == 0 and "no board in USB recovery mode" in res.out


VARIANTS = """\
[tx2]
car-tx2i ansible_host=10.0.0.1 usb_port=1-4.1
car-tx2-4g ansible_host=10.0.0.2 usb_port=1-4.2

[tx2:vars]
jetson_module=tx2
jetpack=4.6.4
flash_user=nvidia
flash_password=pw
"""


def test_tx2i_and_tx2_4gb_flash_with_their_own_board_configs(
    opts: Callable[..., FlashOptions], calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("tx2-variants")))
    # a TX2i and a TX2 4GB are different hardware: no mass flash of both
    with pytest.raises(
        UserError, match=r"car-tx2-4g \(tx2, 7418, jetson-tx2-4GB\), car-tx2i \(tx2, 7018, jetson-tx2i\)"
    ):
        session.prepare(opts(VARIANTS, "tx2-variants"), hooks())
    prep = session.prepare(opts(VARIANTS, "tx2-variants", one_by_one=True), hooks())
    assert prep.boards == {"car-tx2i": "jetson-tx2i", "car-tx2-4g": "jetson-tx2-4GB"}
    # the AGX Xavier Industrial at 1-4.3 is named, left alone, and in the summary
    assert prep.skipped == [
        "USB port 1-4.3 (Jetson AGX Xavier Industrial (not supported by tx2setup)): "
        "no host of this run claims it; left alone"
    ]
    summary = session.execute(prep, hooks())
    assert [r.status for r in summary.results] == ["flashed", "flashed"]
    flashes = [ln for ln in calls.read_text().splitlines() if ln.startswith("flash.sh")]
    assert flashes == [
        "flash.sh --usb-instance 1-4.2 jetson-tx2-4GB mmcblk0p1",
        "flash.sh --usb-instance 1-4.1 jetson-tx2i mmcblk0p1",
    ]
    assert summary.to_dict()["skipped"] == prep.skipped


def test_an_unsupported_product_claimed_by_a_host_is_refused_by_name(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path
) -> None:
    inv = VARIANTS.replace("usb_port=1-4.2", "usb_port=1-4.3")
    with pytest.raises(
        UserError,
        match=r"host car-tx2-4g: jetson_module: tx2, but the board at USB port 1-4\.3 is a "
        r"Jetson AGX Xavier Industrial \(USB product 7819\), which tx2setup does not flash",
    ):
        session.prepare(opts(inv, "tx2-variants", one_by_one=True), hooks())
    _nothing_started(calls, tmp_path)


def test_flash_board_per_host_is_checked(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    nx = "[nx]\nnx-01 ansible_host=10.0.0.2 usb_port=2-1 jetson_module=xavier-nx jetpack=4.6.4 {extra}\n"
    nx += "[nx:vars]\nflash_user=nvidia\nflash_password=pw\n"
    prep = session.prepare(opts(nx.format(extra="flash_board=jetson-xavier-nx-devkit-emmc"), "mixed"), hooks())
    assert prep.targets[0].flash_board == "jetson-xavier-nx-devkit-emmc"  # p3668-0001: eMMC, same USB ID
    with pytest.raises(
        UserError, match=r"host nx-01: flash_board: 'jetson-tx2' is not a board config for xavier-nx \(one of: "
    ):
        session.prepare(opts(nx.format(extra="flash_board=jetson-tx2"), "mixed"), hooks())
    inv = VARIANTS.replace("usb_port=1-4.1", "usb_port=1-4.1 flash_board=jetson-tx2")
    with pytest.raises(UserError, match=r"host car-tx2i: flash_board: jetson-tx2, but .* is a Jetson TX2i"):
        session.prepare(opts(inv, "tx2-variants", one_by_one=True), hooks())
    _nothing_started(calls, tmp_path)


def test_an_old_release_without_the_default_user_script_is_refused_by_name(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, tmp_path: Path
) -> None:
    set_bsp_version(bsp, "28.2.1")
    (bsp / "tools" / "l4t_create_default_user.sh").unlink()
    (bsp / "tools" / "kernel_flash" / "l4t_initrd_flash.sh").unlink()
    inv = TX2_PAIR.replace("jetpack=4.6.4", "jetpack=3.3\ncomponents=['ros']")  # no torch wheel for JetPack 3.3
    with pytest.raises(EnvironmentProblem, match=r"L4T 28\.2\.1 has no tools/kernel_flash/l4t_initrd_flash\.sh"):
        session.prepare(opts(inv), hooks())  # two boards: a mass flash
    with pytest.raises(EnvironmentProblem, match=r"L4T 28\.2\.1 has no tools/l4t_create_default_user\.sh"):
        session.prepare(opts(inv, one_by_one=True), hooks())
    _nothing_started(calls, tmp_path)


def test_then_provision_renders_the_provision_summary_and_no_next_hint(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, listener: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tx2setup import provision
    from tx2setup.provision import HostResult, ProvisionResult

    got: list[str] = []

    def run(inventory_path: str, limit: str) -> ProvisionResult:
        got.append(limit)
        host = HostResult("car-tx2-01", "failed", 3, 1, 1, 0, "install torch", "boom", "log", 1.0)
        return ProvisionResult("failed", 2, False, {"car-tx2-01": host}, 1.0, str(tmp_path), "", False, 0, 0)

    monkeypatch.setattr(provision, "run", run)
    inv = TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", "")
    inv = write_inventory(inv.replace("usb_port=1-2.1", f"usb_port=1-2.1 ansible_port={listener}"))
    args = ["flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp), "--accept-license"]
    args += ["--log-dir", str(tmp_path / "logs"), "--min-free-gib", "0", "--then-provision", "--wait-timeout", "5"]
    res = cli(*args)
    assert got == ["car-tx2-01"]
    assert res.code == 4
    assert res.err.strip().splitlines()[-1] == "error: flashed, but provisioning failed on: car-tx2-01 (failed)"
    assert "next: tx2setup provision" not in res.out
    assert "provision summary" in res.out  # the table `tx2setup provision` prints


def test_boards_found_by_mac_in_dhcp_leases(tmp_path: Path, listener: int) -> None:
    from tx2setup.flash import network

    dnsmasq, dhcpd = tmp_path / "dnsmasq.leases", tmp_path / "dhcpd.leases"
    dnsmasq.write_text("1764590000 00:04:4b:aa:bb:cc 127.0.0.1 tegra-ubuntu 01:00:04:4b:aa:bb:cc\n")
    dhcpd.write_text(
        "lease 10.1.1.5 {\n  binding state active;\n  hardware ethernet 00:04:4B:AA:BB:DD;\n}\n"
        "lease 10.1.1.6 {\n  binding state free;\n  hardware ethernet 00:04:4b:aa:bb:dd;\n}\n"
    )
    assert network.lease_lookup("00:04:4b:aa:bb:cc", [dnsmasq, dhcpd, tmp_path / "absent"]) == ["127.0.0.1"]
    assert network.lease_lookup("00:04:4b:aa:bb:dd", [dnsmasq, dhcpd]) == ["10.1.1.5"]  # the freed lease is not
    target = network.NetTarget("b", "unresolvable.invalid", listener, "00:04:4b:aa:bb:cc")
    ups: list[tuple[str, str]] = []
    found = network.wait_for(
        [target], 2.0, 0.05, tmp_path / "no-arp", on_up=lambda t, a: ups.append((t.name, a)), lease_files=[dnsmasq]
    )
    assert found == {"b": "127.0.0.1"} and ups == [("b", "127.0.0.1")]


def test_list_names_an_unsupported_product(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("flash", "--list", "--json", "--sysfs-root", str(sysfs("tx2-variants")))
    rows = {d["port"]: d for d in json.loads(res.out)["devices"]}
    assert rows["1-4.3"]["modules"] == "Jetson AGX Xavier Industrial (not supported by tx2setup)"
    assert rows["1-4.1"]["modules"] == "tx2 (Jetson TX2i)"


def test_then_provision_with_json_is_one_document(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, listener: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tx2setup import provision
    from tx2setup.provision import HostResult, ProvisionResult

    def run(inventory_path: str, limit: str) -> ProvisionResult:
        host = HostResult(limit, "ok", 40, 3, 0, 2, "", "", "log", 1.0)
        return ProvisionResult("successful", 0, False, {limit: host}, 1.0, str(tmp_path), "", False, 0, 0)

    monkeypatch.setattr(provision, "run", run)
    inv = TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", "")
    inv = write_inventory(inv.replace("usb_port=1-2.1", f"usb_port=1-2.1 ansible_port={listener}"))
    args = ["flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp), "--accept-license"]
    args += ["--log-dir", str(tmp_path / "logs"), "--min-free-gib", "0", "--then-provision", "--json"]
    res = cli(*args)
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["next"] is None and doc["boards"][0]["network"] == "up at 127.0.0.1"
    assert doc["provision"]["ok"] is True and list(doc["provision"]["hosts"]) == ["car-tx2-01"]
