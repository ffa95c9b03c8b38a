"""Output helpers shared by the verbs: tables for people, JSON for programs, progress lines.

On a terminal, tables are rich tables fitted to the window and long verbs show a live view.
Anywhere else (a log file, a pipe, CI) nothing is cut or wrapped: a table prints at its
natural width, one line per row, and progress is one timestamped line per board and stage,
so `grep BOARD log` finds every line about a board, whole.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

# the value of a bare `--json` (no FILE): JSON goes to stdout instead of the tables
STDOUT = "-"


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream is no terminal
        return False


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def json_to_stdout(dest: str | None) -> bool:
    """True when `--json` was given without a FILE: print JSON instead of the tables."""
    return dest == STDOUT


def emit_json(dest: str | None, data: Any) -> None:
    """`--json [FILE]`: JSON on stdout, or written (atomically) to FILE; nothing when None."""
    if dest is None:
        return
    if dest == STDOUT:
        print_json(data)
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _cell(value: Any) -> str:
    # a cell is one line: a message with newlines keeps every word, on the row's own line
    return "" if value is None else " ".join(str(value).split("\n")).strip()


def plain_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """The table at its natural width: title, header, one line per row, caption. Columns are
    padded to their widest cell and the last column is not padded, so no line has trailing
    blanks and no cell is ever shortened."""
    cells = [[_cell(c) for c in row] for row in rows]
    header = [str(c) for c in columns]
    widths = [max([len(header[i]), *(len(r[i]) for r in cells if i < len(r))]) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(widths[i]) if i < len(values) - 1 else v for i, v in enumerate(values)]
        return "  ".join(padded).rstrip()

    out = [title, line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    if caption:
        out.append(caption)
    return "\n".join(out) + "\n"


# C0 and C1 control characters and DEL: a board's message or a hostile inventory value
# could carry terminal escape sequences (ECMA-48: ESC, CSI 0x9b, OSC ...) into the table
# (and lone surrogates, which a board's JSON may carry and no output stream can encode)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def shown(value: Any) -> str:
    """A cell as the terminal may see it: control characters as visible \\xNN (\\uNNNN) escapes."""
    text = "" if value is None else str(value)
    # a line break or tab becomes a space (a table row is one line); other controls are shown escaped
    return _CONTROL.sub(lambda m: " " if m.group() in "\t\n\r" else ascii(m.group())[1:-1], text)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
    rows = [[shown(cell) for cell in row] for row in rows]
    if not is_terminal():
        sys.stdout.write(plain_table(title, columns, rows, caption))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, caption=caption, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        # Text, not markup: a message's "[...]" is shown as it is
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    Console().print(table)


def progress_line(board: str, stage: str, detail: str = "", stream: TextIO | None = None) -> None:
    """One timestamped line about one board: `2026-12-06T02:41:07 tx2-1 provision: jetpack ok=3`.

    Long verbs print these on stderr when it is no terminal (their live view's stand-in),
    so stdout keeps only the result (tables or --json)."""
    out = sys.stderr if stream is None else stream
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    line = shown(f"{board} {stage}" + (f": {detail}" if detail else ""))
    out.write(f"{stamp} {line}\n")
    out.flush()
