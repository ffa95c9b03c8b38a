"""Emulated Jetson boards on this Linux host (`tx2setup sim`): the Python API.

    from tx2setup import sim
    boards = sim.up([sim.BoardSpec("tx2", "4.6.4"), sim.BoardSpec("xavier-nx", "5.1.2")])
    inv = sim.write_inventory("/tmp/sim.ini")    # standard Ansible inventory
    sim.status(); sim.stop_board("tx2-1"); sim.start_board("tx2-1")
    sim.down(destroy=True)

Every function works on the fleet in $TX2SETUP_SIM_DIR (default
$TX2SETUP_CACHE/sim/fleet); `sim.Fleet(sim_dir)` is the same API for an explicit dir.
All of it needs root (NotRootError otherwise).
"""

from __future__ import annotations

from pathlib import Path

from tx2setup.sim.board import SimBoard, SimBoardStatus
from tx2setup.sim.control import Fleet
from tx2setup.sim.spec import BoardSpec

__all__ = [
    "BoardSpec",
    "Fleet",
    "SimBoard",
    "SimBoardStatus",
    "boards",
    "destroy_board",
    "down",
    "start_board",
    "status",
    "stop_board",
    "up",
    "write_inventory",
]


def up(boards: list[BoardSpec] | None = None) -> list[SimBoard]:
    return Fleet().up(boards)


def down(destroy: bool = False) -> None:
    Fleet().down(destroy=destroy)


def status() -> list[SimBoardStatus]:
    return Fleet().status()


def boards() -> list[SimBoard]:
    return Fleet().boards()


def write_inventory(path: Path | str | None = None) -> Path:
    return Fleet().write_inventory(path)


def stop_board(name: str) -> None:
    Fleet().stop_board(name)


def start_board(name: str) -> SimBoard:
    return Fleet().start_board(name)


def destroy_board(name: str) -> None:
    Fleet().destroy_board(name)
