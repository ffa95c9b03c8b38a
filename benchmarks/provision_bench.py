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

Fleet scale (issue 14), `--scale`: for each size N, N fresh boards provisioned once through the
run's apt-cacher-ng, whose cache is emptied first (so every size starts cold), then a no-op
re-run. Upstream package bytes come from the proxy's own transfer log (`apt_proxy` in the run
record): `fetched_bytes` crossed the upstream link, `served_bytes` is what the boards pulled
and would have crossed it without the proxy. pip's wheels likewise from the run record's
`wheelhouse` (the bytes `pip download` added to an emptied wheelhouse, and the cache server's
count of what the boards pulled); `upstream_total_bytes` = artifacts + debs + wheels.
Controller CPU is a cpuacct cgroup holding this process for the length of each run: tx2setup,
ansible-playbook and its forks, ssh clients and their ControlPersist masters (they outlive the
run and leave its process tree, not its cgroup), the artifact server and apt-cacher-ng. The
emulated boards were started before the cgroup was entered, so their sshd, Python modules, apt
and dpkg are outside it. Peak RSS: the cgroup's processes' VmRSS summed, sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def busy_cpu_s() -> float:
    """CPU-seconds the whole host has spent busy since boot (every core)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class ControllerCgroup:
    """cgroup v1 cpuacct accounting of everything this process starts while inside it."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, name: str) -> None:
        self.path = self.ROOT / name
        self.path.mkdir(exist_ok=True)
        self.peak_rss = 0
        self._stop = threading.Event()

    def cpu_s(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def _rss(self) -> int:
        total = 0
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # gone between the listing and the read
            total += next((int(ln.split()[1]) * 1024 for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self._rss())

    def __enter__(self) -> ControllerCgroup:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))
        self.peak_rss = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))  # back out; children stay in


def measured_run(cg: ControllerCgroup, inv: Path, forks: int, **kw: Any) -> dict[str, Any]:
    """One provision run inside the controller's cgroup: wall, controller CPU, peak RSS, bytes."""
    from tx2setup import provision

    c0, t0 = cg.cpu_s(), time.monotonic()
    with cg:
        res = provision.run(inv, forks=forks, **kw)
    wall = time.monotonic() - t0
    record = json.loads(Path(res.record).read_text())
    apt = record.get("apt_proxy") or {}
    wheels = record.get("wheelhouse") or {}
    return {
        "wall_s": round(wall, 1),
        # ssh ControlPersist masters spend a little more after the run; read at once, so it is
        # a slight undercount, the same for every run
        "controller_cpu_s": round(cg.cpu_s() - c0, 2),
        "controller_peak_rss_mb": round(cg.peak_rss / 2**20, 1),
        "ok": res.ok,
        "changed": res.changed,
        "artifact_upstream_bytes": res.upstream_bytes,
        "artifact_served_bytes": res.served_bytes,
        "apt_upstream_bytes": apt.get("fetched_bytes"),
        "apt_served_bytes": apt.get("served_bytes"),
        "apt_hits": apt.get("hits"),
        "apt_misses": apt.get("misses"),
        # pip's wheels (tx2setup/wheelhouse.py): fetched once per (Python, platform) for the fleet
        "wheel_upstream_bytes": wheels.get("fetched_bytes"),
        "wheel_served_bytes": wheels.get("served_bytes"),
        "wheel_files": wheels.get("files"),
        # every byte the boards install: artifacts + debs + wheels
        "upstream_total_bytes": res.upstream_bytes
        + (apt.get("fetched_bytes") or 0)
        + (wheels.get("fetched_bytes") or 0),
        "warnings": record.get("warnings", []),
    }


