"""`tx2setup provision`: bring every board to its planned stack, with a live view per board."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tx2setup.commands.options import VAULT_PASSWORD_FILE, become_options

if TYPE_CHECKING:
    from rich.table import Table

    from tx2setup.provision import HostProgress, ProvisionResult


def _live_table(rows: Mapping[str, HostProgress], check: bool) -> Table:
    from rich.table import Table

    table = Table(title="provision" + (" (check mode: nothing changes)" if check else ""), expand=False)
    for col in ("board", "role", "task", "ok", "changed", "failed", "elapsed"):
        table.add_column(col, no_wrap=col != "task", overflow="ellipsis", max_width=60 if col == "task" else None)
    for hp in rows.values():
        failed = "unreachable" if hp.unreachable else str(hp.failed)
        style = "red" if hp.unreachable or hp.failed else ("green" if hp.finished else "")
        table.add_row(
            hp.name, hp.role, hp.task, str(hp.ok), str(hp.changed), failed, f"{hp.elapsed:5.0f}s", style=style
        )
    return table


def _summary(result: ProvisionResult) -> None:
    from tx2setup.console import print_table

    print_table(
        "provision summary" + (" (check mode)" if result.check else ""),
        ["board", "status", "ok", "changed", "failed", "skipped", "elapsed", "failing task", "message"],
        [
            (h.name, h.status, h.ok, h.changed, h.failed, h.skipped, f"{h.elapsed:.0f}s", h.failed_task, h.message)
            for h in result.hosts.values()
        ],
        caption=f"logs: {result.run_dir}/logs  record: {result.record}",
    )


@click.command("provision")
@click.option("-i", "--inventory", required=True, type=click.Path(path_type=Path), help="Inventory file or dir.")
@click.option("--limit", default=None, help="Only these hosts or groups (comma separated).")
@click.option("--tags", default=None, help="Only these roles (tags, comma separated).")
@click.option("--skip-tags", default=None, help="Skip these roles (tags, comma separated).")
@click.option("--check", is_flag=True, help="Report what would change; change nothing.")
@click.option("--forks", type=click.IntRange(1, 256), default=None, help="Boards in parallel (default: ansible.cfg).")
@click.option("--no-cache", is_flag=True, help="Boards fetch large artifacts from upstream themselves.")
@click.option("--cache-bind", default=None, help="Address the boards reach this host on (default: picked per board).")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON instead of tables.")
@VAULT_PASSWORD_FILE
@become_options
def provision(
    inventory: Path,
    limit: str | None,
    tags: str | None,
    skip_tags: str | None,
    check: bool,
    forks: int | None,
    no_cache: bool,
    cache_bind: str | None,
    as_json: bool,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
) -> None:
    """Bring every board in the inventory to its planned stack (Ansible, in parallel)."""
    from rich.console import Console
    from rich.live import Live

    from tx2setup import become
    from tx2setup import provision as prov
    from tx2setup.console import print_json
    from tx2setup.errors import RemoteError

    console = Console(stderr=True)
    live: Live | None = None

    def on_progress(rows: Mapping[str, HostProgress]) -> None:
        if live is not None:
            live.update(_live_table(rows, check))

    def run_play(progress: Callable[[Mapping[str, HostProgress]], None] | None) -> prov.ProvisionResult:
        return prov.run(
            inventory,
            limit,
            tags,
            check,
            forks,
            use_cache=not no_cache,
            cache_bind=cache_bind,
            skip_tags=skip_tags,
            vault_password_file=vault_password_file,
            become_password_file=become_file,
            progress=progress,
        )

    with become.password_file(ask_become_pass, become_password_file) as become_file:
        if as_json or not console.is_terminal:
            result = run_play(None)
        else:
            with Live(console=console, refresh_per_second=4, transient=True) as live:
                result = run_play(on_progress)
    if as_json:
        print_json(result.to_dict())
    else:
        _summary(result)
    if result.interrupted:
        raise click.exceptions.Abort()
    if not result.ok:
        bad = result.bad_hosts
        for h in bad:  # one whole line per board, whatever the table above had room for
            where = f" at {h.failed_task!r}" if h.failed_task else ""
            click.echo(f"{h.name}: {h.status}{where}: {h.message or 'see its log'} (log: {h.log})", err=True)
        names = ", ".join(h.name for h in bad)
        raise RemoteError(
            f"{len(bad)} of {len(result.hosts)} board(s) not provisioned: {names} (logs in {result.run_dir})"
        )
