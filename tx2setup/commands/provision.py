"""`tx2setup provision`: bring every board to its planned stack, with a live view per board."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tx2setup.commands.options import FORKS, JSON, LIMIT, connection_options, inventory_option

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


def print_summary(result: ProvisionResult) -> None:
    """The table `tx2setup provision` prints at the end (flash --then-provision prints it too)."""
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


class PlainProgress:
    """The live table's stand-in off a terminal: one timestamped line per board per role
    (when the board starts it) and one when the board ends, whole, however long."""

    def __init__(self) -> None:
        self._role: dict[str, str] = {}
        self._done: set[str] = set()

    def __call__(self, rows: Mapping[str, HostProgress]) -> None:
        from tx2setup.console import progress_line

        for hp in rows.values():
            if hp.name in self._done:
                continue
            if hp.role and hp.role != self._role.get(hp.name):
                self._role[hp.name] = hp.role
                progress_line(hp.name, f"provision {hp.role}", f"started ({hp.elapsed:.0f}s in)")
            if hp.unreachable or hp.failed:
                self._done.add(hp.name)
                status = "unreachable" if hp.unreachable else "failed"
                progress_line(hp.name, "provision", f"{status} at {hp.failed_task!r}: {hp.message}")
            elif hp.finished is not None:
                self._done.add(hp.name)
                progress_line(hp.name, "provision", f"done (ok={hp.ok} changed={hp.changed}, {hp.elapsed:.0f}s)")


@click.command("provision")
@inventory_option()
@LIMIT
@connection_options
@click.option("--tags", default=None, help="Only these roles (tags, comma separated).")
@click.option("--skip-tags", default=None, help="Skip these roles (tags, comma separated).")
@click.option("--check", is_flag=True, help="Report what would change; change nothing.")
@FORKS
@click.option("--no-cache", is_flag=True, help="Boards fetch large artifacts from upstream themselves.")
@click.option(
    "--no-apt-proxy", is_flag=True, help="Boards' apt fetches packages directly (no apt-cacher-ng for this run)."
)
@click.option("--cache-bind", default=None, help="Address the boards reach this host on (default: picked per board).")
@click.option(
    "--full",
    is_flag=True,
    help="Run every task of every role, also where a role's probe finds the board as its last complete run left it.",
)
@JSON
def provision(
    inventory: Path,
    limit: str | None,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
    tags: str | None,
    skip_tags: str | None,
    check: bool,
    forks: int | None,
    no_cache: bool,
    no_apt_proxy: bool,
    cache_bind: str | None,
    full: bool,
    json_out: str | None,
) -> None:
    """Bring every board in the inventory to its planned stack (Ansible, in parallel)."""
    from rich.console import Console
    from rich.live import Live

    from tx2setup import become
    from tx2setup import provision as prov
    from tx2setup.console import emit_json, json_to_stdout

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
            use_apt_proxy=not no_apt_proxy,
            cache_bind=cache_bind,
            skip_tags=skip_tags,
            # the roles' converged probes (docs/ansible.md, "Converged roles") step aside
            extravars={"tx2setup_converge_gate": False} if full else None,
            vault_password_file=vault_password_file,
            become_password_file=become_file,
            progress=progress,
        )

    with become.password_file(ask_become_pass, become_password_file) as become_file:
        if not console.is_terminal:
            result = run_play(PlainProgress())
        else:
            with Live(console=console, refresh_per_second=4, transient=True) as live:
                result = run_play(on_progress)
    emit_json(json_out, result.to_dict())
    if not json_to_stdout(json_out):
        print_summary(result)
    _finish(result)


def _finish(result: ProvisionResult) -> None:
    from tx2setup.errors import RemoteError

    bad = result.bad_hosts
    for h in bad:  # one whole line per board, whatever the table above had room for
        where = f" at {h.failed_task!r}" if h.failed_task else ""
        what = "run `tx2setup provision` again to finish it" if h.status == "interrupted" else h.message
        click.echo(f"{h.name}: {h.status}{where}: {what or 'see its log'} (log: {h.log})", err=True)
    if result.interrupted:
        raise click.exceptions.Abort()  # exit 130 (cli.py)
    if not result.ok:
        names = ", ".join(h.name for h in bad)
        raise RemoteError(
            f"{len(bad)} of {len(result.hosts)} board(s) not provisioned: {names} (logs in {result.run_dir})"
        )
