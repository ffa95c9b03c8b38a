"""`tx2setup init DIR`: write the commented sample inventory."""

from __future__ import annotations

import click


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, force: bool) -> None:
    """Write a commented sample inventory (lab.ini + group_vars/) into DIRECTORY."""
    from tx2setup.scaffold import write_sample

    written = write_sample(directory, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: edit {directory}/lab.ini, then: tx2setup inventory check -i {directory}/lab.ini")
