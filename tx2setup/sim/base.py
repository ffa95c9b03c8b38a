"""The shared base system: Debian bookworm from debootstrap, built once, reused by every board.

Boards mount it read-only as the lower layer of their own overlay, so it must never change
while any board runs: `ensure_base` only builds when there is no complete base, and never
when an overlay anywhere on the host still uses it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from tx2setup.errors import EnvironmentProblem
from tx2setup.sim import gpgkey
from tx2setup.sim.hostcmd import require_tools, run
from tx2setup.sim.locking import locked
from tx2setup.sim.paths import Layout
from tx2setup.sim.procs import pids_with_mount

# Bump when what the base holds changes: a base with another recipe is rebuilt, only when
# no board on this host (running or stopped) has an overlay on it.
RECIPE = 5
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# openssh-server + python3 (+ python3-apt for Ansible's apt module), sudo for the normal
# user, systemd/dbus to boot real init, iproute2/procps for the usual diagnostics.
PACKAGES = (
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "procps",
    "ca-certificates",
)
# Units a headless board does not need: no console to log in on, no timers that wake apt.
# logind: the base has no libpam-systemd, so it tracks no session, and it costs ~8 MB per
# board; sudo, SSH logins and systemctl work without it (systemctl talks to PID 1 over its
# private socket). The others do nothing in a container (no pstore, no binfmt, no audit,
# no e2fs to scrub, no console to ask a password on) but would still be started. The utmp
# runlevel record (recipe 5) failed once on a loaded host (2026-12-01, the full suite on 2
# cores) and left a board "degraded"; nothing on an emulated board reads it.
MASKED_UNITS = (
    "console-getty.service",
    "getty@.service",
    "getty-static.service",
    "systemd-logind.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-journald-audit.socket",
    "systemd-pstore.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    "e2scrub_reap.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
)
NORMAL_USER = "nvidia"  # the user real boards get from l4t_create_default_user.sh
NORMAL_PASSWORD = "nvidia"  # noqa: S105 - the documented default of every fresh Jetson
SSHD_CONF = "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
APT_CONF = (
    "// tx2setup sim: without this every board copies up ~80 MB of apt *.bin caches\n"
    'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\nAPT::Keep-Downloaded-Packages "false";\n'
)
JOURNALD_CONF = (
    "[Journal]\n# tx2setup sim: keep logs in RAM and small: journald maps its files, so their\n"
    "# size is its resident memory\n"
    "Storage=volatile\nRuntimeMaxUse=1M\nRuntimeMaxFileSize=256K\n"
)
# sshd per connection (inetd style) instead of a resident listener (~9 MB per idle board):
# PID 1 listens (ssh.socket, Accept=yes) on the board's own address, which each board sets
# in SSH_SOCKET_ADDRESS_DROPIN, and starts `sshd -i` for each connection. ssh.service is
# masked so that a package upgrade cannot bring a second listener on port 22 back.
SSH_SOCKET_DROPIN = "etc/systemd/system/ssh.socket.d/10-tx2setup-sim.conf"
SSH_SOCKET_CONF = (
    "# tx2setup sim: one sshd per connection; the address is the board's own (20-address.conf)\n"
    "[Socket]\nListenStream=\nAccept=yes\nMaxConnections=256\n"
)
SSH_SOCKET_ADDRESS_DROPIN = "etc/systemd/system/ssh.socket.d/20-address.conf"
SSH_PER_CONNECTION_UNIT = (
    "# tx2setup sim: sshd for one connection of ssh.socket (Debian 12 ships no ssh@.service)\n"
    "[Unit]\nDescription=OpenBSD Secure Shell server per-connection daemon\n"
    "Documentation=man:sshd(8) man:sshd_config(5)\nAfter=auditd.service\n\n"
    "[Service]\nEnvironmentFile=-/etc/default/ssh\nExecStart=-/usr/sbin/sshd -i $SSHD_OPTS\n"
    "StandardInput=socket\n"
    "# no logind moves a login into a session scope: keep what a login leaves running in the\n"
    "# background (tegrastats --start, Ansible's async tasks) when its connection ends\n"
    "KillMode=process\n"
)
# /run/sshd is sshd's privilege separation dir: made once at boot, not by each instance
# (RuntimeDirectory= would remove it under the other connections when one ends).
SSHD_TMPFILES = "d /run/sshd 0755 root root -\n"


def ssh_socket_address_conf(address: str) -> str:
    return f"# tx2setup sim: this board's own loopback address\n[Socket]\nListenStream=\nListenStream={address}:22\n"


# Wanted at boot by the dbus package; with it gone the bus starts on demand through
# dbus.socket (nothing of the base calls it once logind is masked: ~4.5 MB per board).
BOOT_WANTS_DROPPED = ("lib/systemd/system/multi-user.target.wants/dbus.service",)


def host_mirror() -> str:
    """The Debian mirror the host uses (deb822 or one-line sources), else deb.debian.org."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"deb\s+(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    return DEFAULT_MIRROR


def read_stamp(layout: Layout) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(layout.base_stamp.read_text())
    except (OSError, ValueError):
        return None
    return data


def base_in_use(layout: Layout) -> list[int]:
    """Processes that hold an overlay on the base (any fleet on this host)."""
    return pids_with_mount(f"lowerdir={layout.rootfs}")


def boards_on_base(layout: Layout) -> list[Path]:
    """Board dirs of every fleet on this host that has a disk (overlay upper) on the base,
    running or stopped: the address claims name them, whichever fleet dir they are in."""
    if not layout.claims.is_dir():
        return []
    out = []
    for claim in sorted(layout.claims.iterdir()):
        try:
            owner = Path(claim.read_text().strip())
        except OSError:
            continue
        if (owner / "board.json").exists():
            out.append(owner)
    return out


def ensure_base(layout: Layout) -> dict[str, Any]:
    """Return the base's stamp, building the base first if there is no current one."""
    stamp = read_stamp(layout)
    if stamp is not None and stamp.get("recipe") == RECIPE and layout.rootfs.is_dir():
        return stamp
    layout.sim.mkdir(parents=True, exist_ok=True)
    with locked(layout.host_lock):
        stamp = read_stamp(layout)  # another process may have built it while we waited
        if stamp is not None and stamp.get("recipe") == RECIPE and layout.rootfs.is_dir():
            return stamp
        if layout.rootfs.exists():
            have = f"recipe {stamp and stamp.get('recipe')}, want {RECIPE}"
            if base_in_use(layout):
                raise EnvironmentProblem(
                    f"{layout.rootfs}: the base is outdated ({have}) but boards run on it; "
                    "run `tx2setup sim down --destroy` for every fleet first"
                )
            # a stopped board's disk is an overlay upper over this base: a new lower under it
            # would leave it inconsistent (files it never changed would change)
            stopped = boards_on_base(layout)
            if stopped:
                raise EnvironmentProblem(
                    f"{layout.rootfs}: the base is outdated ({have}) but stopped boards have disks on it: "
                    f"{', '.join(str(d) for d in stopped)}; `tx2setup sim down --destroy` their fleets first"
                )
        return build_base(layout)


def build_base(layout: Layout) -> dict[str, Any]:
    """debootstrap into a temp dir, configure, then rename into place (never half a base)."""
    with gpgkey.agent_stopped_after(layout.gnupg):  # configure and the stamp use the apt key
        return _build_base(layout)


def _build_base(layout: Layout) -> dict[str, Any]:
    require_tools(["debootstrap", "systemd-nspawn", "gpg"])
    started = time.monotonic()
    layout.base.mkdir(parents=True, exist_ok=True)
    tmp = layout.base / "rootfs.tmp"
    log = layout.base / "build.log"
    log.write_text("")
    if tmp.exists():
        shutil.rmtree(tmp)
    layout.debs_cache.mkdir(parents=True, exist_ok=True)
    mirror = host_mirror()
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            f"--cache-dir={layout.debs_cache}",
            SUITE,
            str(tmp),
            mirror,
        ],
        "debootstrap of the sim base",
        log=log,
    )
    configure(tmp, layout, log)
    if layout.rootfs.exists():
        shutil.rmtree(layout.rootfs)
    os.rename(tmp, layout.rootfs)
    stamp = {
        "recipe": RECIPE,
        "suite": SUITE,
        "mirror": mirror,
        "packages": list(PACKAGES),
        "gpg_fingerprint": gpgkey.ensure_key(layout.gnupg),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    layout.base_stamp.write_text(json.dumps(stamp, indent=2) + "\n")
    return stamp


def in_root(root: Path, argv: list[str], what: str, log: Path, input_text: str | None = None) -> str:
    """Run a command inside the (not booted) root with systemd-nspawn: own /proc, /dev, no host changes."""
    return run(
        [
            "systemd-nspawn",
            "-q",
            "--register=no",
            "--keep-unit",
            "--link-journal=no",
            "--pipe",
            "-E",
            "DEBIAN_FRONTEND=noninteractive",
            "-D",
            str(root),
            "--",
            *argv,
        ],
        what,
        input_text=input_text,
        log=log,
    )


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def configure(root: Path, layout: Layout, log: Path) -> None:
    # every board generates nothing at boot: its host key is made by `up` and recorded
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/ssh/sshd_config.d/10-tx2setup-sim.conf", SSHD_CONF)
    _write(root / "etc/apt/apt.conf.d/90tx2setup-sim", APT_CONF)
    _write(root / "etc/systemd/journald.conf.d/10-tx2setup-sim.conf", JOURNALD_CONF)
    _write(root / "etc/apt/trusted.gpg.d/jetson-ota-public.asc", gpgkey.public_key(layout.gnupg))
    _write(root / "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)  # boards share the host's network, so its resolver too
    _write(resolv, Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else "")
    host_sources = Path("/etc/apt/sources.list.d/debian.sources")
    if host_sources.exists():  # same mirrors as the host (a proxy or snapshot keeps working)
        _write(root / "etc/apt/sources.list.d/debian.sources", host_sources.read_text())
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        link = units / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for rel in BOOT_WANTS_DROPPED:
        (root / rel).unlink(missing_ok=True)
    for rel in ("etc/systemd/system/multi-user.target.wants/ssh.service", "etc/systemd/system/sshd.service"):
        (root / rel).unlink(missing_ok=True)
    (units / "ssh.service").unlink(missing_ok=True)
    (units / "ssh.service").symlink_to("/dev/null")
    _write(root / SSH_SOCKET_DROPIN, SSH_SOCKET_CONF)
    _write(root / "etc/systemd/system/ssh@.service", SSH_PER_CONNECTION_UNIT)
    _write(root / "etc/tmpfiles.d/tx2setup-sim-sshd.conf", SSHD_TMPFILES)
    sockets = units / "sockets.target.wants"
    sockets.mkdir(exist_ok=True)
    (sockets / "ssh.socket").unlink(missing_ok=True)
    (sockets / "ssh.socket").symlink_to("/lib/systemd/system/ssh.socket")
    in_root(
        root,
        ["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo,video,adm", NORMAL_USER],
        f"creating user {NORMAL_USER}",
        log,
    )
    in_root(
        root, ["chpasswd"], f"setting {NORMAL_USER}'s password", log, input_text=f"{NORMAL_USER}:{NORMAL_PASSWORD}\n"
    )
    # apt lists live in the base, so boards can install from Debian without an update
    in_root(root, ["apt-get", "update", "-qq"], "apt-get update in the sim base", log)
    in_root(root, ["apt-get", "clean"], "apt-get clean in the sim base", log)
    # a fresh machine-id per board: systemd makes one at first boot (in the board's upper dir)
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
