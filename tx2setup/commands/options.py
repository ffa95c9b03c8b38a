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


# -- options every verb that reads an inventory or reports shares ---------------------------
# One definition each, so a flag has one name, one type and one help text in every verb.


def inventory_option(required: bool = True) -> Callable[[F], F]:
    """`-i/--inventory PATH`, handed to the command as `inventory` (a Path, or None)."""
    return click.option(
        "-i",
        "--inventory",
        "inventory",
        required=required,
        type=click.Path(path_type=Path),
        help="Ansible inventory file or directory (INI or YAML).",
    )


LIMIT = click.option("--limit", "limit", default=None, help="Only these hosts or groups (comma separated).")

# `--json` prints JSON on stdout instead of the tables; `--json FILE` writes it to FILE
# (and the tables still print). Handed to the command as `json_out`: None, "-" or a path.
JSON = click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="JSON instead of the tables; with FILE, also write it there (tables still print).",
)

# ansible.cfg's `forks = 16`; tests/unit/test_console.py checks the two agree
DEFAULT_FORKS = 16

FORKS = click.option(
    "--forks",
    "forks",
    type=click.IntRange(1, 256),
    default=None,
    help=f"Boards worked on at once (default: forks in ansible.cfg, {DEFAULT_FORKS}).",
)

# The benchmark's measuring time: `--duration` in verify and in bench (tx2setup/bench/cli.py
# declares the same name with argparse, since it runs on Python 3.6 boards without click).
DURATION = click.option(
    "--duration",
    "duration",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds each benchmark measurement runs at least.",
)


def connection_options(func: F) -> F:
    """How the tool reaches the boards, beside the inventory: the vault password file that
    opens vaulted connection variables and the become (sudo) password options."""
    return VAULT_PASSWORD_FILE(become_options(func))


# verify (its --html report) and report flag regressions the same way
REGRESSION_PCT = click.option(
    "--regression-pct",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Flag a board whose end-to-end FPS dropped more than this % from its previous pass.",
)
