"""The command layer: parse, call, map errors to exit codes. Nothing else lives here.

Each verb's click command lives in `tx2setup/commands/<verb>.py` and is imported only
when that verb runs, so `tx2setup --help` stays fast and never imports torch or
ansible_runner.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from tx2setup import __version__
from tx2setup.errors import Tx2SetupError

# verb -> (module, attribute, one-line help). Help is duplicated here so that listing
# the verbs does not import their modules.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "matrix": ("tx2setup.commands.matrix", "matrix", "Show which versions go together."),
    "inventory": ("tx2setup.commands.inventory", "inventory", "Check an inventory and show each board's plan."),
    "init": ("tx2setup.commands.init", "init", "Write a commented sample inventory into DIR."),
    "flash": ("tx2setup.commands.flash", "flash", "Flash boards in USB recovery mode (host side)."),
    "provision": ("tx2setup.commands.provision", "provision", "Bring every board to its planned stack (Ansible)."),
    "verify": ("tx2setup.commands.verify", "verify", "Check every board and run the acceptance benchmark."),
    "bench": ("tx2setup.commands.bench", "bench", "Run the acceptance benchmark on this machine."),
    "status": ("tx2setup.commands.status", "status", "Show the fleet at a glance."),
    "report": ("tx2setup.commands.report", "report", "Show the history of verify runs."),
    "cache": ("tx2setup.commands.cache", "cache", "Fetch, pin and serve large artifacts."),
    "sim": ("tx2setup.commands.sim", "sim", "Emulated Jetson boards on this Linux host."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tx2setup")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Take a shelf of Jetson boards to a known-good stack, and prove it board by board."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def run(argv: list[str] | None = None) -> int:
    """Entry point: the only place where exceptions become exit codes."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args or "--verbose" in args
    try:
        result: Any = main.main(args=args, prog_name="tx2setup", standalone_mode=False)
    except Tx2SetupError as exc:
        if verbose:
            raise
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(run())