def scale(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Fresh and no-op runs of N boards through the proxy; see the module docstring."""
    import shutil

    from tx2setup import aptproxy, wheelhouse
    from tx2setup.sim import BoardSpec, Fleet

    os.environ[aptproxy.DIR_ENV] = str(work / "acng")
    os.environ[wheelhouse.DIR_ENV] = str(work / "wheelhouse")
    fleet = Fleet(work / "sim")
    cg = ControllerCgroup(f"tx2setup-bench-{os.getpid()}")
    rows: list[dict[str, Any]] = []
    extra = {"jetson_base_packages": args.packages.split(",")} if args.packages else None
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            names = [f"s{n}-{i}" for i in range(n)]
            fleet.up([BoardSpec(args.module, args.jetpack, name) for name in names])
            inv = fleet.write_inventory(work / f"s{n}.ini", names=names)
            shutil.rmtree(work / "acng", ignore_errors=True)  # every size starts with a cold apt cache
            shutil.rmtree(work / "wheelhouse", ignore_errors=True)  # and an empty wheelhouse
            fresh = measured_run(cg, inv, args.forks, tags=args.tags, extravars=extra)
            noop = measured_run(cg, inv, args.forks, tags=args.tags, extravars=extra)
            rows.append({"boards": n, "fresh": fresh, "noop": noop})
            print(json.dumps(rows[-1]), flush=True)
            for name in names:
                fleet.destroy_board(name)
    finally:
        fleet.down(destroy=True)
        with contextlib.suppress(OSError):  # still busy while ssh ControlPersist masters linger
            cg.path.rmdir()
    return {"tags": args.tags, "packages": args.packages, "rows": rows}


# Mitogen for Ansible (https://pypi.org/project/mitogen/): its strategy plugins replace each
# task's fork + SSH + module upload by calls into a Python interpreter kept on each board.
# Enabled as its documentation says (https://mitogen.networkgenomics.com/ansible_detailed.html,
# "Installation": strategy_plugins = .../ansible_mitogen/plugins/strategy and strategy =
# mitogen_linear; the 0.3.54 wheel has ansible_mitogen/plugins/strategy/mitogen_linear.py).
MITOGEN_STRATEGY = "mitogen_linear"
# ansible-core's internal_poll_interval ([defaults], no environment variable): how long the
# strategy sleeps between checks for task results, 0.001 s by default; "Higher values are more
# suitable for Ansible usage in automation scenarios, when UI responsiveness is not required but
# CPU usage might be a concern" (ansible-core 2.16 lib/ansible/config/base.yml,
# DEFAULT_INTERNAL_POLL_INTERVAL). Variant "poll:S" runs with S seconds.
ANSIBLE_CFG = Path(__file__).resolve().parents[1] / "ansible.cfg"


@contextlib.contextmanager
def poll_interval(seconds: float | None) -> Any:
    """ansible.cfg with internal_poll_interval = seconds for the block (provision.py points
    ANSIBLE_CONFIG at this file, so no environment variable can carry it), then as it was."""
    if seconds is None:
        yield
        return
    before = ANSIBLE_CFG.read_text()
    lines = [ln for ln in before.splitlines() if not ln.startswith("internal_poll_interval")]
    at = lines.index("[defaults]") + 1
    ANSIBLE_CFG.write_text("\n".join([*lines[:at], f"internal_poll_interval = {seconds}", *lines[at:]]) + "\n")
    try:
        yield
    finally:
        ANSIBLE_CFG.write_text(before)


def variant_env(name: str, mitogen_dir: str | None) -> dict[str, str]:
    """The environment a no-op variant runs under (ansible-runner passes ours on to ansible-playbook)."""
    if name in ("baseline", "gate-off") or name.startswith("poll:"):
        return {}
    if name == "mitogen":
        if not mitogen_dir:
            raise SystemExit("--variants mitogen needs --mitogen-dir (an unpacked mitogen wheel)")
        plugins = Path(mitogen_dir) / "ansible_mitogen" / "plugins" / "strategy"
        return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": MITOGEN_STRATEGY}
    raise SystemExit(f"unknown variant {name!r} (baseline, gate-off, mitogen, poll:SECONDS)")


def noop_variants(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """N boards converged once (the full play, or --tags), then no-op re-runs under each variant,
    alternating, --repeats times: controller cpu-s per board, from the cgroup."""
    from tx2setup import aptproxy
    from tx2setup.sim import BoardSpec, Fleet

    os.environ[aptproxy.DIR_ENV] = str(work / "acng")
    fleet = Fleet(work / "sim")
    cg = ControllerCgroup(f"tx2setup-bench-{os.getpid()}")
    n = int(args.sizes.split(",")[0])
    names = [f"v{n}-{i}" for i in range(n)]
    out: dict[str, Any] = {"boards": n, "tags": args.tags, "runs": []}
    try:
        fleet.up([BoardSpec(args.module, args.jetpack, name) for name in names])
        inv = fleet.write_inventory(work / "v.ini", names=names)
        out["fresh"] = measured_run(cg, inv, args.forks, tags=args.tags)
        print(json.dumps({"fresh": out["fresh"]}), flush=True)
        for rep in range(args.repeats):
            for name in args.variants.split(","):
                env = variant_env(name, args.mitogen_dir)
                saved = {k: os.environ.get(k) for k in env}
                os.environ.update(env)
                poll = float(name.split(":", 1)[1]) if name.startswith("poll:") else None
                # gate-off: every role's tasks run, as before the converged probes (`provision --full`)
                extra = {"tx2setup_converge_gate": False} if name == "gate-off" else None
                try:
                    with poll_interval(poll):
                        row = {"variant": name, "repeat": rep} | measured_run(
                            cg, inv, args.forks, tags=args.tags, extravars=extra
                        )
                finally:
                    for k, v in saved.items():
                        if v is None:
                            del os.environ[k]
                        else:
                            os.environ[k] = v
                row["controller_cpu_s_per_board"] = round(row["controller_cpu_s"] / n, 2)
                out["runs"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        fleet.down(destroy=True)
        with contextlib.suppress(OSError):
            cg.path.rmdir()
    return out


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
    ap.add_argument("--scale", action="store_true", help="issue 14: apt upstream bytes and controller CPU per board")
    ap.add_argument("--tags", default=None, help="--scale: only these roles (e.g. jetson_base)")
    ap.add_argument("--packages", default="", help="--scale: extra jetson_base_packages (comma-separated)")
    ap.add_argument(
        "--variants", default="", help="no-op re-runs under each (baseline, gate-off, mitogen, poll:S) after a converge"
    )
    ap.add_argument("--repeats", type=int, default=2, help="--variants: runs of each variant, alternating")
    ap.add_argument("--mitogen-dir", default=None, help="--variants mitogen: an unpacked mitogen wheel")
    args = ap.parse_args()
    if args.variants:
        work = Path(tempfile.mkdtemp(prefix="tx2setup-noopbench-"))
        result = {"machine": platform.node(), "cpus": os.cpu_count(), "forks": args.forks} | noop_variants(args, work)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.scale:
        work = Path(tempfile.mkdtemp(prefix="tx2setup-scalebench-"))
        result = {"machine": platform.node(), "cpus": os.cpu_count(), "forks": args.forks} | scale(args, work)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0

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
