"""`flash --write-become-vault FILE`: the flashed user's sudo password, vaulted, for Ansible.

The user `flash` creates is in the `sudo` group with a password, and Ubuntu's sudo asks
for it, so provisioning needs `ansible_become_password` (Ansible docs, "Understanding
privilege escalation: become", become connection variables). This writes it into a
group_vars/host_vars file next to the inventory, in the form `ansible-vault
encrypt_string` prints (`name: !vault |` then the `$ANSIBLE_VAULT;1.1;AES256` envelope),
encrypted in-process with ansible-core's VaultLib under the vault password of
`--vault-password-file` / ANSIBLE_VAULT_PASSWORD_FILE. No process gets the password in
its argv, the file is 0600 from its first byte, and it replaces the file atomically.

The file must be one tx2setup may own: absent, or holding only `ansible_become_password`.
It must also be read for every board of the run (checked before flashing): Ansible reads
`group_vars/<group>[.yml|.yaml|.json]`, `group_vars/<group>/*` and the `host_vars/`
equivalents next to the inventory (Ansible docs, "Organizing host and group variables").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tx2setup.errors import UserError

VAR = "ansible_become_password"
VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")


def vault_password_file(given: str | None) -> str | None:
    return given or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or None


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `!vault` values as opaque text (only the keys matter here)."""


_Loader.add_constructor("!vault", lambda loader, node: "<vaulted>")


def _read_keys(path: Path) -> list[str]:
    try:
        data: Any = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"--write-become-vault {path}: cannot read it as YAML ({exc})") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise UserError(f"--write-become-vault {path}: not a mapping of variables")
    return [str(k) for k in data]


def _covers(path: Path, inventory: Path, hosts: Sequence[str], groups: Sequence[Sequence[str]]) -> bool:
    """Whether Ansible reads `path` as variables of every host in `hosts` (groups[i]: host i's groups)."""
    inv_dir = inventory.resolve() if inventory.is_dir() else inventory.resolve().parent
    try:
        rel = path.resolve().relative_to(inv_dir).parts
    except ValueError:
        return False
    if len(rel) < 2 or rel[0] not in ("group_vars", "host_vars"):
        return False
    if len(rel) == 2:
        stem, suffix = os.path.splitext(rel[1])
        if suffix not in VARS_SUFFIXES:
            return False
        name = stem
    else:
        name = rel[1]
    if rel[0] == "host_vars":
        return list(hosts) == [name]
    return all(name == "all" or name in g for g in groups)


def check_target(path: Path, inventory: Path, hosts: Sequence[str], groups: Sequence[Sequence[str]]) -> None:
    """Refuse (exit 2, one line) a file tx2setup must not overwrite, or one the boards would not read."""
    if path.exists():
        if not path.is_file():
            raise UserError(f"--write-become-vault {path}: not a regular file")
        other = [k for k in _read_keys(path) if k != VAR]
        if other:
            raise UserError(
                f"--write-become-vault {path}: holds other variables ({', '.join(other)}); give it a file of its "
                "own, e.g. group_vars/<group>/become.yml"
            )
    if not _covers(path, inventory, hosts, groups):
        raise UserError(
            f"--write-become-vault {path}: Ansible would not read it for {', '.join(hosts)}: use "
            f"group_vars/<a group of them, or all>/become.yml next to {inventory}"
        )


def read_secret(vault_file: str) -> bytes:
    try:
        return Path(vault_file).read_bytes().strip()
    except OSError as exc:
        raise UserError(f"vault password file {vault_file}: {exc.strerror}") from None


def render(password: str, secret: bytes) -> str:
    """The file's text: one inline-vaulted variable, as `ansible-vault encrypt_string` prints it."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    envelope = VaultLib([("default", VaultSecret(secret))]).encrypt(password).decode()
    body = "".join(f"  {line}\n" for line in envelope.splitlines())
    return (
        "# Written by `tx2setup flash --write-become-vault`: the sudo password of the user it created.\n"
        f"{VAR}: !vault |\n{body}"
    )


def write(path: Path, password: str, vault_file: str) -> Path:
    """Write the vaulted password to `path` (0600, atomic); returns the path."""
    text = render(password, read_secret(vault_file))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        _give_to_sudo_user(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _give_to_sudo_user(path: Path) -> None:
    """Under `sudo tx2setup flash`, the file belongs to the user who ran sudo (SUDO_UID, sudo(8)),
    so that their `tx2setup provision` can read it; a 0600 file of root's could not be."""
    uid, gid = os.environ.get("SUDO_UID", ""), os.environ.get("SUDO_GID", "")
    if os.geteuid() == 0 and uid.isdigit() and gid.isdigit():
        os.chown(path, int(uid), int(gid))
