"""`tx2setup bench`: run the on-device benchmark here (tx2setup/bench, self-contained)."""

from __future__ import annotations

import click


@click.command(
    "bench", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> int:
    """Run the Z2Color acceptance benchmark on this machine (see `tx2setup bench --help`)."""
    # Imported by name so mypy does not follow into tx2setup/bench: that package is Python 3.6
    # code typed by comments and excluded from the strict check (pyproject.toml).
    import importlib

    bench_cli = importlib.import_module("tx2setup.bench.cli")
    return int(bench_cli.main(list(args)))
