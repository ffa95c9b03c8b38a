"""Time CLI start-up: `tx2setup --help`, `matrix --json`, `inventory check` (wall, N runs).

Usage: .venv/bin/python benchmarks/cli_startup.py [--runs N] [--json FILE]
Prints a table (median / min / max seconds) and writes JSON. Goal: --help under 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = {
    "--help": ["--help"],
    "matrix --json": ["matrix", "--json"],
    "inventory check (5 boards)": ["inventory", "check", "-i", str(REPO / "inventory/sample/lab.ini"), "--json"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", type=Path, default=REPO / "out" / "cli_startup.json")
    args = ap.parse_args()
    exe = shutil.which("tx2setup", path=str(Path(sys.executable).parent)) or "tx2setup"
    results = {}
    for name, argv in CASES.items():
        subprocess.run([exe, *argv], capture_output=True, check=True)  # warm the page cache once
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([exe, *argv], capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        results[name] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "runs": args.runs,
        }
    print(f"{'command':32} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, r in results.items():
        print(f"{name:32} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['max_s']:7.3f}")
    record = {
        "benchmark": "cli_startup",
        "machine": {
            "node": platform.node(),
            "cpu_count": __import__("os").cpu_count(),
            "python": platform.python_version(),
        },
        "results": results,
        "goal": {"--help median_s <": 0.3, "met": results["--help"]["median_s"] < 0.3},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
