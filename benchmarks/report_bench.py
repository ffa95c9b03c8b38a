"""Time `tx2setup report` on a history of 10,000 board rows (issue 13: it stays fast).

Builds a history database of RUNS runs x BOARDS boards (default 1,000 x 10 = 10,000 board
rows, 12 check rows each, benchmark JSON as verify stores it), then times, as a user runs
them (a fresh process each time): `report` (the table), `report --json`, `report --html F`,
`report --junit F` and `report --board B`. Also times opening the history alone.

Usage: .venv/bin/python benchmarks/report_bench.py [--runs N] [--boards N] [--repeat N] [--json FILE]
Prints a table (median / min / max seconds) and writes JSON. Goal: each under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tx2setup.results import BoardResult, CheckResult, History  # noqa: E402

GOAL_S = 5.0
CHECKS = tuple(
    f"test_{n}"
    for n in ("os", "l4t", "cuda", "cudnn", "tensorrt", "ros", "zed", "caffe", "torch", "opencv", "disk", "clock")
)


def build(db: Path, runs: int, boards: int) -> int:
    """A history of runs x boards results; returns the board rows written."""
    t0 = 1.7e9
    rows = 0
    with History(db) as h:
        for r in range(runs):
            run = h.start_run("lab.ini", "0.1.0", {"duration": 30})
            for b in range(boards):
                fps = 15.0 + (b % 7) + (r % 13) * 0.1 - (3.0 if r % 97 == 0 else 0.0)  # a few regressions
                h.record_board(
                    run,
                    BoardResult(
                        board=f"tx2-{b + 1}",
                        module="tx2",
                        l4t="32.7.4",
                        power_mode="MAXN",
                        checks=tuple(CheckResult(c, "passed") for c in CHECKS),
                        inference_fps=fps * 1.8,
                        e2e_fps=fps,
                        p99_ms=70.0,
                        target_fps=15.0,
                        verdict="PASS" if fps >= 15.0 else "FAIL",
                        margin_pct=(fps - 15.0) / 15.0 * 100,
                        conditions={"nvpmodel": "MAXN", "jetson_clocks": True, "temp_c": 41.0},
                        bench={"backend": "tensorrt", "frames": 900, "e2e_fps": fps, "p50_ms": 60.0},
                        finished_at=t0 + r * 600 + b,
                    ),
                )
                rows += 1
            h.finish_run(run)
    return rows


def timed(argv: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    subprocess.run(argv, env=env, capture_output=True, check=True)  # warm the page cache once
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": repeat}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--boards", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=REPO / "out" / "report_bench.json")
    args = ap.parse_args()
    exe = shutil.which("tx2setup", path=str(Path(sys.executable).parent)) or "tx2setup"
    with tempfile.TemporaryDirectory(prefix="tx2-report-bench-") as tmp:
        db = Path(tmp) / "history.db"
        t0 = time.perf_counter()
        rows = build(db, args.runs, args.boards)
        build_s = time.perf_counter() - t0
        env = {**os.environ, "COLUMNS": "200"}
        base = [exe, "report", "--db", str(db)]
        cases = {
            "open the history (python -c)": [
                sys.executable,
                "-c",
                f"from tx2setup.results import History; History({str(db)!r}).board_results()",
            ],
            "report (table)": base,
            "report --json": [*base, "--json"],
            "report --html F": [*base, "--html", str(Path(tmp) / "r.html")],
            "report --junit F": [*base, "--junit", str(Path(tmp) / "r.xml")],
            "report --board tx2-1": [*base, "--board", "tx2-1"],
        }
        results = {name: timed(argv, env, args.repeat) for name, argv in cases.items()}
    print(f"history: {rows} board rows ({args.runs} runs x {args.boards} boards), built in {build_s:.1f} s")
    print(f"{'command':32} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, r in results.items():
        print(f"{name:32} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['max_s']:7.3f}")
    worst = max(r["median_s"] for r in results.values())
    record = {
        "benchmark": "report_bench",
        "machine": {"node": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "board_rows": rows,
        "runs": args.runs,
        "boards": args.boards,
        "check_rows": rows * len(CHECKS),
        "build_s": build_s,
        "results": results,
        "goal": {"median_s <": GOAL_S, "met": worst < GOAL_S},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {args.json}")
    return 0 if worst < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
