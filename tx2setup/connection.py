"""The tool's one SSH layer: the OpenSSH client, configured from the inventory as Ansible's
own `ssh` connection plugin is (the default one; it runs this same client).

verify (testinfra's ssh backend, the benchmark, the sudo check) and status talk to boards
outside Ansible; they must connect exactly as Ansible would: same user, key, port,
known_hosts and every `-o` option of ansible_ssh_common_args/ansible_ssh_extra_args (a
ProxyJump, ciphers, ...), with host key checking kept on. The become password travels on
stdin, never in a command line. Why OpenSSH and not fabric or paramiko: README, "One SSH layer".
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tx2setup.fleet import Board


@dataclass(frozen=True)
class SshTarget:
    name: str
    host: str
    port: int
    user: str
    key_file: str | None
    known_hosts: str | None
    strict: bool
    become: bool
    # every other `-o Key=Value` (and -J) of ansible_ssh_common_args/extra_args, in order
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_board(cls, board: Board) -> SshTarget:
        hv: dict[str, Any] = board.hostvars
        args = " ".join(str(hv.get(k, "")) for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args"))
        given = _ssh_options(args)
        options = {k.lower(): v for k, v in given}
        key_file = hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
        return cls(
            name=board.name,
            host=board.ansible_host,
            port=int(hv.get("ansible_port", hv.get("ansible_ssh_port", 22))),
            user=str(hv.get("ansible_user", hv.get("ansible_ssh_user", "root"))),
            key_file=None if key_file is None else str(key_file),
            known_hosts=options.get("userknownhostsfile"),
            strict=options.get("stricthostkeychecking", "yes").lower() not in ("no", "off", "false"),
            become=str(hv.get("ansible_become", "false")).lower() in ("true", "yes", "1"),
            options=tuple((k, v) for k, v in given if k.lower() not in _MANAGED),
        )

    def ssh_config(self, control_dir: Path) -> str:
        lines = [
            f"Host {self.name}",
            f"  HostName {self.host}",
            f"  Port {self.port}",
            f"  User {self.user}",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  ServerAliveInterval 5",
            "  ServerAliveCountMax 3",
            f"  StrictHostKeyChecking {'yes' if self.strict else 'no'}",
            "  ControlMaster auto",
            # open_master() starts one master per board for a whole verify run and
            # close_master() ends it; the persist time only bounds a master left behind
            "  ControlPersist 300s",
            f"  ControlPath {control_dir}/%C",
        ]
        if self.key_file:
            lines += [f"  IdentityFile {self.key_file}", "  IdentitiesOnly yes"]
        if self.known_hosts:
            lines.append(f"  UserKnownHostsFile {self.known_hosts}")
        # ssh_config keywords are the -o option names (ssh_config(5)), so they carry over as is
        lines += [f"  {k} {v}" for k, v in self.options]
        return "\n".join(lines) + "\n"


# options this layer sets itself: host key policy and known_hosts (from the inventory, above),
# and the connection sharing of one run (a master per board, see open_master)
_MANAGED = {
    "userknownhostsfile",
    "stricthostkeychecking",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "batchmode",
    "identitiesonly",
}


def _ssh_options(args: str) -> list[tuple[str, str]]:
    """(Key, Value) of every `-o Key=Value`, `-oKey=Value` and `-J host` in an ssh argument string."""
    words = shlex.split(args)
    out: list[tuple[str, str]] = []
    for i, arg in enumerate(words):
        value = words[i + 1] if i + 1 < len(words) else ""
        if arg == "-o" and "=" in value:
            k, v = value.split("=", 1)
            out.append((k, v))
        elif arg.startswith("-o") and "=" in arg[2:]:
            k, v = arg[2:].split("=", 1)
            out.append((k, v))
        elif arg == "-J" and value:
            out.append(("ProxyJump", value))
    return out


def run(
    cfg: Path,
    name: str,
    command: str,
    timeout: float,
    stdin: str | None = None,
    share: bool = True,
    tty: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `command` on board `name` (a Host of the ssh_config `cfg`). The command is one
    string built with shlex.quote; ssh passes it to the board's shell, as Ansible's raw and
    command modules would. Secrets travel on stdin, never in it. `share=False`: a
    connection of its own, no control master left behind (status). Raises
    subprocess.TimeoutExpired at the deadline (the ssh process is killed)."""
    extra = [] if share else ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    # `tty`: a terminal for the command (ssh(1): "Multiple -t options force tty allocation,
    # even if ssh has no local tty"), so that it gets SIGHUP when the session ends early (the
    # controller interrupted or gone) instead of running on unattended; its stderr then
    # comes on stdout
    extra += ["-tt"] if tty else []
    return subprocess.run(
        ["ssh", "-F", str(cfg), *extra, name, command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin if stdin is not None else "",
    )


def write_ssh_config(targets: list[SshTarget], directory: Path) -> Path:
    """An ssh_config for all targets (used by ssh, scp and testinfra's ssh backend)."""
    control = directory / "cm"
    control.mkdir(parents=True, exist_ok=True)
    path = directory / "ssh_config"
    path.write_text("".join(t.ssh_config(control) for t in targets))
    path.chmod(0o600)
    return path


# ssh's stderr for failures that another attempt cannot fix
_PERMANENT = (
    "connect to host",  # "ssh: connect to host H port 22: Connection timed out/refused"
    "permission denied",
    "host key verification failed",
    "could not resolve",
    "remote host identification has changed",
)


def open_master(cfg: Path, name: str, timeout: float, attempts: int = 3) -> str | None:
    """Start the board's SSH control master in the background (ssh -M -N -f), so that
    every later ssh, scp and testinfra command of the run is a client of one connection.

    The master authenticates in the foreground and then forks: there is no
    "connect to the new control master" step, which under load was seen to fail
    ("Failed to connect to new control master") with ControlMaster=auto alone.
    A transient failure is retried; returns None when the master is up, else the
    last error line of ssh.
    """
    error = "ssh failed"
    for attempt in range(attempts):
        try:
            proc = subprocess.run(
                ["ssh", "-F", str(cfg), "-M", "-N", "-f", name],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return f"no SSH connection within {timeout:.0f} s"
        if proc.returncode == 0 and master_alive(cfg, name):
            return None
        lines = proc.stderr.strip().splitlines()
        error = lines[-1] if lines else f"ssh exited {proc.returncode}"
        if any(p in proc.stderr.lower() for p in _PERMANENT):
            break
        if attempt + 1 < attempts:
            time.sleep(0.5 * (attempt + 1))  # back off before the next connection attempt
    return error


def _control(cfg: Path, name: str, operation: str) -> bool:
    """`ssh -O check|exit` against the board's control master; False when it does not answer."""
    try:
        proc = subprocess.run(
            ["ssh", "-F", str(cfg), "-O", operation, name], capture_output=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def master_alive(cfg: Path, name: str) -> bool:
    return _control(cfg, name, "check")


def close_master(cfg: Path, name: str) -> None:
    """Ask the board's control master to exit (no-op when there is none)."""
    _control(cfg, name, "exit")


@contextmanager
def private_control_dir() -> Iterator[Path]:
    """A directory for the SSH control sockets of one run (Ansible's control_path_dir in
    provision): a master left by an earlier run is never reused, so every run checks each
    board's host key. A short path under the temp dir, mode 0700 (mkdtemp): a socket path
    holds at most 107 bytes (unix(7)) and ssh appends a random suffix while binding it.
    On exit the run's masters are told to exit and the directory goes."""
    directory = Path(tempfile.mkdtemp(prefix="tx2cp-"))
    try:
        yield directory
    finally:
        for sock in directory.iterdir():
            # an explicit ControlPath needs no host of the config; the name is only a placeholder
            try:
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "tx2setup-master"],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
        shutil.rmtree(directory, ignore_errors=True)
