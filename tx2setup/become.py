"""The become (sudo) password of boards whose login user is not root.

A freshly flashed Jetson has one user, made by the BSP's `tools/l4t_create_default_user.sh`
(what `tx2setup flash` runs): it is in the `sudo` group and Ubuntu's sudo asks for its
password; root cannot log in (design.md section 9). Ansible therefore needs a become
password. tx2setup takes it the ways Ansible does, and hands it on without ever putting it
in argv, in the environment's values, in logs or in records:

- `-K/--ask-become-pass`: prompted once, without echo, then written to a 0600 file in a
  private 0700 directory that is removed when the command ends;
- `--become-password-file F` or `ANSIBLE_BECOME_PASSWORD_FILE` (Ansible's own setting,
  ansible-core 2.12+: `become_password_file`), whose first line is the password;
- a vaulted `ansible_become_password` in the inventory, which Ansible decrypts itself
  with the vault password file.

ansible-playbook gets a password file through ANSIBLE_BECOME_PASSWORD_FILE (a path, not
the secret). verify and status, which reach boards outside Ansible, feed the same password
to `sudo -S` on stdin.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tx2setup.errors import UserError

# What `sudo -S -p ''` prints when it wanted a password and got none or a wrong one
# (sudo 1.8.21 on Ubuntu 18.04 to 1.9.x): "sudo: no password was provided",
# "sudo: 1 incorrect password attempt", "Sorry, try again."
SUDO_REFUSED = ("incorrect password", "Sorry, try again", "no password was provided", "a password is required")

# Ansible's messages for a become that asked and got nothing / a wrong password
# (ansible-core 2.16 lib/ansible/plugins/connection/ssh.py: "Missing %s password",
# "Incorrect %s password", with the become plugin's name).
MISSING = "Missing sudo password"
INCORRECT = "Incorrect sudo password"
HOW_TO_GIVE = (
    "pass -K/--ask-become-pass, --become-password-file F (or ANSIBLE_BECOME_PASSWORD_FILE), "
    "or put a vaulted ansible_become_password in the inventory"
)


def explain(message: str) -> str | None:
    """A one-line explanation for Ansible's become failures, else None."""
    if MISSING.lower() in message.lower():
        return f"sudo on the board asks for a password and none was given: {HOW_TO_GIVE}"
    if INCORRECT.lower() in message.lower():
        return "sudo on the board refused the become password given (check ansible_become_password or the file)"
    return None


def read_password_file(path: str) -> str:
    """The password in a become password file, read exactly as ansible-playbook reads
    --become-password-file: the whole file stripped, or a script's output if executable."""
    from ansible.cli import CLI
    from ansible.errors import AnsibleError

    if not Path(path).is_file():
        raise UserError(f"become password file {path}: no such file")
    try:
        secret = CLI.get_password_from_file(path)
    except (AnsibleError, OSError) as exc:
        raise UserError(f"become password file {path}: {' '.join(str(exc).split())}") from None
    text = secret.decode("utf-8", errors="replace") if isinstance(secret, bytes) else str(secret)
    if not text.strip():
        raise UserError(f"become password file {path}: empty")
    return text.strip()


@contextlib.contextmanager
def private_password_file(password: str) -> Iterator[str]:
    """A 0600 file holding `password`, in a 0700 directory removed on exit (even on error)."""
    directory = tempfile.mkdtemp(prefix="tx2setup-become-")  # mkdtemp makes it 0700
    path = Path(directory) / "become-password"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        yield str(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def password_file(ask: bool, given: str | None, prompt: str = "BECOME password: ") -> Iterator[str | None]:
    """The become password file for this command: `given` (already checked readable), a
    private file holding the answer to a -K prompt, or None (the inventory's own
    ansible_become_password, if any, applies)."""
    if ask and given:
        raise UserError("-K/--ask-become-pass and --become-password-file (or ANSIBLE_BECOME_PASSWORD_FILE) both given")
    if not ask:
        yield given
        return
    import click

    answer = click.prompt(prompt.rstrip(": "), hide_input=True, default="", show_default=False, err=True)
    if not answer:
        raise UserError("-K/--ask-become-pass: no password entered")
    with private_password_file(str(answer)) as path:
        yield path


def vaulted_text(value: Any) -> str | None:
    """The ciphertext of an inline-vaulted value as ansible-inventory --list shows it."""
    if isinstance(value, dict) and isinstance(value.get("__ansible_vault"), str):
        return str(value["__ansible_vault"])
    return None


def decrypt(ciphertext: str, vault_password_file: str) -> str:
    """Decrypt an inline vault value with Ansible's own VaultLib."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import AnsibleVaultError, VaultLib, get_file_vault_secret

    # as ansible-playbook reads --vault-password-file: a plain file, or a script's output
    secret = get_file_vault_secret(filename=vault_password_file, loader=DataLoader())
    secret.load()
    try:
        plain: bytes = VaultLib([("default", secret)]).decrypt(ciphertext.encode())
    except AnsibleVaultError:
        raise UserError(f"{vault_password_file}: the vault password does not decrypt ansible_become_password") from None
    return plain.decode("utf-8")


def board_password(hostvars: dict[str, Any], become_file: str | None, vault_file: str | None) -> str | None:
    """The become password for one board as Ansible would use it: the file given on the
    command line wins, else the inventory's ansible_become_password (vaulted or plain)."""
    if become_file:
        return read_password_file(become_file)
    value = hostvars.get("ansible_become_password", hostvars.get("ansible_become_pass"))
    if value is None:
        return None
    cipher = vaulted_text(value)
    if cipher is None:
        text = str(value)
        # a Jinja expression (a lookup, say) is Ansible's to evaluate: tx2setup cannot
        return None if "{{" in text else text
    if not vault_file:
        raise UserError(
            "ansible_become_password is vault-encrypted: "
            "pass --vault-password-file (or set ANSIBLE_VAULT_PASSWORD_FILE)"
        )
    return decrypt(cipher, vault_file)
