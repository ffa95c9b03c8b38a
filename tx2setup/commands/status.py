"""`tx2setup status`: the fleet at a glance (live table over SSH)."""

from __future__ import annotations

import click

from tx2setup.commands.options import VAULT_PASSWORD_FILE, become_options


@click.command("status")
@click.option("-i", "--inventory", required=True, help="Inventory file or directory.")
@click.option("--limit", help="Only these hosts or groups (comma separated).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds per board, for everything (connect to probe).",
)
@click.option("--db", help="History database for the last verify result.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@VAULT_PASSWORD_FILE
@become_options
def status(
    inventory: str,
    limit: str | None,
    timeout: float,
    db: str | None,
    as_json: bool,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
) -> int:
    """Reachability, uptime, L4T, power mode, GPU load/temperature, disk, memory, last verify."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from tx2setup import become, fleet
    from tx2setup.console import print_json
    from tx2setup.status import BoardStatus, fleet_status

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    def table(rows: list[BoardStatus]) -> Table:
        t = Table(title="fleet status")
        for c in (
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
        ):
            t.add_column(c)
        for s in sorted(rows, key=lambda x: x.name):
            t.add_row(
                s.name,
                s.address,
                "yes" if s.reachable else f"[red]no[/red] {s.error}",
                fmt(None if s.uptime_s is None else s.uptime_s / 3600, ".1f"),
                s.model or "-",
                s.l4t or "-",
                s.power_mode or "-",
                fmt(s.gpu_load_pct, ".0f"),
                fmt(s.gpu_temp_c, ".1f"),
                fmt(s.disk_free_gb, ".1f"),
                fmt(s.mem_free_mb, ".0f"),
                s.last_verify or "-",
                s.sudo or "-",
            )
        return t

    # loaded before the live table starts: an inventory error is then the only output
    inv = fleet.load(inventory, limit=limit, vault_password_file=vault_password_file)
    with become.password_file(ask_become_pass, become_password_file) as become_file:
        if as_json:
            rows = fleet_status(inv, limit, timeout, db, become_password_file=become_file)
            print_json([asdict(r) for r in rows])
        else:
            seen: list[BoardStatus] = []
            with Live(table(seen), console=Console(), refresh_per_second=8, transient=False) as live:

                def update(st: BoardStatus) -> None:
                    seen.append(st)
                    live.update(table(seen))

                rows = fleet_status(inv, limit, timeout, db, on_result=update, become_password_file=become_file)
    return 0 if all(r.reachable for r in rows) else 4
