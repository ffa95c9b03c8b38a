"""`tx2setup bench`: run the on-device benchmark here (tx2setup/bench, self-contained)."""

from __future__ import annotations

import click


@click.command(
    "bench", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> int:
    """Run the Z2Color acceptance benchmark on this machine (see `tx2setup bench --help`)."""
    from tx2setup.bench.cli import main as bench_main

    return bench_main(list(args))
