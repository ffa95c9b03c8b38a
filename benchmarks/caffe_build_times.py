"""Caffe role timings from a provision run: per board, the role's tasks from their TASK lines.

    .venv/bin/python benchmarks/caffe_build_times.py RUN_DIR [RUN_DIR ...] [--json out.json]

RUN_DIR is a `tx2setup provision` run directory (`<cache>/runs/provision-*`); each board's
log under logs/ stamps every TASK line with its start time, so a task lasts until the next
TASK line. Prints, per board: the build dependencies (apt), the build (`make -j<nproc>`),
the rest of the role, and the role's total. A board that found its build installed shows
no build task (0).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from datetime import datetime
from pathlib import Path

TASK_LINE = re.compile(r"^TASK \[(?P<name>[^\]]+)\] (?P<at>\S+)$", re.M)
DEPS = "caffe : Install the build dependencies"
BUILD = "caffe : Build Caffe, its tools and pycaffe"


def task_times(log: str) -> dict[str, float]:
    marks = [(m["name"], datetime.fromisoformat(m["at"])) for m in TASK_LINE.finditer(log)]
    return {name: (nxt - at).total_seconds() for (name, at), (_, nxt) in itertools.pairwise(marks)}


def board_row(log: Path) -> dict[str, float | str]:
    times = task_times(log.read_text())
    role = sum(s for name, s in times.items() if name.startswith("caffe : "))
    deps, build = times.get(DEPS, 0.0), times.get(BUILD, 0.0)
    return {"board": log.stem, "deps_s": deps, "build_s": build, "rest_s": role - deps - build, "role_s": role}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [dict(board_row(log), run=run.name) for run in args.run_dirs for log in sorted((run / "logs").glob("*.log"))]
    print(f"{'run':40} {'board':14} {'deps s':>8} {'build s':>8} {'rest s':>7} {'role s':>8}")
    for r in rows:
        figures = f"{r['deps_s']:8.1f} {r['build_s']:8.1f} {r['rest_s']:7.1f} {r['role_s']:8.1f}"
        print(f"{r['run']!s:40} {r['board']!s:14} {figures}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
