"""The exception hierarchy. Each class carries the exit code `cli.py` turns it into.

Library code raises these; only `cli.py` prints them and exits, so every user error is
one line on stderr with a stable exit status and no traceback (unless --verbose).
"""

from __future__ import annotations


class Tx2SetupError(Exception):
    """Base class: an expected failure with a one-line message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(Tx2SetupError):
    """Bad input from the user (file, flag, field). Nothing was changed."""

    exit_code = 2


class InventoryError(UserError):
    """The inventory cannot be parsed or fails validation."""


class MatrixError(UserError):
    """The compatibility matrix (data file or a lookup in it) is wrong."""


class PlanError(UserError):
    """A board's settings cannot be resolved to a consistent plan."""


class NotRootError(UserError):
    """The command needs root (e.g. `sim`, `flash`) and is not running as root."""


class EnvironmentProblem(Tx2SetupError):
    """The host lacks something the command needs (a tool, a BSP, disk space)."""

    exit_code = 3


class RemoteError(Tx2SetupError):
    """One or more boards failed or could not be reached."""

    exit_code = 4


class ChecksumError(Tx2SetupError):
    """An artifact does not match its pinned sha256."""

    exit_code = 5


class AcceptanceFailed(Tx2SetupError):
    """Verification ran, and at least one board did not pass."""

    exit_code = 1


class Interrupted(Tx2SetupError):
    """Ctrl-C (SIGINT) stopped the run; the message names what was cut short. 130 is the
    shell's code for a command ended by SIGINT (128 + 2), as cli.py gives a bare Ctrl-C."""

    exit_code = 130
