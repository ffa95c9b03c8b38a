"""How to reach a board over SSH, derived from its Ansible connection variables.

verify and status talk to boards outside Ansible (testinfra over ssh, the benchmark,
status over paramiko); they must connect exactly as Ansible would: same user, key,
port and known_hosts, with host key checking kept on.
"""

from __future__ import annotations

import shlex
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

    @classmethod
    def from_board(cls, board: Board) -> SshTarget:
        hv: dict[str, Any] = board.hostvars
        options: dict[str, str] = {}
        for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            args = shlex.split(str(hv.get(key, "")))
            for i, arg in enumerate(args):
                if arg == "-o" and i + 1 < len(args) and "=" in args[i + 1]:
                    k, v = args[i + 1].split("=", 1)
                    options[k.lower()] = v
                elif arg.startswith("-o") and "=" in arg[2:]:
                    k, v = arg[2:].split("=", 1)
                    options[k.lower()] = v
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
            "  ControlPersist 60s",
            f"  ControlPath {control_dir}/%C",
        ]
        if self.key_file:
            lines += [f"  IdentityFile {self.key_file}", "  IdentitiesOnly yes"]
        if self.known_hosts:
            lines.append(f"  UserKnownHostsFile {self.known_hosts}")
        return "\n".join(lines) + "\n"


def write_ssh_config(targets: list[SshTarget], directory: Path) -> Path:
    """An ssh_config for all targets (used by ssh, scp and testinfra's ssh backend)."""
    control = directory / "cm"
    control.mkdir(parents=True, exist_ok=True)
    path = directory / "ssh_config"
    path.write_text("".join(t.ssh_config(control) for t in targets))
    path.chmod(0o600)
    return path
