"""`tx2setup verify`: prove every board (checks + acceptance benchmark)."""

from __future__ import annotations

from pathlib import Path

import click

from tx2setup.commands.options import (
    DEFAULT_FORKS,
    DURATION,
    FORKS,
    JSON,
    LIMIT,
    REGRESSION_PCT,
    connection_options,
    inventory_option,
)


@click.command("verify")
@inventory_option()
@LIMIT
@connection_options
@click.option("--model", default="z2color", show_default=True, help="Model the benchmark runs.")
@click.option(
    "--model-card",
    type=click.Path(exists=True, dir_okay=False),
    help="Your model's card (docs/bench.md); carried to the boards with --model FILE, judged end to end.",
)
@click.option(
    "--backend",
    default="auto",
    show_default=True,
    help="Benchmark backend. auto runs every backend the board has and judges on the fastest correct one;"
    " a backend with wrong output fails the board (a broken stack).",
)
@DURATION
@click.option(
    "--source",
    default="synthetic",
    show_default=True,
    help="Camera source on the boards: synthetic[:FPS], video:PATH, gst:PIPELINE, v4l2[:/dev/videoN].",
)
@click.option("--target-fps", type=click.FloatRange(min=0, min_open=True), help="Override every board's target_fps.")
@click.option("--db", help="History database (default: the user's data dir).")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write JUnit XML here.")
@JSON
@click.option("--html", type=click.Path(dir_okay=False), help="Write the HTML report here.")
@REGRESSION_PCT
@FORKS
def verify(
    inventory: Path,
    limit: str | None,
    vault_password_file: str | None,
    ask_become_pass: bool,
    become_password_file: str | None,
    model: str,
    model_card: str | None,
    backend: str,
    duration: float,
    source: str,
    target_fps: float | None,
    db: str | None,
    junit: str | None,
    json_out: str | None,
    html: str | None,
    regression_pct: float,
    forks: int | None,
) -> int:
    """Run the testinfra checks and the acceptance benchmark on every board; exit 0 only if all pass."""
    import dataclasses
    import time

    from tx2setup import become, report
    from tx2setup.console import emit_json, json_to_stdout, print_table, progress_line
    from tx2setup.errors import AcceptanceFailed
    from tx2setup.results import History
    from tx2setup.verify import VerifyOptions
    from tx2setup.verify import verify as run_verify

    opts = VerifyOptions(
        str(inventory),
        limit,
        model,
        backend,
        duration,
        source=source,
        model_card=model_card,
        target_fps=target_fps,
        db=db,
        forks=forks or DEFAULT_FORKS,
        vault_password_file=vault_password_file,
    )

    lines: dict[str, list[str]] = {}

    def progress(board: str, what: str) -> None:
        progress_line(board, "verify", what)
        lines.setdefault(board, []).append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}")

    with become.password_file(ask_become_pass, become_password_file) as become_file:
        try:
            outcome = run_verify(dataclasses.replace(opts, become_password_file=become_file), progress)
        except KeyboardInterrupt:
            _say_interrupted(lines)
            raise  # cli.py: exit 130
    with History(db) as history:  # the report links to these per-board files
        report.write_board_files(history.path, outcome.run_id, outcome.results, lines)
    emit_json(json_out, {"run_id": outcome.run_id, "boards": [report.result_dict(r) for r in outcome.results]})
    if not json_to_stdout(json_out):
        print_table(
            f"verify run {outcome.run_id}",
            report.TABLE_COLUMNS,
            report.table_rows(outcome.results),
            caption="FPS: end-to-end (camera to steering) decides; inference-only is the network alone",
        )
        for r in outcome.results:
            if r.reason:
                click.echo(f"{r.board}: {r.verdict}: {r.reason}")
    if junit:
        report.write_text(junit, report.junit_xml(outcome.results))
    if html:
        _write_html(html, db, regression_pct)
    if not outcome.all_passed:
        failed = [r.board for r in outcome.results if r.verdict != "PASS"]
        raise AcceptanceFailed(f"{len(failed)} of {len(outcome.results)} board(s) did not pass: {', '.join(failed)}")
    return 0


def _say_interrupted(lines: dict[str, list[str]]) -> None:
    """One line per board that Ctrl-C cut short: the step it was in (its last progress line);
    boards with a verdict already are stored in the history and need no line."""
    for board, seen in lines.items():
        last = seen[-1].split(" ", 1)[-1]
        if last not in ("PASS", "FAIL", "ERROR"):  # the verdicts verify.py notes
            click.echo(f"{board}: interrupted during {last}: not judged; run `tx2setup verify` again", err=True)


def _write_html(html: str, db: str | None, regression_pct: float) -> None:
    from tx2setup import report
    from tx2setup.results import History, regressions

    with History(db) as history:
        everything = history.board_results()
        flagged = regressions(everything, regression_pct)
        links = report.board_links(report.latest_per_board(everything), history.path)
        report.write_text(html, report.render_html(everything, history.runs(), flagged, links=links))
