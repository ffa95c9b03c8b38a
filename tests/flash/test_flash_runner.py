"""The runner against the stand-in BSP: success, a failing flash, a hanging one (timeout)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flash_helpers import processes_with, sysfs

from tx2setup import matrix as mx
from tx2setup.flash import command_lines, runner
from tx2setup.flash.runner import Event, Target

A = Target("car-tx2-01", "1-2.1", "tx2")
B = Target("car-tx2-02", "1-2.2", "tx2")


@pytest.fixture(autouse=True)
def two_tx2s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("two-tx2")))


def _flash_sh(port: str) -> list[str]:
    return command_lines.single(mx.load().module("tx2"), port, "32.7.4")


def test_one_board_flashes_with_a_log_and_phases_in_order(bsp: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    result = runner.flash_one(A, _flash_sh(A.port), bsp, tmp_path / "a.log", 30, events.append)
    assert (result.status, result.detail, result.ok) == ("flashed", "", True)
    log = result.log.read_text()
    assert "$ cd " in log and "./flash.sh --usb-instance 1-2.1 jetson-tx2 mmcblk0p1" in log
    assert "*** The target t186ref has been flashed successfully. ***" in log
    assert "exited with status 0" in log
    phases = list(dict.fromkeys(e.phase for e in events if e.phase))
    expected = ["checking the BSP", "building the image", "image built", "booting", "writing", "rebooting", "flashed"]
    assert phases == expected
    assert events[-1] == Event("car-tx2-01", status="flashed")


def test_a_failing_flash_is_reported_with_its_error_line(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FAIL_PORTS", "1-2.1")
    result = runner.flash_one(A, _flash_sh(A.port), bsp, tmp_path / "a.log", 30)
    assert result.status == "failed"
    assert result.detail == "exit status 1: Failed flashing t186ref."
    assert "ERROR: might be timeout in USB write." in result.log.read_text()


def test_a_flash_of_a_board_not_in_recovery_mode_fails(bsp: Path, tmp_path: Path) -> None:
    result = runner.flash_one(A, _flash_sh("3-9"), bsp, tmp_path / "a.log", 30)
    assert result.status == "failed"
    assert "Error: probing the target board failed." in result.log.read_text()


def test_a_hanging_flash_is_killed_at_the_timeout(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("STANDIN_HANG_PORTS", "1-2.1")
    start = time.monotonic()
    result = runner.flash_one(A, _flash_sh(A.port), bsp, tmp_path / "a.log", 1.0)
    assert time.monotonic() - start < 10
    assert (result.status, result.detail) == ("timed out", "no result after 1 s")
    log = result.log.read_text()
    assert "Writing partition APP" in log and "killed ./flash.sh and its children (timeout)" in log
    assert processes_with(token) == []  # the tool and its `sleep` child are gone


def test_secrets_never_reach_the_log(bsp: Path, tmp_path: Path) -> None:
    from tx2setup.flash import rootfs_user

    argv = command_lines.create_user("nvidia", "car-tx2-01")
    assert argv == ["./tools/l4t_create_default_user.sh", "-u", "nvidia", "--accept-license", "-n", "car-tx2-01"]
    out = runner.run_logged(
        argv, bsp, tmp_path / "u.log", 30, secrets=["s3cret-pass"], mask_line=rootfs_user.mask_password_line
    )
    assert out.returncode == 0
    log = (tmp_path / "u.log").read_text()
    # no -p: the script made up a password and printed it; the log has it masked
    assert "Creating: Username - nvidia, Password - ********, Autologin - false" in log
    made_up = (bsp / "rootfs/etc/shadow").read_text().split(":")[1]
    assert made_up.startswith("$1$")  # the script's own `openssl passwd -1` hash
    assert "nvidia:x:1000:1000::/home/nvidia:/bin/bash" in (bsp / "rootfs/etc/passwd").read_text()
    assert (bsp / "rootfs/etc/hostname").read_text() == "car-tx2-01\n"


def _mass(bsp: Path, tmp_path: Path, timeout: float = 30) -> tuple[list[runner.BoardResult], list[Event]]:
    build, flash = command_lines.mass(mx.load().module("tx2"), 2, "32.7.4")
    events: list[Event] = []
    results = runner.flash_mass([A, B], build, flash, bsp, tmp_path / "logs", timeout, events.append)
    return results, events


def test_massflash_one_fails_one_succeeds(bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL_PORTS", "1-2.2")
    results, events = _mass(bsp, tmp_path)
    assert [(r.board, r.port, r.status, r.detail) for r in results] == [
        ("car-tx2-01", "1-2.1", "flashed", ""),
        ("car-tx2-02", "1-2.2", "failed", "Flash failure"),
    ]
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "car-tx2-01.log",
        "car-tx2-02.log",
        "massflash-build.log",
        "massflash.log",
    ]
    a, b = (logs / "car-tx2-01.log").read_text(), (logs / "car-tx2-02.log").read_text()
    # each board's log is its own device log, not the other one's
    assert "board car-tx2-01 at USB port 1-2.1" in a and "Flash is successful" in a and "Flash failure" not in a
    assert "Start flashing device: 1-2.2" in b and "Flash failure" in b and "Flash is successful" not in b
    assert "--no-flash --massflash 2 jetson-tx2 mmcblk0p1" in (logs / "massflash-build.log").read_text()
    assert "Flash complete (WITH FAILURES)" in (logs / "massflash.log").read_text()
    # the per-device logs were followed while the tool ran: both boards reached "writing"
    for name in ("car-tx2-01", "car-tx2-02"):
        assert "writing" in [e.phase for e in events if e.board == name]
    assert [e.status for e in events if e.status] == ["flashed", "failed"]


def test_massflash_with_one_hanging_board_times_out(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("STANDIN_HANG_PORTS", "1-2.2")
    start = time.monotonic()
    results, _ = _mass(bsp, tmp_path, timeout=2.0)
    assert time.monotonic() - start < 15
    assert [(r.board, r.status) for r in results] == [("car-tx2-01", "flashed"), ("car-tx2-02", "timed out")]
    assert "Writing partition APP with system.img" in results[1].log.read_text()
    assert processes_with(token) == []


def test_a_failed_package_build_fails_every_board(bsp: Path, tmp_path: Path) -> None:
    (bsp / "jetson-tx2.conf").unlink()  # the tool now refuses the board name
    results, _ = _mass(bsp, tmp_path)
    assert {r.status for r in results} == {"failed"}
    assert results[0].detail == "package build: exit status 1: Error: Invalid target board - jetson-tx2."
    assert "see" in results[0].log.read_text()


def test_orin_nano_takes_the_initrd_nvme_path() -> None:
    module = mx.load().module("orin-nano")
    argv = command_lines.single(module, "3-1", "36.4.3")
    assert argv[:3] == ["./tools/kernel_flash/l4t_initrd_flash.sh", "--usb-instance", "3-1"]
    assert argv[-2:] == ["jetson-orin-nano-devkit", "internal"]
    assert "-c bootloader/generic/cfg/flash_t234_qspi.xml" in argv
    assert "tools/kernel_flash/flash_l4t_external.xml" in command_lines.single(module, "3-1", "35.4.1")
    # an AGX Orin has eMMC: flash.sh
    assert command_lines.single(mx.load().module("agx-orin"), "2-2", "36.4.3")[0] == "./flash.sh"


def _poll(condition: Callable[[], bool], deadline_s: float = 20.0) -> bool:
    """Poll until `condition` holds or the deadline passes (a deadline, not a sleep as sync)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _interrupt_when(condition: Callable[[], bool]) -> tuple[threading.Thread, list[bool]]:
    """SIGINT to this process (what Ctrl-C sends) once `condition` holds: Python raises
    KeyboardInterrupt. The list says whether it held; at the deadline (generous: a loaded
    2-core CI host is slow to start two stand-in flashers) the SIGINT goes anyway, so a
    test whose condition never comes fails then, not after the tool's own timeout."""
    met: list[bool] = []

    def run() -> None:
        met.append(_poll(condition, 180.0))
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, met


