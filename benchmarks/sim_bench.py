"""Emulated-board benchmark: base build from cold, boot time for 1/4/8 boards, RSS per idle board.

    sudo .venv/bin/python benchmarks/sim_bench.py [--sizes 1,4,8] [--skip-cold] [--json out/sim_bench.json]

Cold base: a fresh TX2SETUP_CACHE (empty debootstrap package cache too), so the time
includes downloading bookworm from the host's mirror; the upstream stand-ins (apt repo,
ZED, Caffe) are built next and timed apart. --skip-cold reuses the normal cache instead.
Boot: for each size N, N new boards are created and booted in parallel by one `up`, then
stopped and booted again (restart, disks kept). Each board's own time, from its launch to
its SSH banner, is recorded (Fleet.boot_seconds); the 2 s goal is judged on the worst
board, and the whole `up` is reported beside it.
RSS: after the largest fleet has settled (`systemctl is-system-running --wait` on each),
the RSS and PSS of every process of each board (its unshare/nspawn supervisors included)
are summed from /proc/<pid>/smaps_rollup. PSS splits shared pages among the processes that
share them, so it is what one more board really costs; RSS counts shared libraries in
every board (the goal is judged on RSS). The unshare + nspawn supervisors are also
reported on their own. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

GOALS = {"base_s": 90.0, "board_s": 2.0, "idle_mb": 40.0}


def board_memory_kb(pid: int) -> dict[str, int]:
    """RSS and PSS of a board's processes, the unshare/nspawn supervisors apart from the board's own."""
    from tx2setup.sim.procs import children_map, descendants, rss_kb

    supervisors = {pid, *children_map().get(pid, [])}  # unshare and the nspawn it forked
    out = {"rss": 0, "pss": 0, "sup_rss": 0, "sup_pss": 0}
    for p in descendants(pid):
        r, s = rss_kb(p)
        out["rss"], out["pss"] = out["rss"] + r, out["pss"] + s
        if p in supervisors:
            out["sup_rss"], out["sup_pss"] = out["sup_rss"] + r, out["sup_pss"] + s
    return out


def _mean_mb(rows: list[dict[str, int]], key: str) -> float:
    return round(statistics.mean(r[key] for r in rows) / 1024, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="1,4,8")
    ap.add_argument("--module", default="tx2")
    ap.add_argument("--jetpack", default="4.6.4")
    ap.add_argument("--skip-cold", action="store_true", help="reuse the normal cache (no cold base build)")
    ap.add_argument("--json", default="out/sim_bench.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    work = Path(tempfile.mkdtemp(prefix="tx2setup-simbench-"))
    if not args.skip_cold:
        os.environ["TX2SETUP_CACHE"] = str(work / "cache")
    from tx2setup.matrix import load as load_matrix
    from tx2setup.sim import BoardSpec, Fleet, base, upstream
    from tx2setup.sim.paths import Layout

    result: dict[str, Any] = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
        "module": args.module,
        "jetpack": args.jetpack,
        "cold": not args.skip_cold,
        "goals": GOALS,
    }
    layout = Layout.default(work / "fleet-probe")
    t0 = time.monotonic()
    stamp = base.ensure_base(layout)
    result["base_s"] = round(time.monotonic() - t0, 1)
    result["base_mb"] = round(
        int(
            subprocess.run(
                ["du", "-sk", str(layout.rootfs)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        / 1024
    )
    result["base_recipe"] = stamp["recipe"]
    t0 = time.monotonic()
    upstream.ensure(layout, load_matrix())
    result["upstream_s"] = round(time.monotonic() - t0, 1)

    boots: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    for n in sizes:
        fleet = Fleet(work / f"fleet-{n}")
        specs = [BoardSpec(args.module, args.jetpack) for _ in range(n)]
        try:
            t0 = time.monotonic()
            boards = fleet.up(specs)
            first = time.monotonic() - t0
            first_each = dict(fleet.boot_seconds)
            for b in boards:
                fleet.stop_board(b.name)
            t0 = time.monotonic()
            fleet.up(None)
            restart = time.monotonic() - t0
            restart_each = dict(fleet.boot_seconds)
            boots.append(
                {
                    "boards": n,
                    "first_up_s": round(first, 2),
                    "restart_s": round(restart, 2),
                    # each board's own time from its launch to its SSH banner (the goal is per board)
                    "first_board_s": first_each,
                    "restart_board_s": restart_each,
                    "first_worst_s": max(first_each.values()),
                    "restart_worst_s": max(restart_each.values()),
                }
            )
            if n == max(sizes):
                for b in boards:  # settle: every unit started, nothing left booting
                    subprocess.run(
                        b.ssh_argv("systemctl is-system-running --wait"), capture_output=True, timeout=120, check=False
                    )
                per = [board_memory_kb(s.pid) for s in fleet.status() if s.pid is not None]
                memory = {
                    "boards": len(per),
                    "rss_mb_mean": _mean_mb(per, "rss"),
                    "rss_mb_max": round(max(r["rss"] for r in per) / 1024, 1),
                    "pss_mb_mean": _mean_mb(per, "pss"),
                    "supervisor_rss_mb_mean": _mean_mb(per, "sup_rss"),
                    "supervisor_pss_mb_mean": _mean_mb(per, "sup_pss"),
                    "upper_mb_mean": round(
                        statistics.mean(
                            int(
                                subprocess.run(
                                    ["du", "-sk", str(b.board_dir / "upper")],
                                    capture_output=True,
                                    text=True,
                                    check=True,
                                ).stdout.split()[0]
                            )
                            for b in boards
                        )
                        / 1024,
                        1,
                    ),
                }
        finally:
            fleet.down(destroy=True)
    result["boot"] = boots
    result["idle_memory"] = memory
    if not args.skip_cold:
        shutil.rmtree(work / "cache", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)

    print(f"{'measure':<44} {'value':>10}  goal")
    print(
        f"{'base build (' + ('cold' if result['cold'] else 'warm cache') + ')':<44} {result['base_s']:>9}s  "
        f"<= {GOALS['base_s']:g} s"
    )
    print(f"{'base size':<44} {result['base_mb']:>8}MB")
    print(f"{'upstream stand-ins build':<44} {result['upstream_s']:>9}s")
    for row in boots:
        size = str(row["boards"])
        print(f"{'first up, ' + size + ' board(s), whole up (create + boot)':<44} {row['first_up_s']:>9}s")
        goal = f"<= {GOALS['board_s']:g} s"
        print(f"{'first up, ' + size + ' board(s), worst board':<44} {row['first_worst_s']:>9}s  {goal}")
        print(f"{'restart, ' + size + ' board(s), whole up':<44} {row['restart_s']:>9}s")
        print(f"{'restart, ' + size + ' board(s), worst board':<44} {row['restart_worst_s']:>9}s  {goal}")
    if memory:
        print(
            f"{'idle board RSS (mean of ' + str(memory['boards']) + ', supervisors in)':<44} "
            f"{memory['rss_mb_mean']:>8}MB  <= {GOALS['idle_mb']:g} MB"
        )
        print(f"{'idle board RSS (worst board)':<44} {memory['rss_mb_max']:>8}MB")
        print(f"{'  of which unshare + nspawn supervisors':<44} {memory['supervisor_rss_mb_mean']:>8}MB")
        print(f"{'idle board PSS (mean, shared pages split)':<44} {memory['pss_mb_mean']:>8}MB")
        print(f"{'  of which unshare + nspawn supervisors':<44} {memory['supervisor_pss_mb_mean']:>8}MB")
        print(f"{'board upper dir after boot (mean)':<44} {memory['upper_mb_mean']:>8}MB")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
