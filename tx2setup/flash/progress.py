"""The live progress view of a flash run (rich), fed by the runner's events.

On a terminal: one table row per board (port, module, phase, elapsed, last line),
redrawn in place. Elsewhere (CI, a pipe): one plain line per phase change, so a log of
the run still reads well. It writes to stderr; stdout carries the summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tx2setup.flash.runner import Event, Target

STYLE = {"flashed": "green", "failed": "red", "timed out": "red"}


class ProgressView:
    def __init__(self, targets: Sequence[Target], console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, str | float]] = {
            t.name: {"port": t.port, "module": t.module, "phase": "waiting", "line": "", "start": 0.0} for t in targets
        }
        self._live: Live | None = None
        if self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> ProgressView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()

    def __call__(self, event: Event) -> None:
        with self._lock:
            row = self._rows.get(event.board)
            if row is None:
                return
            changed = None
            if not row["start"]:
                row["start"] = time.monotonic()
            # a status equal to the phase already shown (the tool's own "Flash failure" line
            # set "failed") is not news: plain output prints each change once
            if event.status is not None:
                if event.status != row["phase"]:
                    row["phase"] = changed = event.status
            elif event.phase is not None and event.phase != row["phase"]:
                row["phase"] = changed = event.phase
            if event.line:
                row["line"] = event.line[-80:]
            if self._live is not None:
                self._live.update(self._render())
            elif changed is not None:
                self.console.print(f"{event.board}: {changed}", markup=False, highlight=False)

    def _render(self) -> Table:
        table = Table(title="tx2setup flash", expand=False)
        for col in ("board", "port", "module", "phase", "time", "last line"):
            table.add_column(col, overflow="ellipsis", no_wrap=col == "last line")
        now = time.monotonic()
        for name, row in self._rows.items():
            start = float(row["start"])
            elapsed = f"{now - start:.0f}s" if start else "-"
            phase = str(row["phase"])
            style = STYLE.get(phase, "")
            table.add_row(name, str(row["port"]), str(row["module"]), phase, elapsed, str(row["line"]), style=style)
        return table
