"""Click options shared by several verbs, defined once so their help and behaviour agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tx2setup.errors import UserError


def _readable_file(what: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        return _readable_password_file(value, what)

    return check


def _readable_password_file(value: str | None, what: str) -> str | None:
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
        raise UserError(f"{what} {value}: is a directory")
    if path.exists() and not path.is_file():
        raise UserError(f"{what} {value}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserError(f"{what} {value}: {exc.strerror or exc}") from None
    return str(path.resolve())


# `--vault-password-file FILE` (default: $ANSIBLE_VAULT_PASSWORD_FILE), handed to the command
# as `vault_password_file`: an absolute path, or None
VAULT_PASSWORD_FILE = click.option(
    "--vault-password-file",
    "vault_password_file",
    envvar="ANSIBLE_VAULT_PASSWORD_FILE",
    callback=_readable_file("vault password file"),
    help="Decrypt vaulted group_vars/host_vars (default: $ANSIBLE_VAULT_PASSWORD_FILE).",
)

F = TypeVar("F", bound=Callable[..., Any])


def become_options(func: F) -> F:
    """`-K/--ask-become-pass` and `--become-password-file FILE` (default:
    $ANSIBLE_BECOME_PASSWORD_FILE), Ansible's own names for the sudo password of boards whose
    login user is not root (a freshly flashed Jetson's; see tx2setup/become.py). Handed to
    the command as `ask_become_pass` (bool) and `become_password_file` (absolute path or None)."""
    func = click.option(
        "--become-password-file",
        "become_password_file",
        envvar="ANSIBLE_BECOME_PASSWORD_FILE",
        callback=_readable_file("become password file"),
        help="The boards' sudo password is this file's content (default: $ANSIBLE_BECOME_PASSWORD_FILE).",
    )(func)
    return click.option(
        "-K",
        "--ask-become-pass",
        "ask_become_pass",
        is_flag=True,
        help="Ask for the boards' sudo password (as ansible-playbook -K).",
    )(func)
