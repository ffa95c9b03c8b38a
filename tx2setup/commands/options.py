"""Click options shared by several verbs, defined once so their help and behaviour agree."""

from __future__ import annotations

from pathlib import Path

import click

from tx2setup.errors import UserError


def _readable_password_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An absolute path to a readable file, else a one-line UserError (exit 2) naming it.

    Absolute because ansible-runner runs ansible-playbook from its own directory, where a
    relative path would name another file. Checked here, before anything runs, so a typo
    does not surface as a mid-run Ansible error.
    """
    if not value:
        return None
    path = Path(value).expanduser()
    # checked before opening: opening a FIFO would block, and Ansible cannot use one either
    if path.is_dir():
        raise UserError(f"vault password file {value}: is a directory")
    if path.exists() and not path.is_file():
        raise UserError(f"vault password file {value}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserError(f"vault password file {value}: {exc.strerror or exc}") from None
    return str(path.resolve())


# `--vault-password-file FILE` (default: $ANSIBLE_VAULT_PASSWORD_FILE), handed to the command
# as `vault_password_file`: an absolute path, or None
VAULT_PASSWORD_FILE = click.option(
    "--vault-password-file",
    "vault_password_file",
    envvar="ANSIBLE_VAULT_PASSWORD_FILE",
    callback=_readable_password_file,
    help="Decrypt vaulted group_vars/host_vars (default: $ANSIBLE_VAULT_PASSWORD_FILE).",
)
