"""One emulated board: its record on disk, its first-boot files, and start/stop.

A board is an overlay (lower: the shared base, upper: the board's own dir) mounted in a
private mount namespace, booted with systemd-nspawn. The namespace is made by
`unshare --pid --fork --kill-child`, so nspawn is PID 1 of a PID namespace: however the
board dies (nspawn killed, its init killed, unshare killed), the kernel tears down every
process of it and the overlay goes with the mount namespace. Nothing is mounted in the
host's namespace, so nothing can be left mounted there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tx2setup.errors import EnvironmentProblem, UserError
from tx2setup.matrix import Matrix
from tx2setup.sim import identity
from tx2setup.sim.base import NORMAL_USER, SSH_SOCKET_ADDRESS_DROPIN, ssh_socket_address_conf
from tx2setup.sim.hostcmd import run
from tx2setup.sim.paths import Layout
from tx2setup.sim.procs import alive, children_map, cmdline, ns_init, pids_with_mount, signal_pid, wait_for

FIRST_ADDRESS_OFFSET = 10  # board N listens on 127.0.1.(10+N)
MAX_INDEX = 240
STANDIN_TOOLS = {
    "nvpmodel": "usr/sbin/nvpmodel",
    "jetson_clocks": "usr/bin/jetson_clocks",
    "tegrastats": "usr/bin/tegrastats",
}
STANDIN_LIB = "usr/lib/tx2setup-sim"
NVIDIA_SOURCES = "etc/apt/sources.list.d/nvidia-l4t-apt-source.list"  # the file name real boards use
# nspawn is exec'd by sh after the overlay is mounted in the new mount namespace. Values
# travel as positional parameters, never spliced into the script.
BOOT_SCRIPT = (
    'mount -t overlay "tx2sim-$3" -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/merged"\n'
    'exec systemd-nspawn -q -b -D "$2/merged" -M "$3" --register=no --keep-unit --link-journal=no '
    '--console=read-only --tmpfs=/sys/firmware:mode=755 --bind-ro="$2/dt:/sys/firmware/devicetree/base"\n'
)


def address_of(index: int) -> str:
    return f"127.0.1.{FIRST_ADDRESS_OFFSET + index}"


@dataclass(frozen=True)
class SimBoard:
    """An emulated board as callers see it: how to reach it and what it pretends to be."""

    name: str
    index: int
    address: str
    module: str
    jetpack: str
    l4t: str
    soc: str
    serial: str
    key_path: Path
    known_hosts_path: Path
    board_dir: Path
    base_recipe: int | None = None  # the base recipe its disk was made on (None: made before it was recorded)
    user: str = NORMAL_USER  # the login user, as on a freshly flashed Jetson (no root login)
    normal_user: str = NORMAL_USER

    def ssh_options(self) -> list[str]:
        return [
            "-i",
            str(self.key_path),
            "-o",
            f"UserKnownHostsFile={self.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ]

    def ssh_argv(self, *command: str) -> list[str]:
        """argv for `ssh nvidia@board [command...]`, host key checked against the fleet's known_hosts."""
        return ["ssh", *self.ssh_options(), f"{self.user}@{self.address}", *command]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


@dataclass(frozen=True)
class SimBoardStatus:
    board: SimBoard
    state: str  # running | starting | down | stray (processes left without their nspawn)
    pid: int | None
    ssh: bool

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def running(self) -> bool:
        return self.state == "running"


