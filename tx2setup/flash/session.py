"""One `tx2setup flash` run: every refusal first, then BSP -> user -> flash -> network.

`prepare()` checks everything that can be checked before touching anything and raises
(one line, non-zero exit) when the run cannot go ahead:

- not root; `--then-provision` without a provisioning module;
- the inventory does not load or resolve (fleet / plan errors);
- no board in recovery mode; a board's product ID does not fit its inventory module;
  no detected board is assigned to an inventory host;
- the boards plan different L4T releases; a mass flash mixes hardware, or would also
  flash a board that no inventory host claims;
- the BSP is missing or holds another L4T (or its tarballs fail their sha256);
- too little free disk; the NVIDIA license is not accepted; no user or password.

Only `execute()` changes anything. Checks that need a root shell, a prompt or the disk
are hooks (`Hooks`), so tests can run as root and still exercise each refusal.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup import fleet, plan
from tx2setup.errors import EnvironmentProblem, NotRootError, RemoteError, UserError
from tx2setup.flash import bsp as bsp_mod
from tx2setup.flash import command_lines, credentials, network, runner
from tx2setup.flash.detect import DEFAULT_SYSFS, RecoveryDevice, product_map, scan
from tx2setup.flash.match import AskFn, Assignment, MatchResult, match
from tx2setup.matrix import Matrix
from tx2setup.matrix import load as load_matrix

GIB = 1 << 30
# flash.sh builds a raw system.img of the rootfs partition size (28 GiB on a TX2) plus a
# sparse copy; the initrd/massflash path keeps a package of images next to it.
DEFAULT_MIN_FREE_GIB = 32
# extracting the tarballs: the sample rootfs grows about 3x; the driver package less
EXTRACT_FACTOR = 4
HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _is_root() -> bool:
    return os.geteuid() == 0


def provision_available() -> bool:
    return importlib.util.find_spec("tx2setup.provision") is not None


def run_provision(inventory: Path, names: Sequence[str]) -> Any:
    """The `--then-provision` seam: tx2setup.provision.run(inventory_path, limit=...).

    Provisioning reports board failures in its result (`.ok`, `.bad_hosts`), not as
    exceptions; a failed result becomes RemoteError here, like a failed flash.
    """
    module = importlib.import_module("tx2setup.provision")
    run = getattr(module, "run", None)
    if run is None:
        raise EnvironmentProblem("tx2setup.provision has no run(inventory_path, limit=...): provision separately")
    result = run(str(inventory), limit=",".join(names))
    if getattr(result, "ok", True) is False:
        bad = ", ".join(str(h) for h in getattr(result, "bad_hosts", []) or []) or "see its output"
        raise RemoteError(f"flashed, but provisioning failed on: {bad}")
    return result


@dataclass
class FlashOptions:
    inventory: Path
    limit: str | None = None
    sysfs_root: Path = DEFAULT_SYSFS
    bsp: Path | None = None
    driver: bsp_mod.LocalArtifact | None = None
    rootfs: bsp_mod.LocalArtifact | None = None
    one_by_one: bool = False
    timeout_s: float = 3600.0
    log_dir: Path | None = None
    wait: bool = True
    wait_timeout_s: float = 900.0
    then_provision: bool = False
    min_free_bytes: int = DEFAULT_MIN_FREE_GIB * GIB
    vault_password_file: str | None = None
    accept_license: bool = False


@dataclass
class Hooks:
    is_root: Callable[[], bool] = _is_root
    disk_free: Callable[[Path], int] = bsp_mod.free_bytes
    provision_available: Callable[[], bool] = provision_available
    ask_board: AskFn | None = None  # interactive matching; None when not interactive
    ask: credentials.AskFn | None = None  # user / password prompts
    on_event: runner.EventFn = field(default=lambda _e: None)
    env: Mapping[str, str] | None = None  # environment for the BSP tools
    wait_poll_s: float = 2.0
    probe: Callable[[str, int], bool] = network.tcp_open
    arp_table: Path = network.ARP_TABLE


@dataclass
class Prepared:
    options: FlashOptions
    assignments: list[Assignment]
    mass: bool
    l4t: str
    jetpack: str
    bsp: Path
    build: bool  # build the BSP cache from the tarballs first
    user: credentials.DefaultUser
    log_dir: Path
    matrix: Matrix

    @property
    def targets(self) -> list[runner.Target]:
        return [runner.Target(a.board.name, a.device.port, a.board.module) for a in self.assignments]


@dataclass
class Summary:
    results: list[runner.BoardResult]
    log_dir: Path
    mode: str
    bsp: Path
    l4t: str
    user: str
    password_generated: bool
    inventory: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def flashed(self) -> list[str]:
        return [r.board for r in self.results if r.ok]

    def next_step(self) -> str | None:
        if not self.flashed:
            return None
        return f"tx2setup provision -i {self.inventory} --limit {','.join(self.flashed)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "l4t": self.l4t,
            "bsp": str(self.bsp),
            "user": self.user,
            "log_dir": str(self.log_dir),
            "ok": self.ok,
            "boards": [
                {
                    "board": r.board,
                    "port": r.port,
                    "module": r.module,
                    "status": r.status,
                    "duration_s": round(r.duration_s, 1),
                    "log": str(r.log),
                    "detail": r.detail,
                    "network": r.network,
                }
                for r in self.results
            ],
            "next": self.next_step(),
        }


def load_boards(inventory: Path, limit: str | None) -> list[tuple[fleet.Board, plan.BoardPlan]]:
    inv = fleet.load(inventory, limit=limit)
    plans = {p.name: p for p in plan.resolve(inv)}
    return [(b, plans[b.name]) for b in inv.boards]


def survey(
    sysfs_root: Path, inventory: Path | None = None, limit: str | None = None, ask_board: AskFn | None = None
) -> tuple[list[RecoveryDevice], MatchResult | None]:
    """What `flash --list` shows: boards in recovery mode and, with an inventory, who they are."""
    devices = scan(sysfs_root)
    if inventory is None:
        return devices, None
    return devices, match(devices, load_boards(inventory, limit), ask_board, str(inventory))


def _default_log_dir() -> Path:
    return bsp_mod.cache_root() / "logs" / "flash" / time.strftime("%Y%m%d-%H%M%S")


def prepare(opts: FlashOptions, hooks: Hooks | None = None) -> Prepared:
    """Every refusal, in the order a person would want to hear them; changes nothing."""
    hooks = hooks or Hooks()
    inv_label = str(opts.inventory)
    if not hooks.is_root():
        raise NotRootError("tx2setup flash must run as root (the BSP's flash tools need it): use sudo")
    if opts.then_provision and not hooks.provision_available():
        raise EnvironmentProblem(
            "--then-provision: provisioning (tx2setup.provision) is not available in this install; "
            "flash without it and run `tx2setup provision` afterwards"
        )
    matrix = load_matrix()
    boards = load_boards(opts.inventory, opts.limit)

    devices = scan(opts.sysfs_root, matrix)
    if not devices:
        ids = ", ".join(sorted(product_map(matrix)))
        raise EnvironmentProblem(
            f"no board is in USB recovery mode (no NVIDIA 0955:{{{ids}}} device under "
            f"{opts.sysfs_root}/bus/usb/devices): hold RECOVERY, tap RESET, and connect the USB cable"
        )
    result = match(devices, boards, hooks.ask_board, inv_label)
    for a in result.mismatched:
        raise UserError(
            f"{inv_label}: host {a.board.name}: jetson_module: {a.board.module}, but the board at USB port "
            f"{a.device.port} is a {a.device.module_label} (USB product {a.device.product_id})"
        )
    if not result.assigned:
        ports = ", ".join(f"{d.port} ({d.module_label})" for d in devices)
        raise UserError(
            f"{inv_label}: boards in recovery mode at {ports}, but no inventory host is assigned to them: "
            "set usb_port=<port> or board_serial=<serial> on the host, or run interactively to be asked"
        )
    assigned = result.assigned

    l4ts = {a.plan.l4t for a in assigned}
    if len(l4ts) > 1:
        listing = ", ".join(f"{a.board.name} ({a.plan.l4t})" for a in assigned)
        raise UserError(f"{inv_label}: boards in this run plan different L4T releases: {listing}; use --limit")
    l4t, jetpack = assigned[0].plan.l4t, assigned[0].plan.jetpack

    mass = len(assigned) > 1 and not opts.one_by_one
    if mass:
        kinds = {(a.board.module, a.device.product_id) for a in assigned}
        if len(kinds) > 1:
            listing = ", ".join(f"{a.board.name} ({a.board.module}, {a.device.product_id})" for a in assigned)
            raise UserError(
                f"{inv_label}: a mass flash needs identical hardware, and this one mixes: {listing}; "
                "use --limit per kind, or --one-by-one"
            )
        if result.unassigned:
            extra = ", ".join(d.port for d in result.unassigned)
            raise UserError(
                f"{inv_label}: a mass flash flashes every board in recovery mode, and the one(s) at USB port "
                f"{extra} belong to no inventory host: assign (usb_port=...) or disconnect them, or use --one-by-one"
            )

    build = False
    if opts.bsp is not None:
        bsp_path = opts.bsp.resolve()
        bsp_mod.check(bsp_path, l4t, jetpack)
    else:
        bsp_path = bsp_mod.cached_bsp(l4t)
        if bsp_path.is_dir():
            bsp_mod.check(bsp_path, l4t, jetpack)
        elif opts.driver is not None and opts.rootfs is not None:
            opts.driver.verify("driver")
            opts.rootfs.verify("rootfs")
            build = True
        else:
            raise EnvironmentProblem(
                f"no BSP for L4T {l4t} (JetPack {jetpack}): pass --bsp DIR (a Linux_for_Tegra folder), or "
                f"--driver-tarball/--rootfs-tarball with their sha256 to build {bsp_path}"
            )

    need = opts.min_free_bytes
    if build and opts.driver is not None and opts.rootfs is not None:
        need += EXTRACT_FACTOR * (opts.driver.path.stat().st_size + opts.rootfs.path.stat().st_size)
    free = hooks.disk_free(bsp_path)
    if free < need:
        raise EnvironmentProblem(
            f"too little disk space for {bsp_path}: {free / GIB:.1f} GiB free, flashing needs {need / GIB:.1f} GiB "
            "(free some, or point --bsp / TX2SETUP_CACHE at a larger disk)"
        )

    if not opts.accept_license:
        raise UserError(
            "creating the default user accepts NVIDIA's L4T license (l4t_create_default_user.sh --accept-license): "
            "read Linux_for_Tegra/rootfs/usr/share/doc/nvidia-tegra/, then pass --accept-license"
        )
    user = credentials.resolve([a.board for a in assigned], opts.vault_password_file, hooks.ask, inv_label)
    return Prepared(
        options=opts,
        assignments=assigned,
        mass=mass,
        l4t=l4t,
        jetpack=jetpack,
        bsp=bsp_path,
        build=build,
        user=user,
        log_dir=opts.log_dir or _default_log_dir(),
        matrix=matrix,
    )


def _hostname(name: str) -> str | None:
    return name if HOSTNAME_LABEL.match(name) else None


def _create_user(prep: Prepared, log: Path, hooks: Hooks, hostname: str | None) -> str | None:
    """Run l4t_create_default_user.sh (+ the key); an error text, or None when it worked."""
    user = prep.user
    argv = command_lines.create_user(user.name, user.password, hostname)
    outcome = runner.run_logged(argv, prep.bsp, log, prep.options.timeout_s, env=hooks.env, secrets=[user.password])
    if outcome.timed_out or outcome.returncode != 0:
        why = "timed out" if outcome.timed_out else f"exit status {outcome.returncode}"
        return f"l4t_create_default_user.sh failed ({why}); see {log}"
    credentials.install_key(prep.bsp / "rootfs", user)
    return None


def execute(prep: Prepared, hooks: Hooks | None = None) -> Summary:
    hooks = hooks or Hooks()
    opts = prep.options
    prep.log_dir.mkdir(parents=True, exist_ok=True)
    if prep.build:
        assert opts.driver is not None and opts.rootfs is not None
        bsp_mod.build_from_tarballs(prep.l4t, prep.jetpack, opts.driver, opts.rootfs, prep.bsp)

    if not bsp_mod.applied(prep.bsp, prep.l4t):
        log = prep.log_dir / "apply_binaries.log"
        out = runner.run_logged([command_lines.APPLY_BINARIES], prep.bsp, log, opts.timeout_s, env=hooks.env)
        if out.timed_out or out.returncode != 0:
            raise EnvironmentProblem(f"apply_binaries.sh failed in {prep.bsp}; see {log}")
        bsp_mod.record_applied(prep.bsp, prep.l4t, log)

    targets = prep.targets
    module = prep.matrix.module(targets[0].module)
    results: list[runner.BoardResult] = []
    if prep.mass:
        failure = _create_user(prep, prep.log_dir / "create_default_user.log", hooks, hostname=None)
        if failure:
            raise EnvironmentProblem(failure)
        build_argv, flash_argv = command_lines.mass(module, len(targets), prep.l4t)
        results = runner.flash_mass(
            targets, build_argv, flash_argv, prep.bsp, prep.log_dir, opts.timeout_s, hooks.on_event, hooks.env
        )
    else:
        for t in targets:
            log = prep.log_dir / f"{t.name}.log"
            failure = _create_user(prep, log, hooks, _hostname(t.name))
            if failure:
                hooks.on_event(runner.Event(t.name, status="failed"))
                results.append(runner.BoardResult(t.name, t.port, t.module, "failed", 0.0, log, failure))
                continue
            argv = command_lines.single(prep.matrix.module(t.module), t.port, prep.l4t)
            results.append(
                runner.flash_one(
                    t, argv, prep.bsp, log, opts.timeout_s, hooks.on_event, hooks.env, [prep.user.password]
                )
            )

    if opts.wait:
        by_name = {a.board.name: a.board for a in prep.assignments}
        net_targets = [
            network.NetTarget(
                r.board,
                by_name[r.board].ansible_host,
                int(by_name[r.board].hostvars.get("ansible_port", 22)),
                by_name[r.board].hostvars.get("board_mac"),
            )
            for r in results
            if r.ok
        ]
        found = network.wait_for(net_targets, opts.wait_timeout_s, hooks.wait_poll_s, hooks.arp_table, hooks.probe)
        for r in results:
            if r.board in found:
                addr = found[r.board]
                r.network = f"up at {addr}" if addr else f"not seen within {opts.wait_timeout_s:g} s"
    return Summary(
        results=results,
        log_dir=prep.log_dir,
        mode="massflash" if prep.mass else "one by one",
        bsp=prep.bsp,
        l4t=prep.l4t,
        user=prep.user.name,
        password_generated=prep.user.password_generated,
        inventory=opts.inventory,
    )