def _hanging(log: Path) -> Callable[[], bool]:
    return lambda: log.exists() and "Writing partition APP with system.img" in log.read_text()


def test_ctrl_c_kills_the_flash_tool_and_its_children(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("STANDIN_HANG_PORTS", "1-2.1")
    log = tmp_path / "a.log"
    thread, met = _interrupt_when(_hanging(log))
    with pytest.raises(KeyboardInterrupt):
        runner.flash_one(A, _flash_sh(A.port), bsp, log, 600)
    thread.join()
    assert met == [True], "the stand-in never reached its APP partition"
    # the stand-in (its own session, so the SIGINT never reached it) and its `sleep` are gone
    assert _poll(lambda: processes_with(token) == [], 10.0), processes_with(token)
    assert "tx2setup: interrupted: killed ./flash.sh and its children" in log.read_text()


def test_ctrl_c_during_a_massflash_kills_every_child_and_says_so_per_board(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("STANDIN_HANG_PORTS", "1-2.1 1-2.2")
    build, flash = command_lines.mass(mx.load().module("tx2"), 2, "32.7.4")
    logs = tmp_path / "logs"

    def both_hanging() -> bool:
        found = list((bsp / "initrdlog").glob("flash_*.log")) if (bsp / "initrdlog").exists() else []
        return len(found) == 2 and all("Writing partition APP with system.img" in p.read_text() for p in found)

    thread, met = _interrupt_when(both_hanging)
    with pytest.raises(KeyboardInterrupt):
        runner.flash_mass([A, B], build, flash, bsp, logs, 600)
    thread.join()
    assert met == [True], "the two stand-in flashers never both reached their APP partition"
    assert _poll(lambda: processes_with(token) == [], 10.0), processes_with(token)
    for t in (A, B):
        text = (logs / f"{t.name}.log").read_text()
        assert f"Start flashing device: {t.port}" in text and "tx2setup: interrupted" in text


def test_massflash_takes_network_usb0_from_r35_as_the_initrd_readme_says() -> None:
    tx2, agx = mx.load().module("tx2"), mx.load().module("agx-orin")
    assert "--network" not in command_lines.mass(tx2, 2, "32.7.4")[0]  # R32 README: no --network
    for argv in command_lines.mass(agx, 2, "35.4.1"):
        assert argv[-4:] == ["--network", "usb0", "jetson-agx-orin-devkit", "mmcblk0p1"]
    nano_build, _ = command_lines.mass(mx.load().module("orin-nano"), 2, "36.4.3")
    assert nano_build.count("--network") == 1  # the NVMe arguments already carry it


@pytest.mark.parametrize("l4t", ["35.4.1", "36.4.3"])
def test_the_standin_initrd_flasher_needs_the_layouts_it_is_given(
    bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, l4t: str
) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("orin-nano")))
    nano = Target("nano-01", "3-1", "orin-nano")
    argv = command_lines.single(mx.load().module("orin-nano"), "3-1", l4t)
    assert runner.flash_one(nano, argv, bsp, tmp_path / "ok.log", 30).status == "flashed"
    qspi = argv[argv.index("-p") + 1].split()[-1]
    (bsp / qspi).unlink()
    result = runner.flash_one(nano, argv, bsp, tmp_path / "bad.log", 30)
    assert (result.status, result.detail) == ("failed", f"exit status 1: Error: {qspi} not found")
