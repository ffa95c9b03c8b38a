"""One object per board for every verb: its inventory entry, its plan and how to reach it.

`load()` is the one way a verb reads a fleet: the inventory (`fleet.load`: every field
checked, one-line errors), then each board's plan (`plan.resolve`: a board the matrix
cannot satisfy refuses the whole run before anything touches a board), then the SSH
settings Ansible would use for it (`connection.SshTarget`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tx2setup import become, fleet, plan
from tx2setup.connection import SshTarget


@dataclass(frozen=True)
class FleetBoard:
    """One board as every verb sees it."""

    entry: fleet.Board  # the validated inventory entry (module, JetPack, hostvars, ...)
    ssh: SshTarget  # how tx2setup's own commands reach it, configured as Ansible connects
    resolved: plan.BoardPlan | None  # None only when loaded with plans=False (status)
    become_password: str | None = None  # set by Fleet.with_become_passwords

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def hostvars(self) -> dict[str, Any]:
        return self.entry.hostvars

    @property
    def emulated(self) -> bool:
        return self.entry.emulated

    @property
    def plan(self) -> plan.BoardPlan:
        if self.resolved is None:
            raise RuntimeError(f"board {self.name} was loaded without its plan (load(..., plans=True))")
        return self.resolved


@dataclass(frozen=True)
class Fleet:
    """The (limited) boards of one inventory, in inventory order."""

    inventory: fleet.Inventory
    boards: tuple[FleetBoard, ...]

    @property
    def path(self) -> Path:
        return self.inventory.path

    @property
    def vault_password_file(self) -> str | None:
        """The one given, else the inventory's own tx2setup_vault_password_file."""
        return self.inventory.vault_password_file

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.boards]

    @property
    def plans(self) -> list[plan.BoardPlan]:
        return [b.plan for b in self.boards]

    def with_become_passwords(self, become_password_file: str | None) -> Fleet:
        """Each board's sudo password as Ansible would use it (the file given, else the
        inventory's, vaulted or plain). Resolved for the whole fleet before any board is
        touched: a vaulted password without its vault password is one error for the run."""
        vault = self.vault_password_file
        boards = tuple(
            dataclasses.replace(b, become_password=become.board_password(b.hostvars, become_password_file, vault))
            for b in self.boards
        )
        return dataclasses.replace(self, boards=boards)


def load(
    path: str | Path, limit: str | None = None, vault_password_file: str | None = None, *, plans: bool = True
) -> Fleet:
    """Every (limited) board of the inventory at `path`. Raises InventoryError/PlanError
    (one line naming file, host and field; exit 2). `plans=False` skips the plans, for a
    verb that only reaches the boards (status shows a board whatever its plan says)."""
    inv = fleet.load(path, limit=limit, vault_password_file=vault_password_file)
    by_name = {p.name: p for p in plan.resolve(inv)} if plans else {}
    boards = tuple(FleetBoard(entry=b, ssh=SshTarget.from_board(b), resolved=by_name.get(b.name)) for b in inv.boards)
    return Fleet(inventory=inv, boards=boards)
