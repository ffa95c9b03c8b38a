"""Reports (issue 13): HTML and JUnit output escape or strip whatever a board, a model or
an error message can carry (markup, CDATA ends, control characters, terminal escapes),
and stay well-formed; terminal tables and progress lines show control characters as
visible escapes."""

from __future__ import annotations

import html.parser
import io
import xml.etree.ElementTree as ET

import pytest

from tx2setup import console, report
from tx2setup.results import BoardResult, CheckResult, Run

EVIL = "x<script>alert(1)</script>\"'&]]><!--\x00\x07\x1b[2J\x1b]0;title\x07\x9b31m\ufffe\udc80"


def hostile_result() -> BoardResult:
    return BoardResult(
        board="tx2-1",
        module="tx2" + EVIL,
        l4t=EVIL,
        power_mode=EVIL,
        checks=(CheckResult("test_" + EVIL, "failed", EVIL), CheckResult("test_ok", "passed")),
        inference_fps=20.0,
        e2e_fps=10.0,
        p99_ms=90.0,
        target_fps=15.0,
        verdict="FAIL",
        margin_pct=-33.3,
        reason=EVIL,
        conditions={"nvpmodel": EVIL},
        bench={"model": EVIL, "backend": EVIL, "error": EVIL},
        finished_at=1.7e9,
        run_id=1,
    )


def test_junit_is_well_formed_and_keeps_the_text() -> None:
    xml = report.junit_xml([hostile_result()])
    root = ET.fromstring(xml)  # raises on a control character or a broken CDATA
    text = ET.tostring(root, encoding="unicode")
    assert "<script>" not in text.replace("&lt;script&gt;", "")
    failures = root.findall(".//failure")
    assert failures and any("alert(1)" in (f.get("message", "") + (f.text or "")) for f in failures)


class _Strict(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"


def test_html_escapes_markup_and_drops_control_characters() -> None:
    runs = [Run(1, 1.7e9, 1.7e9 + 60, "complete", "lab" + EVIL, "0.1.0", {"model": EVIL})]
    page = report.render_html([hostile_result()], runs, {(1, "tx2-1"): 12.5}, links={})
    assert "<script>alert" not in page
    bad = [c for c in page if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, sorted({hex(ord(c)) for c in bad})
    assert "\ufffe" not in page and "\udc80" not in page
    parser = _Strict()
    parser.feed(page)
    baseline = _Strict()
    baseline.feed(report.render_html([], runs[:0], {}, links={}))
    assert parser.scripts == baseline.scripts  # no script element came from the data
    assert "alert(1)" in page  # the text is shown, escaped


@pytest.mark.parametrize("terminal", [False, True])
def test_tables_and_progress_lines_show_escapes_not_control_characters(
    terminal: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(console, "is_terminal", lambda: terminal)
    console.print_table("t", ("board", "reason"), [("tx2-1", EVIL), ("[bold]b[/]", None)])
    out = capsys.readouterr().out
    assert "\x1b[2J" not in out and "\x9b" not in out and "\x00" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "[bold]b[/]" in out
    stream = io.StringIO()
    console.progress_line("tx2-1", "provision", "failed: " + EVIL + "\nsecond line", stream=stream)
    line = stream.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line and " second line" in line
