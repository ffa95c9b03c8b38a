"""Ctrl-C (SIGINT to the CLI's process group, as a terminal sends it) in the middle of a
`tx2setup flash` (issue 13), through the real CLI process and the stand-in BSP tools: timed
by the board's flash log reaching "Writing partition APP" (the stand-in hangs there), never
by a sleep. The board cut short is named in one line, the boards flashed before keep their
result and log, the lock file and the applied BSP are untouched, no flash tool is left
running, and a re-run for the cut board finishes it."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flash_helpers import HOST_FAKES, TX2_PAIR, processes_with, sysfs

from tx2setup.sim import procs

# The CLI's entry point in a process of its own, on a host whose qemu-aarch64-static and
# binfmt_misc entry are the fakes (the `host_qemu` fixture's patch, made in that process).
ENTRY = (
    "import sys; from pathlib import Path; from tx2setup.flash import rootfs_user; from tx2setup import cli; "
    f"rootfs_user.QEMU_AARCH64 = Path({str(HOST_FAKES / 'qemu-aarch64-static')!r}); "
    f"rootfs_user.BINFMT_DIR = Path({str(HOST_FAKES / 'binfmt_misc')!r}); "
    "sys.exit(cli.run(sys.argv[1:]))"
)


def _flash(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, "flash", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ctrl_c_mid_flash_names_the_board_and_keeps_the_others(
    write_inventory: Callable[..., Path], bsp: Path, calls: Path, tmp_path: Path, token: str
) -> None:
    inv = write_inventory(TX2_PAIR)
    lock = inv.parent / "tx2setup.lock"
    lock.write_text('{"artifacts": {}}\n')  # a committed lock file: must come out byte-identical
    pinned = _digest(lock)
    logs = tmp_path / "logs"
    args = ["-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp), "--one-by-one"]
    args += ["--accept-license", "--no-wait", "--log-dir", str(logs), "--min-free-gib", "0"]
    env = {"STANDIN_SYSFS": str(sysfs("two-tx2"))}
    proc = _flash(args, {**env, "STANDIN_HANG_PORTS": "1-2.2"})
    cut_log = logs / "car-tx2-02.log"

    def hanging() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        return cut_log.exists() and "Writing partition APP with system.img" in cut_log.read_text()

    assert procs.wait_for(hanging, 120, interval=0.02), "the second board's flash did not start"
    assert processes_with(token), "no stand-in flash tool runs"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "interrupted while flashing car-tx2-02 " in lines[0], lines
    assert "finished before the interrupt: car-tx2-01 flashed" in lines[0], lines
    assert "car-tx2-01" not in lines[0].split("finished before")[0]  # only the cut board is called cut
    # the tool and its children are gone; the logs say what happened to each board
    assert procs.wait_for(lambda: processes_with(token) == [], 10), processes_with(token)
    assert "tx2setup: interrupted: killed ./flash.sh" in cut_log.read_text()
    assert "has been flashed successfully" in (logs / "car-tx2-01.log").read_text()
    # nothing committed lost: the lock, and the BSP's applied binaries (not applied again)
    assert _digest(lock) == pinned
    calls.unlink()

    args[args.index(str(logs))] = str(tmp_path / "logs2")
    again = _flash([*args, "--limit", "car-tx2-02"], env)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert re.search(r"^car-tx2-02\s+1-2\.2\s+tx2\s+flashed\s", out, re.M), out
    made = [ln.split(" ", 1)[0] for ln in calls.read_text().splitlines()]
    assert "apply_binaries.sh" not in made and made.count("flash.sh") == 1, made
    assert _digest(lock) == pinned
