"""The default user in the shared rootfs: re-runnable, and with the password kept off argv.

What NVIDIA's `tools/l4t_create_default_user.sh` does (read in two public copies:
R32.7.2, github.com/ncsu-yoon-lab/Jetson_TEE `Linux_for_Tegra/tools/l4t_create_default_user.sh`;
R36.2.0, github.com/johnnynunez/Linux_for_Tegra `tools/l4t_create_default_user.sh`):

- `check_pre_req()` refuses unless `/usr/bin/qemu-aarch64-static` exists (that exact path,
  `[ ! -f ... ]`, "ERROR: please install qemu-user-static package"), then `create_user()`
  copies it into `rootfs/usr/bin/`, bind-mounts /sys, /proc and /dev and runs
  `LC_ALL=C chroot . useradd ...`: aarch64 binaries on an x86-64 host, which the kernel
  hands to qemu through a binfmt_misc entry. The script checks neither binfmt_misc nor
  the mounts; without the entry chroot fails with "Exec format error" mid-run.
- The password goes in as `-p PASS` (argv, readable in /proc/PID/cmdline by every local
  user) and is printed in clear ("Creating: Username - U, Password - P, ...").
- It runs under `set -e`. On R32 `useradd` is bare, so a second run on the same rootfs
  stops with useradd's "user already exists" (exit 9): board 2 of a one-by-one flash
  failed. From R36 (seen in 36.2.0) that call is `|| true`, so a second run succeeds but
  keeps the *first* run's password. `create_hostname()` appends `127.0.1.1 HOST` to
  etc/hosts each run, so one-by-one runs piled up every earlier board's name.

So, before each run, tx2setup takes out of the rootfs what the previous run of the
script put in for this user name: its passwd/shadow line, its own group, its membership
of other groups, and the `127.0.1.1` hosts line (the script writes the one it needs).
The script then creates the user afresh on every release, with NVIDIA's own groups and
settings. This was chosen over restoring a saved copy of the account files, which goes
stale (apply_binaries.sh and hand edits change them) and does not exist for a BSP whose
user was created by hand before tx2setup saw it; and over skipping the script when the
user exists, which would re-implement its hostname and oem-config steps here. The home
folder stays (the script's own "home exists" branch copies /etc/skel into it again).

The script runs without `-p` (it then makes up a password, which tx2setup masks in the
log), and tx2setup writes the hash of the real password into rootfs/etc/shadow itself,
from `openssl passwd -6 -stdin` with the password on stdin: it never reaches an argv. A
board is flashed only after that hash is in place.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from tx2setup.errors import EnvironmentProblem, UserError

# the path the script tests and copies; PATH plays no part (check_pre_req, both copies above)
QEMU_AARCH64 = Path("/usr/bin/qemu-aarch64-static")
QEMU_PACKAGE = "qemu-user-static"  # the script's own hint; Debian/Ubuntu package of that name
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# ELF header of an aarch64 executable as binfmt_misc matches it: class 64-bit, little
# endian, e_machine 0xb7 (EM_AARCH64). Linux Documentation/admin-guide/binfmt-misc.rst
# describes the entries; qemu's scripts/qemu-binfmt-conf.sh registers aarch64 with
# magic \x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00.
AARCH64_MAGIC = "7f454c460201010000000000000000000200b700"
UID_MIN = 1000  # Ubuntu's /etc/login.defs: useradd gives regular users uids from 1000
# the script's announcement line; the password after "Password - " is masked in logs
PASSWORD_LINE = re.compile(r"(Password - )[^,\s]*")


def mask_password_line(line: str) -> str:
    return PASSWORD_LINE.sub(r"\1********", line)


def _binfmt_has_aarch64(binfmt_dir: Path) -> bool:
    """An enabled binfmt_misc entry whose magic is the aarch64 ELF header."""
    try:
        entries = [p for p in binfmt_dir.iterdir() if p.name not in ("register", "status")]
    except OSError:
        return False
    for entry in entries:
        try:
            lines = entry.read_text().splitlines()
        except OSError:
            continue
        magic = next((ln.split(None, 1)[1] for ln in lines if ln.startswith("magic ")), "")
        if lines and lines[0] == "enabled" and magic.replace(" ", "").startswith(AARCH64_MAGIC[:36]):
            return True
    return False


def check_host(qemu: Path | None = None, binfmt_dir: Path | None = None) -> None:
    """What the script needs on the host to chroot into the aarch64 rootfs; exit 3 when not there."""
    qemu = qemu or QEMU_AARCH64
    binfmt_dir = binfmt_dir or BINFMT_DIR
    if not qemu.is_file():
        raise EnvironmentProblem(
            f"{qemu} not found: l4t_create_default_user.sh runs useradd in the aarch64 rootfs through it; "
            f"install the Debian package {QEMU_PACKAGE} (apt-get install {QEMU_PACKAGE})"
        )
    if not _binfmt_has_aarch64(binfmt_dir):
        raise EnvironmentProblem(
            f"no enabled aarch64 entry in {binfmt_dir}: the kernel cannot run the rootfs's aarch64 programs "
            f"through {qemu.name}; (re)install {QEMU_PACKAGE} (it registers one), or "
            "`systemctl restart systemd-binfmt`"
        )


def _rewrite(path: Path, keep: Iterable[str]) -> None:
    """Write lines back in place: same inode, owner and mode (shadow files stay 0640/0600)."""
    text = "".join(f"{ln}\n" for ln in keep)
    with path.open("r+") as fh:
        fh.write(text)
        fh.truncate()


def _entries(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def clear_user(rootfs: Path, name: str) -> bool:
    """Take out what an earlier run created for `name`; True when there was something.

    Refuses a name the rootfs already uses for a system account (uid < 1000), which the
    script could not create either.
    """
    passwd = rootfs / "etc" / "passwd"
    mine = [ln.split(":") for ln in _entries(passwd) if ln.split(":", 1)[0] == name]
    if mine and len(mine[0]) > 3 and mine[0][2].isdigit() and int(mine[0][2]) < UID_MIN:
        raise UserError(f"flash_user: {name!r} is a system account of the rootfs ({passwd}); choose another user")
    gid = mine[0][3] if mine and len(mine[0]) > 3 else None
    for fname in ("passwd", "shadow"):
        path = rootfs / "etc" / fname
        if path.exists():
            _rewrite(path, [ln for ln in _entries(path) if ln.split(":", 1)[0] != name])
    for fname in ("group", "gshadow"):
        path = rootfs / "etc" / fname
        if path.exists():
            _rewrite(path, _groups_without(_entries(path), name, gid, fname == "group"))
    hosts = rootfs / "etc" / "hosts"
    if hosts.exists():
        # create_hostname() appends "127.0.1.1 HOST" and only checks for that exact line
        _rewrite(hosts, [ln for ln in _entries(hosts) if ln.split()[:1] != ["127.0.1.1"]])
    return bool(mine)


def _groups_without(lines: list[str], name: str, gid: str | None, is_group: bool) -> list[str]:
    """group/gshadow lines without `name`'s own group (same name; same gid in group) and memberships."""
    out = []
    for ln in lines:
        fields = ln.split(":")
        if len(fields) < 4:
            out.append(ln)
            continue
        own = fields[0] == name and (not is_group or gid is None or fields[2] == gid)
        if own:
            continue
        # group: name:x:gid:members; gshadow: name:pw:admins:members (the user may be in both lists)
        for i in (3,) if is_group else (2, 3):
            fields[i] = ",".join(m for m in fields[i].split(",") if m and m != name)
        out.append(":".join(fields))
    return out


def password_hash(password: str) -> str:
    """SHA-512 crypt ($6$) of `password`; openssl reads it on stdin, so no argv carries it."""
    try:
        done = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except FileNotFoundError:
        raise EnvironmentProblem("openssl not found: it hashes the default user's password (Debian: openssl)") from None
    out = done.stdout.strip()
    if done.returncode != 0 or not out.startswith("$6$"):
        # OpenSSL < 1.1.1 has no -6; the message names the tool, never the password
        raise EnvironmentProblem(f"openssl passwd -6 failed (exit {done.returncode}): needs OpenSSL 1.1.1 or later")
    return out


def set_password(rootfs: Path, name: str, password: str) -> None:
    """Put `password`'s hash into the user's rootfs/etc/shadow line (the script made the line)."""
    shadow = rootfs / "etc" / "shadow"
    lines = _entries(shadow)
    hashed = password_hash(password)
    found = False
    for i, ln in enumerate(lines):
        fields = ln.split(":")
        if fields[0] == name and len(fields) > 2:
            fields[1] = hashed
            lines[i] = ":".join(fields)
            found = True
    if not found:
        raise EnvironmentProblem(f"{shadow}: no line for {name} after l4t_create_default_user.sh")
    _rewrite(shadow, lines)