def load_board(layout: Layout, name: str) -> SimBoard:
    d = layout.board_dir(name)
    try:
        rec = json.loads((d / "board.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{d / 'board.json'}: no such emulated board {name!r} ({exc})") from None
    return SimBoard(
        name=rec["name"],
        index=int(rec["index"]),
        address=rec["address"],
        module=rec["module"],
        jetpack=rec["jetpack"],
        l4t=rec["l4t"],
        soc=rec["soc"],
        serial=rec["serial"],
        base_recipe=rec.get("base_recipe"),
        key_path=layout.key,
        known_hosts_path=layout.known_hosts,
        board_dir=d,
    )


def host_key_line(board: SimBoard) -> str:
    pub = (board.board_dir / "ssh_host_ed25519_key.pub").read_text().split()
    return f"{board.address} {pub[0]} {pub[1]}"


class _Upper:
    """Writes into a board's upper dir while the board is down, making parent dirs with
    the owner and mode they have in the base (else the board would see e.g. /root as 0755)."""

    def __init__(self, upper: Path, lower: Path) -> None:
        self.upper = upper
        self.lower = lower

    def _dirs(self, rel: Path) -> None:
        cur_u, cur_l = self.upper, self.lower
        for part in rel.parts:
            cur_u, cur_l = cur_u / part, cur_l / part
            if cur_u.is_dir():
                continue
            try:
                st = cur_l.stat()
                mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
            except FileNotFoundError:
                mode, uid, gid = 0o755, 0, 0
            cur_u.mkdir()
            os.chown(cur_u, uid, gid)
            os.chmod(cur_u, mode)

    def write(self, rel: str, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        path = self.upper / rel
        self._dirs(Path(rel).parent)
        tmp = path.with_name(path.name + ".tx2sim-tmp")
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)


def _user_ids(rootfs: Path, user: str) -> tuple[int, int]:
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise EnvironmentProblem(f"{rootfs}: the sim base has no user {user!r}; rebuild it (remove {rootfs.parent})")


def create(
    layout: Layout,
    matrix: Matrix,
    name: str,
    module_key: str,
    jetpack: str,
    index: int,
    apt_base: str,
    base_recipe: int | None = None,
) -> SimBoard:
    """Make the board's dir and first-boot files (identity, keys, sshd address). Disk kept until destroy."""
    module = matrix.module(module_key, jetpack=jetpack)  # that release's power modes
    release = matrix.release(jetpack=jetpack)
    d = layout.board_dir(name)
    for sub in ("upper", "work", "merged", "dt"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    serial = identity.serial_number(f"{layout.fleet}/{name}")
    for fname, data in identity.devicetree(module, serial).items():
        (d / "dt" / fname).write_bytes(data)
    hostkey = d / "ssh_host_ed25519_key"
    if not hostkey.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(hostkey)], "ssh-keygen")
    address = address_of(index)
    up = _Upper(d / "upper", layout.rootfs)
    up.write("etc/hostname", f"{name}\n")
    up.write(
        "etc/hosts",
        f"127.0.0.1\tlocalhost\n{address}\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    up.write("etc/ssh/ssh_host_ed25519_key", hostkey.read_bytes(), 0o600)
    up.write("etc/ssh/ssh_host_ed25519_key.pub", (d / "ssh_host_ed25519_key.pub").read_bytes())
    up.write(
        "etc/ssh/sshd_config.d/00-tx2setup-sim-listen.conf",
        f"# tx2setup sim: this board's own loopback address\nListenAddress {address}\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n",
    )
    # The fleet's key logs in as the default user only, as after `ssh-copy-id nvidia@board` on
    # a freshly flashed Jetson: root has no key and no password, so no root login over SSH.
    pub = layout.key.with_suffix(".pub").read_bytes()
    uid, gid = _user_ids(layout.rootfs, NORMAL_USER)
    up._dirs(Path(f"home/{NORMAL_USER}"))
    up.write(f"home/{NORMAL_USER}/.ssh/authorized_keys", pub, 0o600, uid, gid)
    os.chown(d / "upper" / f"home/{NORMAL_USER}/.ssh", uid, gid)
    os.chmod(d / "upper" / f"home/{NORMAL_USER}/.ssh", 0o700)
    up.write("etc/nv_tegra_release", identity.nv_tegra_release(release, module.soc))
    up.write("etc/nvpmodel.conf", identity.nvpmodel_conf(module))
    up.write("var/lib/nvpmodel/status", f"pmode:{module.default_power_mode:04d}\n")
    lines = release.apt_lines(module.soc, apt_base)
    if lines:
        up.write(
            NVIDIA_SOURCES,
            "# tx2setup sim: NVIDIA's Jetson repository, served by the sim's stand-in\n" + "\n".join(lines) + "\n",
        )
    record = {
        "name": name,
        "index": index,
        "address": address,
        "module": module.key,
        "jetpack": release.jetpack,
        "l4t": release.l4t,
        "soc": module.soc,
        "serial": serial,
        "base_recipe": base_recipe,
    }
    (d / "board.json").write_text(json.dumps(record, indent=2) + "\n")
    board = load_board(layout, name)
    refresh_tools(layout, board, matrix)
    return board


def refresh_tools(layout: Layout, board: SimBoard, matrix: Matrix) -> None:
    """(Re)install the stand-in L4T tools and their facts file: done at every start, so a
    newer tx2setup updates them without rebuilding the base."""
    up = _Upper(board.board_dir / "upper", layout.rootfs)
    info = identity.board_info(
        board.name, matrix.module(board.module, jetpack=board.jetpack), matrix.release(jetpack=board.jetpack)
    )
    up.write("etc/tx2setup-sim/board.json", json.dumps(info, indent=2) + "\n")
    up.write("etc/environment", ubuntu_environment(board.l4t))
    # PID 1 listens for sshd (ssh.socket): on this board's address only, never on *:22
    up.write(SSH_SOCKET_ADDRESS_DROPIN, ssh_socket_address_conf(board.address))
    pkg = resources.files("tx2setup.sim.standins")
    for mod in ("__init__", *STANDIN_TOOLS):
        up.write(f"{STANDIN_LIB}/standins/{mod}.py", pkg.joinpath(f"{mod}.py").read_text(encoding="utf-8"))
    for tool, dest in STANDIN_TOOLS.items():
        wrapper = (
            "#!/usr/bin/python3\n"
            f"# STAND-IN for NVIDIA's {tool} (tx2setup sim); the code is in /{STANDIN_LIB}/standins\n"
            f"import sys\nsys.path.insert(0, '/{STANDIN_LIB}')\n"
            f"from standins import {tool}\n\nsys.exit({tool}.main(sys.argv[1:]))\n"
        )
        up.write(dest, wrapper, 0o755)


def ubuntu_environment(l4t: str) -> str:
    """/etc/environment as Ubuntu ships it, which pam_env reads for every SSH session: its
    PATH has the sbin dirs, so the login user's `ssh board nvpmodel -q` finds
    /usr/sbin/nvpmodel on a real board (Debian's default user PATH has no sbin). Ubuntu 18.04
    (L4T 32): "...:/usr/games:/usr/local/games" (askubuntu.com/questions/866161); 20.04 and
    later append ":/snap/bin" (https://wiki.ubuntu.com/PATH, "No Games": the older form)."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games"
    if not l4t.startswith("32."):
        path += ":/snap/bin"
    return f'PATH="{path}"\n'


def _pid_file(board: SimBoard) -> Path:
    return board.board_dir / "pid"


def _upper_fragment(board: SimBoard) -> str:
    return f"upperdir={board.board_dir / 'upper'},"


def recorded_pid(board: SimBoard) -> int | None:
    """The board's unshare pid, if that process is alive and really is this board's."""
    try:
        pid = int(_pid_file(board).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not alive(pid):
        return None
    argv = cmdline(pid)
    if not argv or not argv[0].endswith("unshare") or str(board.board_dir) not in argv:
        return None  # the pid was reused by something else
    return pid


def stray_pids(board: SimBoard) -> list[int]:
    """Processes still holding this board's overlay (e.g. after its supervisor was lost)."""
    return pids_with_mount(_upper_fragment(board))


def launch(layout: Layout, board: SimBoard, log_name: str = "console.log") -> int:
    """Start booting the board; returns the unshare pid. Readiness is the caller's wait."""
    for p in (layout.rootfs, board.board_dir):
        if any(c in str(p) for c in ",:\n"):
            raise UserError(f"{p}: path holds ',' or ':', which overlayfs options cannot carry; choose another dir")
    log = board.board_dir / log_name
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--propagation",
                "private",
                "--mount-proc",
                "sh",
                "-ec",
                BOOT_SCRIPT,
                "sh",
                str(layout.rootfs),
                str(board.board_dir),
                board.name,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _pid_file(board).write_text(f"{proc.pid}\n")
    return proc.pid


def stop(board: SimBoard, timeout: float = 20.0) -> None:
    """Power the board off cleanly (SIGTERM to nspawn: systemd shuts down), else kill it;
    return only when no process holds its overlay any more."""
    pid = recorded_pid(board)
    if pid is not None:
        kids = children_map().get(pid, [])
        for kid in kids:  # nspawn; unshare itself ignores SIGTERM
            signal_pid(kid, signal.SIGTERM)
        if not wait_for(lambda: not alive(pid), timeout):
            signal_pid(pid, signal.SIGKILL)  # --kill-child takes nspawn and the PID namespace with it
            wait_for(lambda: not alive(pid), 5.0)
    kill_strays(board)
    _pid_file(board).unlink(missing_ok=True)


def kill_strays(board: SimBoard) -> None:
    strays = stray_pids(board)
    if not strays:
        return
    # killing a PID namespace's init kills the whole namespace
    for p in ns_init(strays) or strays:
        signal_pid(p, signal.SIGKILL)
    if not wait_for(lambda: not stray_pids(board), 10.0):
        raise EnvironmentProblem(
            f"board {board.name}: processes {stray_pids(board)} still hold its overlay after SIGKILL"
        )


def destroy(board: SimBoard) -> None:
    stop(board)
    shutil.rmtree(board.board_dir)
