"""The default user a freshly flashed board boots with (so it comes up headless, with SSH).

The BSP's `tools/l4t_create_default_user.sh -u USER -p PASS` writes the user into the
shared `Linux_for_Tegra/rootfs` before flashing. Where the values come from, per host:

- user: `flash_user`, else `ansible_user` (the user Ansible will log in as), else a prompt;
- password: `flash_password` (plain or `!vault`-encrypted), else a prompt;
- key: `flash_ssh_key`, a public key line or the path of a `.pub` file; it goes into
  `rootfs/home/USER/.ssh/authorized_keys`. With a key and no password, a random
  password is generated (the script would generate one too) and only the key is used.

One run writes one rootfs, so every board in a run must agree on these values.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tx2setup.errors import UserError
from tx2setup.fleet import Board

USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$")
AskFn = Callable[[str, bool], str]  # (prompt, hide input) -> answer


@dataclass(frozen=True)
class DefaultUser:
    name: str
    password: str
    ssh_pubkey: str | None
    password_generated: bool = False


def _field(board: Board, key: str, vault_password_file: str | None) -> str | None:
    value: Any = board.hostvars.get(key)
    if value is None:
        return None
    if isinstance(value, dict) and "__ansible_vault" in value:
        return _decrypt(board, key, str(value["__ansible_vault"]), vault_password_file)
    return str(value)


def _decrypt(board: Board, key: str, ciphertext: str, vault_password_file: str | None) -> str:
    pw_file = vault_password_file or os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not pw_file:
        raise UserError(
            f"host {board.name}: {key}: vault-encrypted; pass --vault-password-file or set ANSIBLE_VAULT_PASSWORD_FILE"
        )
    # ansible-core is a dependency anyway; import it only when a vaulted value shows up
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret

    try:
        secret = Path(pw_file).read_bytes().strip()
    except OSError as exc:
        raise UserError(f"vault password file {pw_file}: {exc.strerror}") from None
    try:
        plain = VaultLib([("default", VaultSecret(secret))]).decrypt(ciphertext.encode())
    except AnsibleError:
        raise UserError(f"host {board.name}: {key}: the vault password in {pw_file} does not decrypt it") from None
    return bytes(plain).decode()


def _pubkey(board: Board, text: str) -> str:
    candidate = text.strip()
    if not KEY_RE.match(candidate):
        path = Path(candidate).expanduser()
        try:
            candidate = path.read_text().strip()
        except OSError:
            raise UserError(
                f"host {board.name}: flash_ssh_key: {text!r} is neither a public key line nor a readable file"
            ) from None
        if not KEY_RE.match(candidate):
            raise UserError(f"host {board.name}: flash_ssh_key: {path} does not hold one OpenSSH public key")
    return candidate


def resolve(
    boards: Sequence[Board],
    vault_password_file: str | None = None,
    ask: AskFn | None = None,
    source: str = "inventory",
) -> DefaultUser:
    """The one default user for this run; UserError names the host and field at fault."""
    if not boards:
        raise UserError(f"{source}: no board to create a user for")
    seen: dict[str, tuple[str | None, Board]] = {}
    for board in boards:
        values = {
            "flash_user": _field(board, "flash_user", vault_password_file)
            or _field(board, "ansible_user", vault_password_file),
            "flash_password": _field(board, "flash_password", vault_password_file),
            "flash_ssh_key": _field(board, "flash_ssh_key", vault_password_file),
        }
        for fieldname, value in values.items():
            if fieldname not in seen:
                seen[fieldname] = (value, board)
            elif seen[fieldname][0] != value:
                other = seen[fieldname][1].name
                raise UserError(
                    f"{source}: host {board.name}: {fieldname}: differs from host {other}; boards flashed in one run "
                    "share one rootfs and so one default user (flash them in separate runs with --limit)"
                )
    first = boards[0]
    name: str | None = seen["flash_user"][0]
    if name is None:
        if ask is None:
            raise UserError(f"{source}: host {first.name}: flash_user: missing (set flash_user or ansible_user)")
        name = ask("User to create on the flashed boards", False).strip()
    if not USER_RE.match(name):
        raise UserError(f"{source}: host {first.name}: flash_user: {name!r} is not a valid Linux user name")
    key_text = seen["flash_ssh_key"][0]
    key: str | None = _pubkey(first, key_text) if key_text else None
    password: str | None = seen["flash_password"][0]
    generated = False
    if password is None:
        if key is not None:
            password, generated = secrets.token_urlsafe(12), True
        elif ask is not None:
            password = ask(f"Password for {name} on the flashed boards", True)
        else:
            raise UserError(
                f"{source}: host {first.name}: flash_password: missing (set flash_password, vault-encrypted, "
                "or flash_ssh_key; or run interactively to be asked)"
            )
    if not password or "\n" in password:
        raise UserError(f"{source}: host {first.name}: flash_password: must be one non-empty line")
    return DefaultUser(name=name, password=password, ssh_pubkey=key, password_generated=generated)


def install_key(rootfs: Path, user: DefaultUser) -> Path | None:
    """Put the user's public key into the rootfs, owned by the user as the rootfs's passwd says."""
    if user.ssh_pubkey is None:
        return None
    uid = gid = None
    home = f"/home/{user.name}"
    for line in (rootfs / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if len(parts) >= 6 and parts[0] == user.name:
            uid, gid, home = int(parts[2]), int(parts[3]), parts[5]
            break
    if uid is None or gid is None:
        raise UserError(f"{rootfs}/etc/passwd: user {user.name} was not created")
    ssh_dir = rootfs / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    # exactly this key: the rootfs is reused run after run, and a key an earlier run put
    # there (one since replaced in the inventory) must not keep opening every new board
    keys.write_text(user.ssh_pubkey + "\n")
    ssh_dir.chmod(0o700)
    keys.chmod(0o600)
    for p in (ssh_dir, keys):
        os.chown(p, uid, gid)
    return keys
