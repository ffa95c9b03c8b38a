"""Detected recovery-mode boards <-> inventory boards.

A board in the inventory names its USB port path (`usb_port=1-2.1`) or its serial
(`board_serial=...`); a device no inventory entry claims can be assigned by asking,
when the command runs interactively. The match records *how* each pair was made so
`flash --list` can show it, and whether the product ID fits the inventory's module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tx2setup.errors import InventoryError
from tx2setup.flash.detect import RecoveryDevice
from tx2setup.fleet import Board
from tx2setup.plan import BoardPlan

# (device, names of the boards it could be) -> a board name, or None to leave it alone
AskFn = Callable[[RecoveryDevice, list[str]], str | None]


@dataclass(frozen=True)
class Assignment:
    board: Board
    plan: BoardPlan
    device: RecoveryDevice
    how: str  # "usb_port", "board_serial" or "asked"

    @property
    def module_fits(self) -> bool:
        return self.board.module in self.device.modules


@dataclass
class MatchResult:
    assigned: list[Assignment] = field(default_factory=list)
    unassigned: list[RecoveryDevice] = field(default_factory=list)
    absent: list[Board] = field(default_factory=list)  # pinned by port/serial, not in recovery mode

    @property
    def mismatched(self) -> list[Assignment]:
        return [a for a in self.assigned if not a.module_fits]


def match(
    devices: Sequence[RecoveryDevice],
    boards: Sequence[tuple[Board, BoardPlan]],
    ask: AskFn | None = None,
    inventory_label: str = "inventory",
) -> MatchResult:
    result = MatchResult()
    taken: dict[str, str] = {}  # device port -> board name
    for board, plan in boards:
        dev, how = _pinned_device(devices, board)
        if board.usb_port is None and board.serial is None:
            continue
        if dev is None:
            result.absent.append(board)
            continue
        if dev.port in taken:
            raise InventoryError(
                f"{inventory_label}: host {board.name}: {how}: the board at USB port {dev.port} "
                f"is also claimed by {taken[dev.port]}"
            )
        taken[dev.port] = board.name
        result.assigned.append(Assignment(board, plan, dev, how))
    free = [(b, p) for b, p in boards if b.usb_port is None and b.serial is None]
    for dev in devices:
        if dev.port in taken:
            continue
        names = [b.name for b, _ in free if b.name not in taken.values()]
        answer = ask(dev, names) if ask is not None and names else None
        if answer is None:
            result.unassigned.append(dev)
            continue
        if answer not in names:
            raise InventoryError(f"{inventory_label}: {answer!r} is not one of {', '.join(names)}")
        board, plan = next((b, p) for b, p in free if b.name == answer)
        taken[dev.port] = board.name
        result.assigned.append(Assignment(board, plan, dev, "asked"))
    result.assigned.sort(key=lambda a: a.board.name)
    return result


def _pinned_device(devices: Sequence[RecoveryDevice], board: Board) -> tuple[RecoveryDevice | None, str]:
    if board.usb_port is not None:
        for dev in devices:
            if dev.port == board.usb_port:
                return dev, "usb_port"
    if board.serial is not None:
        for dev in devices:
            if dev.serial is not None and dev.serial == board.serial:
                return dev, "board_serial"
    return None, "usb_port" if board.usb_port is not None else "board_serial"
