"""The sample inventory that `tx2setup init` writes (the same files as inventory/sample)."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from tx2setup.errors import UserError

SAMPLE = "data/sample_inventory"


def _files(node: Traversable, prefix: Path) -> list[tuple[Path, Traversable]]:
    out: list[tuple[Path, Traversable]] = []
    for child in node.iterdir():
        rel = prefix / child.name
        if child.is_dir():
            out += _files(child, rel)
        else:
            out.append((rel, child))
    return sorted(out, key=lambda x: str(x[0]))


def write_sample(directory: str | Path, force: bool = False) -> list[Path]:
    """Copy the sample into `directory`. Refuses (touching nothing) if a file exists."""
    dest = Path(directory)
    files = _files(resources.files("tx2setup").joinpath(SAMPLE), Path())
    clashes = [dest / rel for rel, _ in files if (dest / rel).exists()]
    if clashes and not force:
        raise UserError(f"{clashes[0]}: already exists (use --force to overwrite)")
    written = []
    for rel, src in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
        written.append(target)
    return written
