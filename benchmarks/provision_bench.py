"""Provisioning benchmark on emulated boards: wall time by fleet size, no-op re-run, upstream bytes.

    sudo .venv/bin/python benchmarks/provision_bench.py [--sizes 1,2,4,8] [--forks 8] [--json out.json]

Conditions (issue 4): warm base (the sim's debootstrap base exists) and warm cache (the
artifact cache already holds every artifact, so the timed runs fetch nothing upstream).
For each size N, N fresh boards are brought up and provisioned once (timed), then for
the size given by --noop-size the no-op re-run is timed. Bytes: the cold-cache run's
`upstream_bytes` (what crossed the upstream link with the cache) against the bytes the
boards pulled from the cache server (what would cross it without the cache).
CPU: the host's busy CPU-seconds during each run (/proc/stat, so the emulated boards'
work is in it) and the controller's share (ansible-playbook, its forks and ssh clients:
this process's children). On one host every board shares the same cores, so
t(N) >= busy(N) / cores; the table prints that bound next to each ratio.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def busy_cpu_s() -> float:
    """CPU-seconds the whole host has spent busy since boot (every core)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,2,4,8")
    ap.add_argument("--forks", type=int, default=8)
    ap.add_argument("--noop-size", type=int, default=4)
    ap.add_argument("--module", default="tx2")
    ap.add_argument("--jetpack", default="4.6.4")
    ap.add_argument("--json", default="provision_bench.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from tx2setup import cache, provision
    from tx2setup.sim import BoardSpec, Fleet

    work = Path(tempfile.mkdtemp(prefix="tx2setup-provbench-"))
    os.environ.setdefault(cache.CACHE_ENV, str(work / "cache"))
    fleet = Fleet(work / "sim")
    rows: list[dict[str, Any]] = []
    out: dict[str, Any] = {"machine": platform.node(), "cpus": os.cpu_count(), "forks": args.forks, "runs": rows}
    try:
        # cold cache: one board, fetches every artifact once
        fleet.up([BoardSpec(args.module, args.jetpack, "warm-0")])
        inv = fleet.write_inventory(work / "warm.ini", names=["warm-0"])
        cold = provision.run(inv, forks=args.forks)
        out["cold"] = {"elapsed": cold.elapsed, "upstream_bytes": cold.upstream_bytes, "ok": cold.ok}
        lock = cache.lock_path_for(inv)
        fleet.destroy_board("warm-0")
        for n in sizes:
            names = [f"b{n}-{i}" for i in range(n)]
            fleet.up([BoardSpec(args.module, args.jetpack, name) for name in names])
            inv = fleet.write_inventory(work / f"n{n}.ini", names=names)
            (work / f"tx2setup-n{n}.lock").write_text(lock.read_text())
            cache.lock_path_for(inv).write_text(lock.read_text())
            t0, b0, c0 = time.monotonic(), busy_cpu_s(), children_cpu_s()
            res = provision.run(inv, forks=args.forks)
            wall = time.monotonic() - t0
            row: dict[str, Any] = {
                "boards": n,
                "wall_s": round(wall, 1),
                "busy_cpu_s": round(busy_cpu_s() - b0, 1),
                "controller_cpu_s": round(children_cpu_s() - c0, 1),
                "ok": res.ok,
                "upstream_bytes": res.upstream_bytes,
                "served_bytes": res.served_bytes,
            }
            if n == args.noop_size:
                t0, b0, c0 = time.monotonic(), busy_cpu_s(), children_cpu_s()
                again = provision.run(inv, forks=args.forks)
                row["noop_s"] = round(time.monotonic() - t0, 1)
                row["noop_busy_cpu_s"] = round(busy_cpu_s() - b0, 1)
                row["noop_controller_cpu_s"] = round(children_cpu_s() - c0, 1)
                row["noop_changed"] = again.changed
            rows.append(row)
            for name in names:
                fleet.destroy_board(name)
    finally:
        fleet.down(destroy=True)
    t1 = next((r["wall_s"] for r in rows if r["boards"] == 1), None)
    cores = os.cpu_count() or 1
    print(
        f"{'boards':>6} {'wall s':>8} {'t(N)/t(1)':>9} {'CPU bound':>9} {'busy cpu-s':>10} {'ctrl cpu-s':>10} "
        f"{'upstream B':>11} {'served B':>11} {'no-op s':>8}"
    )
    for r in rows:
        ratio = f"{r['wall_s'] / t1:.2f}" if t1 else "-"
        bound = f"{r['busy_cpu_s'] / cores / t1:.2f}" if t1 else "-"  # t(N) >= busy/cores
        print(
            f"{r['boards']:>6} {r['wall_s']:>8} {ratio:>9} {bound:>9} {r['busy_cpu_s']:>10} "
            f"{r['controller_cpu_s']:>10} {r['upstream_bytes']:>11} {r['served_bytes']:>11} {r.get('noop_s', ''):>8}"
        )
    print(f"cold cache: {out['cold']['upstream_bytes']} bytes fetched upstream once")
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
