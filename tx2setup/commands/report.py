"""`tx2setup report`: the history of verify runs, regressions flagged."""

from __future__ import annotations

import click

from tx2setup.commands.options import JSON, REGRESSION_PCT


def _since(value: str | None) -> float | None:
    """'7d', '12h', '30m' or an ISO date/time -> a UNIX timestamp."""
    import re
    import time
    from datetime import datetime

    from tx2setup.errors import UserError

    if value is None:
        return None
    m = re.fullmatch(r"(\d+)([dhm])", value.strip())
    if m:
        return time.time() - int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise UserError(f"--since {value!r}: give a duration like 7d, 12h, 30m or a date like 2026-11-01") from None


@click.command("report")
@click.option("--db", help="History database (default: the user's data dir).")
@click.option("--board", help="Only this board.")
@click.option("--since", help="Only results since: 7d, 12h, 30m or an ISO date.")
@REGRESSION_PCT
@click.option("--html", type=click.Path(dir_okay=False), help="Write the HTML report (with plots) here.")
@JSON
@click.option("--junit", type=click.Path(dir_okay=False), help="Write each board's latest result as JUnit XML here.")
def report(
    db: str | None,
    board: str | None,
    since: str | None,
    regression_pct: float,
    html: str | None,
    json_out: str | None,
    junit: str | None,
) -> int:
    """Show verify history per board; FPS drops against the board's previous pass are flagged."""
    import time

    from tx2setup import report as rpt
    from tx2setup.console import emit_json, json_to_stdout, print_table
    from tx2setup.results import History, regressions

    start = _since(since)
    with History(db) as history:
        everything = history.board_results()
        runs = history.runs(since=start)
        db_path = history.path
    # Regressions are measured over each board's whole history (its previous pass may be
    # older than --since, or in a run --board hides), then the view is filtered.
    flagged_all = regressions(everything, regression_pct)
    results = [r for r in everything if (board is None or r.board == board) and r.finished_at >= (start or 0.0)]
    shown = {(r.run_id or 0, r.board) for r in results}
    flagged = {k: v for k, v in flagged_all.items() if k in shown}
    if json_out is not None:  # the dicts of 10,000 rows are seconds of work (benchmarks/report_bench.py)
        emit_json(
            json_out,
            {"results": [rpt.result_dict(r) for r in results], "regressions": [[*k, v] for k, v in flagged.items()]},
        )
    if not json_to_stdout(json_out):
        rows = []
        for r in results:
            drop = flagged.get((r.run_id or 0, r.board))
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.finished_at))
            rows.append((when, str(r.run_id), *rpt.table_rows([r])[0], f"REGRESSION -{drop:.1f}%" if drop else ""))
        print_table("verify history", ("finished", "run", *rpt.TABLE_COLUMNS, "flag"), rows)
        for (run_id, name), drop in sorted(flagged.items()):
            click.echo(f"regression: {name} in run {run_id}: end-to-end FPS down {drop:.1f}% from its previous pass")
    if html:
        links = rpt.board_links(rpt.latest_per_board(results), db_path)
        rpt.write_text(html, rpt.render_html(results, runs, flagged, links=links))
    if junit:
        rpt.write_text(junit, rpt.junit_xml(rpt.latest_per_board(results)))
    return 0
