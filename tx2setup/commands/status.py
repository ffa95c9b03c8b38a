"""`tx2setup status`: the fleet at a glance (live table over SSH)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tx2setup.commands.options import JSON, LIMIT, connection_options, inventory_option

if TYPE_CHECKING:
    from rich.table import Table

    from tx2setup.board import Fleet
    from tx2setup.status import BoardStatus

COLUMNS = (
    "board",
    "address",
    "reachable",
    "uptime h",
    "model",
    "L4T",
    "power mode",
    "GPU %",
    "GPU °C",
    "disk GB",
    "mem MB",
    "last verify",
    "sudo",
)


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _cells(s: BoardStatus) -> tuple[str, ...]:
    return (
        s.name,
        s.address,
        "yes" if s.reachable else f"no: {s.error}",
        _fmt(None if s.uptime_s is None else s.uptime_s / 3600, ".1f"),
        s.model or "-",
        s.l4t or "-",
        s.power_mode or "-",
        _fmt(s.gpu_load_pct, ".0f"),
        _fmt(s.gpu_temp_c, ".1f"),
        _fmt(s.disk_free_gb, ".1f"),
        _fmt(s.mem_free_mb, ".0f"),
        s.last_verify or "-",
        s.sudo or "-",
    )


def _live_table(rows: Sequence[BoardStatus]) -> Table:
    from rich.table import Table
    from rich.text import Text

    t = Table(title="fleet status")
    for c in COLUMNS:
        t.add_column(c)
    for s in sorted(rows, key=lambda x: x.name):
        # Text, not markup: an error message's brackets are shown as they are
        t.add_row(*(Text(c) for c in _cells(s)), style="" if s.reachable else "red")
    return t


@click.command("status")
@inventory_option()
@LIMIT
@connection_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds per board, for everything (connect to probe).",
)
@click.option("--db", help="History database for the last verify result.")
@JSON
def status(
    inventory: Path,
    limit: str | None,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
    timeout: float,
    db: str | None,
    json_out: str | None,
) -> int:
    """Reachability, uptime, L4T, power mode, GPU load/temperature, disk, memory, last verify."""
    from dataclasses import asdict

    from tx2setup import become, board
    from tx2setup.console import emit_json, is_terminal, json_to_stdout, print_table
    from tx2setup.status import fleet_status

    # loaded before the live table starts: an inventory error is then the only output
    inv = board.load(inventory, limit=limit, vault_password_file=vault_password_file, plans=False)
    with become.password_file(ask_become_pass, become_password_file) as become_file:
        if json_to_stdout(json_out) or not is_terminal():
            rows = fleet_status(inv, limit, timeout, db, become_password_file=become_file)
        else:
            rows = _live(inv, limit, timeout, db, become_file)
    emit_json(json_out, [asdict(r) for r in rows])
    if not json_to_stdout(json_out) and not is_terminal():
        print_table("fleet status", COLUMNS, [_cells(s) for s in rows])
    return 0 if all(r.reachable for r in rows) else 4


def _live(inv: Fleet, limit: str | None, timeout: float, db: str | None, become_file: str | None) -> list[BoardStatus]:
    """The table grows a row as each board answers, on a terminal."""
    from rich.console import Console
    from rich.live import Live

    from tx2setup.status import fleet_status

    seen: list[BoardStatus] = []
    with Live(_live_table(seen), console=Console(), refresh_per_second=8, transient=False) as live:

        def update(st: BoardStatus) -> None:
            seen.append(st)
            live.update(_live_table(seen))

        return fleet_status(inv, limit, timeout, db, on_result=update, become_password_file=become_file)
