"""The live progress view: a redrawn table on a terminal, one line per phase change elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from tx2setup.flash.progress import ProgressView
from tx2setup.flash.runner import Event, Target

TARGETS = [Target("car-tx2-01", "1-2.1", "tx2"), Target("car-tx2-02", "1-2.2", "tx2")]
EVENTS = [
    Event("car-tx2-01", phase="building the image", line="Making system.img..."),
    Event("car-tx2-01", phase=None, line="	populating rootfs"),
    Event("car-tx2-02", phase="writing", line="Writing partition APP ..."),
    Event("car-tx2-01", status="flashed"),
    Event("car-tx2-02", status="timed out"),
    Event("someone-else", phase="writing"),
]


def test_plain_output_is_one_line_per_phase_change() -> None:
    out = io.StringIO()
    with ProgressView(TARGETS, Console(file=out, force_terminal=False, width=100)) as view:
        for e in EVENTS:
            view(e)
    assert out.getvalue().splitlines() == [
        "car-tx2-01: building the image",
        "car-tx2-02: writing",
        "car-tx2-01: flashed",
        "car-tx2-02: timed out",
    ]


def test_terminal_output_is_a_table_with_the_final_state() -> None:
    out = io.StringIO()
    with ProgressView(TARGETS, Console(file=out, force_terminal=True, width=140, color_system=None)) as view:
        for e in EVENTS:
            view(e)
    final = out.getvalue().rsplit("tx2setup flash", 1)[-1]  # the last redraw
    row1 = next(ln for ln in final.splitlines() if "car-tx2-01" in ln)
    row2 = next(ln for ln in final.splitlines() if "car-tx2-02" in ln)
    assert "flashed" in row1 and "populating rootfs" in row1
    assert "timed out" in row2 and "Writing partition APP" in row2
    assert "someone-else" not in out.getvalue()


def test_a_failure_the_tool_printed_is_not_printed_twice() -> None:
    """The tool's "Flash failure" line sets the phase "failed"; the final status "failed" is no news."""
    out = io.StringIO()
    with ProgressView(TARGETS[:1], Console(file=out, force_terminal=False, width=100)) as view:
        view(Event("car-tx2-01", phase="writing", line="Writing partition APP ..."))
        view(Event("car-tx2-01", phase="failed", line="Flash failure"))
        view(Event("car-tx2-01", status="failed"))
        view(Event("car-tx2-01", phase="waiting for SSH"))
    assert out.getvalue().splitlines() == ["car-tx2-01: writing", "car-tx2-01: failed", "car-tx2-01: waiting for SSH"]
