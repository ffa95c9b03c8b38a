"""One `tx2setup flash` run: every refusal first, then BSP -> user -> flash -> network.

`prepare()` checks everything that can be checked before touching anything and raises
(one line, non-zero exit) when the run cannot go ahead:

- not root; `--then-provision` without ansible-runner (provision.py runs the play with it), or with `--no-wait`
  (a board that has not been seen on the network cannot be provisioned);
- the inventory does not load or resolve (fleet / plan errors);
- no board in recovery mode; a board's product ID does not fit its inventory module (or
  is a product tx2setup does not flash); a `flash_board` the module does not have;
  no detected board is assigned to an inventory host;
- the boards plan different L4T releases; a mass flash mixes hardware, or would also
  flash a board that no inventory host claims;
- the NVIDIA license is not accepted; no user or password;
- the BSP is missing, holds another L4T, or lacks a tool this flash runs (old releases
  have no l4t_initrd_flash.sh / l4t_create_default_user.sh); for the per-L4T cache, the
  tarballs are fetched through the artifact cache (sha256 against tx2setup.lock) and the
  driver package's version and tools are read from the tarball, before any extraction;
- too little free disk.

Only `execute()` changes anything. Checks that need a root shell, a prompt or the disk
are hooks (`Hooks`), so tests can run as root and still exercise each refusal.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from tx2setup import cache, fleet, plan, provision
from tx2setup.errors import (
    EnvironmentProblem,
    Interrupted,
    InventoryError,
    NotRootError,
    RemoteError,
    Tx2SetupError,
    UserError,
)
from tx2setup.flash import become_vault, bsp_data, command_lines, credentials, network, rootfs_user, runner
from tx2setup.flash import bsp as bsp_mod
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
    """Whether `--then-provision` can run: provision.py needs ansible-runner, which it imports when it runs."""
    return importlib.util.find_spec("ansible_runner") is not None


class _Secrets(TypedDict, total=False):
    vault_password_file: str
    become_password_file: str


def run_provision(
    inventory: Path,
    names: Sequence[str],
    show: Callable[[provision.ProvisionResult], None] | None = None,
    vault_password_file: str | None = None,
    become_password_file: str | None = None,
) -> provision.ProvisionResult:
    """The `--then-provision` seam: provision.run(inventory_path, limit=...) on the flashed boards.

    Provisioning reports board failures in its result (`.ok`, `.bad_hosts`), not as
    exceptions; `show` renders the result first, then a failed one becomes RemoteError
    here, like a failed flash.
    """
    # only the secrets given: the seam's contract is run(inventory_path, limit=...)
    secrets: _Secrets = {}
    if vault_password_file:
        secrets["vault_password_file"] = vault_password_file
    if become_password_file:
        secrets["become_password_file"] = become_password_file
    result = provision.run(str(inventory), limit=",".join(names), **secrets)
    if show is not None:
        show(result)
    if not result.ok:
        bad = ", ".join(f"{h.name} ({h.status})" for h in result.bad_hosts)
        raise RemoteError(f"flashed, but provisioning failed on: {bad or 'see its output'}")
    return result


@dataclass
class FlashOptions:
    inventory: Path
    limit: str | None = None
    sysfs_root: Path = DEFAULT_SYSFS
    bsp: Path | None = None
    bsp_mirror: str | None = None  # base URL serving the BSP tarballs by file name (else NVIDIA's URLs)
    lock_path: Path | None = None  # default: tx2setup.lock next to the inventory
    one_by_one: bool = False
    timeout_s: float = 3600.0
    log_dir: Path | None = None
    wait: bool = True
    wait_timeout_s: float = 900.0
    then_provision: bool = False
    min_free_bytes: int = DEFAULT_MIN_FREE_GIB * GIB
    vault_password_file: str | None = None
    accept_license: bool = False
    become_vault: Path | None = None  # write the user's password here, vaulted (ansible_become_password)


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
    lease_files: Sequence[Path] = network.LEASE_FILES
    note: Callable[[str], None] = field(default=lambda _m: None)  # one line before a slow step (CLI: stderr)
    # what l4t_create_default_user.sh needs on the host (rootfs_user.check_host)
    qemu_aarch64: Path | None = None  # None: rootfs_user.QEMU_AARCH64
    binfmt_dir: Path | None = None  # None: rootfs_user.BINFMT_DIR


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
    boards: dict[str, str]  # host -> board config (flash.sh <board>)
    tools: tuple[str, ...]  # the BSP files this flash runs
    driver: bsp_mod.LocalArtifact | None = None  # the cached tarballs, when build
    rootfs: bsp_mod.LocalArtifact | None = None
    skipped: list[str] = field(default_factory=list)  # boards left alone, and why (shown in the summary)

    @property
    def targets(self) -> list[runner.Target]:
        return [
            runner.Target(a.board.name, a.device.port, a.board.module, self.boards[a.board.name])
            for a in self.assignments
        ]


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
    skipped: list[str] = field(default_factory=list)
    chained: bool = False  # --then-provision: provisioning follows, no "next:" hint
    become_vault: Path | None = None  # where the vaulted ansible_become_password was written
    vault_password_file: str | None = None  # the --vault-password-file given (for the next step)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def flashed(self) -> list[str]:
        return [r.board for r in self.results if r.ok]

    def next_step(self) -> str | None:
        if not self.flashed or self.chained:
            return None
        step = f"tx2setup provision -i {self.inventory} --limit {','.join(self.flashed)}"
        if self.become_vault is not None and self.vault_password_file:
            step += f" --vault-password-file {self.vault_password_file}"
        return step

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "l4t": self.l4t,
            "bsp": str(self.bsp),
            "user": self.user,
            "become_vault": str(self.become_vault) if self.become_vault else None,
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
            "skipped": self.skipped,
            "next": self.next_step(),
        }


def load_boards(
    inventory: Path, limit: str | None, vault_password_file: str | None = None
) -> list[tuple[fleet.Board, plan.BoardPlan]]:
    inv = fleet.load(inventory, limit=limit, vault_password_file=vault_password_file)
    plans = {p.name: p for p in plan.resolve(inv)}
    return [(b, plans[b.name]) for b in inv.boards]


def survey(
    sysfs_root: Path,
    inventory: Path | None = None,
    limit: str | None = None,
    ask_board: AskFn | None = None,
    vault_password_file: str | None = None,
) -> tuple[list[RecoveryDevice], MatchResult | None]:
    """What `flash --list` shows: boards in recovery mode and, with an inventory, who they are."""
    devices = scan(sysfs_root)
    if inventory is None:
        return devices, None
    return devices, match(devices, load_boards(inventory, limit, vault_password_file), ask_board, str(inventory))


def _default_log_dir() -> Path:
    return cache.cache_root() / "logs" / "flash" / time.strftime("%Y%m%d-%H%M%S")


def _board_config(a: Assignment, matrix: Matrix, data: bsp_data.BspData, inv_label: str) -> str:
    """The board config to flash: the host's `flash_board`, else the product's, else the module's."""
    module = matrix.module(a.board.module)
    product = data.product_boards.get(a.device.product_id)
    default = product.flash_board if product and product.module == a.board.module else module.flash_board
    chosen = a.board.hostvars.get("flash_board")
    if chosen is None:
        return default
    allowed = data.flash_boards.get(a.board.module, (module.flash_board,))
    if str(chosen) not in allowed:
        raise InventoryError(
            f"{inv_label}: host {a.board.name}: flash_board: {chosen!r} is not a board config for "
            f"{a.board.module} (one of: {', '.join(allowed)})"
        )
    if product and str(chosen) != product.flash_board:
        raise UserError(
            f"{inv_label}: host {a.board.name}: flash_board: {chosen}, but the board at USB port {a.device.port} "
            f"is a {product.name} (USB product {a.device.product_id}), which flashes as {product.flash_board}"
        )
    return str(chosen)


def _resolve_bsp(
    opts: FlashOptions, l4t: str, jetpack: str, tools: tuple[str, ...], boards: list[str], note: Callable[[str], None]
) -> tuple[Path, bool, bsp_mod.LocalArtifact | None, bsp_mod.LocalArtifact | None]:
    """(BSP folder, build it first?, driver tarball, rootfs tarball); refuses what cannot flash."""
    if opts.bsp is not None:
        bsp_path = opts.bsp.resolve()
        bsp_mod.check(bsp_path, l4t, jetpack, tools, boards)
        return bsp_path, False, None, None
    bsp_path = bsp_mod.cached_bsp(l4t)
    if bsp_path.is_dir():
        bsp_mod.check(bsp_path, l4t, jetpack, tools, boards)
        return bsp_path, False, None, None
    lock = opts.lock_path or cache.lock_path_for(opts.inventory)
    note(f"BSP for L4T {l4t}: fetching/checking its two tarballs through the artifact cache (pins: {lock})")
    driver, rootfs = bsp_mod.fetch_tarballs(l4t, jetpack, lock, opts.bsp_mirror or bsp_data.mirror())
    bsp_mod.check_driver_package(driver.path, l4t, jetpack, tools, boards)
    return bsp_path, True, driver, rootfs


def _refuse_small_disk(hooks: Hooks, bsp_path: Path, need: int) -> None:
    free = hooks.disk_free(bsp_path)
    if free < need:
        raise EnvironmentProblem(
            f"too little disk space for {bsp_path}: {free / GIB:.1f} GiB free, flashing needs {need / GIB:.1f} GiB "
            "(free some, or point --bsp / TX2SETUP_CACHE at a larger disk)"
        )


def prepare(opts: FlashOptions, hooks: Hooks | None = None) -> Prepared:
    """Every refusal, in the order a person would want to hear them; changes nothing on the boards.

    The one thing it may do is fetch the BSP tarballs into the artifact cache (verified
    against their pins), so that their version and tools are checked before the run starts.
    """
    hooks = hooks or Hooks()
    inv_label = str(opts.inventory)
    _refuse_the_host(opts, hooks)
    matrix = load_matrix()
    data = bsp_data.load()
    boards = load_boards(opts.inventory, opts.limit, opts.vault_password_file)
    result = _assign_devices(opts, hooks, matrix, boards)
    assigned = result.assigned
    board_configs = {a.board.name: _board_config(a, matrix, data, inv_label) for a in assigned}
    l4t, jetpack = _one_release(assigned, inv_label)
    mass = len(assigned) > 1 and not opts.one_by_one
    if mass:
        _refuse_mixed_mass_flash(result, board_configs, inv_label)
    if not opts.accept_license:
        raise UserError(
            "creating the default user accepts NVIDIA's L4T license (l4t_create_default_user.sh --accept-license): "
            "read Linux_for_Tegra/rootfs/usr/share/doc/nvidia-tegra/, then pass --accept-license"
        )
    user = credentials.resolve([a.board for a in assigned], opts.vault_password_file, hooks.ask, inv_label)
    _check_become_vault(opts, assigned)
    initrd = mass or any(command_lines.uses_nvme(matrix.module(a.board.module)) for a in assigned)
    tools = bsp_mod.required_tools(initrd)
    bsp_path, build, driver, rootfs = _bsp_with_room(
        opts, hooks, l4t, jetpack, tools, sorted(set(board_configs.values()))
    )
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
        boards=board_configs,
        tools=tools,
        driver=driver,
        rootfs=rootfs,
        skipped=_left_alone(result),
    )


def _refuse_the_host(opts: FlashOptions, hooks: Hooks) -> None:
    """Before the inventory, the BSP or the disk: without these nothing can be flashed at all."""
    if not hooks.is_root():
        raise NotRootError("tx2setup flash must run as root (the BSP's flash tools need it): use sudo")
    if opts.then_provision and not opts.wait:
        raise UserError(
            "--then-provision with --no-wait: boards that were not seen on the network cannot be provisioned; "
            "drop --no-wait, or provision later"
        )
    if opts.then_provision and not hooks.provision_available():
        raise EnvironmentProblem(
            "--then-provision: provisioning (ansible-runner) is not available in this install; "
            "flash without it and run `tx2setup provision` afterwards"
        )
    rootfs_user.check_host(hooks.qemu_aarch64, hooks.binfmt_dir)


def _assign_devices(
    opts: FlashOptions, hooks: Hooks, matrix: Matrix, boards: list[tuple[fleet.Board, plan.BoardPlan]]
) -> MatchResult:
    """Boards in recovery mode matched to inventory hosts; refuses none, a mismatch, or no host assigned."""
    inv_label = str(opts.inventory)
    devices = scan(opts.sysfs_root, matrix)
    if not devices:
        ids = ", ".join(sorted(product_map(matrix)))
        raise EnvironmentProblem(
            f"no board is in USB recovery mode (no NVIDIA 0955:{{{ids}}} device under "
            f"{opts.sysfs_root}/bus/usb/devices): hold RECOVERY, tap RESET, and connect the USB cable"
        )
    result = match(devices, boards, hooks.ask_board, inv_label)
    for a in result.mismatched:
        label, what = (
            (a.device.module_label, "") if a.device.supported else (a.device.name, ", which tx2setup does not flash")
        )
        raise UserError(
            f"{inv_label}: host {a.board.name}: jetson_module: {a.board.module}, but the board at USB port "
            f"{a.device.port} is a {label} (USB product {a.device.product_id}){what}"
        )
    if not result.assigned:
        ports = ", ".join(f"{d.port} ({d.module_label})" for d in devices)
        raise UserError(
            f"{inv_label}: boards in recovery mode at {ports}, but no inventory host is assigned to them: "
            "set usb_port=<port> or board_serial=<serial> on the host, or run interactively to be asked"
        )
    return result


def _one_release(assigned: Sequence[Assignment], inv_label: str) -> tuple[str, str]:
    """(L4T, JetPack) of the run: one BSP flashes every board of it."""
    l4ts = {a.plan.l4t for a in assigned}
    if len(l4ts) > 1:
        listing = ", ".join(f"{a.board.name} ({a.plan.l4t})" for a in assigned)
        raise UserError(f"{inv_label}: boards in this run plan different L4T releases: {listing}; use --limit")
    return assigned[0].plan.l4t, assigned[0].plan.jetpack


def _refuse_mixed_mass_flash(result: MatchResult, board_configs: Mapping[str, str], inv_label: str) -> None:
    """A mass flash writes one image to every board in recovery mode: identical hardware, all of it claimed."""
    assigned = result.assigned
    kinds = {(a.board.module, a.device.product_id, board_configs[a.board.name]) for a in assigned}
    if len(kinds) > 1:
        listing = ", ".join(
            f"{a.board.name} ({a.board.module}, {a.device.product_id}, {board_configs[a.board.name]})" for a in assigned
        )
        raise UserError(
            f"{inv_label}: a mass flash needs identical hardware, and this one mixes: {listing}; "
            "use --limit per kind, or --one-by-one"
        )
    if result.unassigned:
        extra = ", ".join(f"{d.port} ({d.module_label})" for d in result.unassigned)
        raise UserError(
            f"{inv_label}: a mass flash flashes every board in recovery mode, and the one(s) at USB port "
            f"{extra} belong to no inventory host: assign (usb_port=...) or disconnect them, or use --one-by-one"
        )


def _left_alone(result: MatchResult) -> list[str]:
    """The boards this run does not flash, and why (shown in the summary)."""
    skipped = [
        f"USB port {d.port} ({d.module_label}): no host of this run claims it; left alone" for d in result.unassigned
    ]
    skipped += [
        f"{b.name}: pinned to {'usb_port ' + b.usb_port if b.usb_port else 'board_serial ' + str(b.serial)}, "
        "but not in recovery mode; not flashed"
        for b in result.absent
    ]
    return skipped


def _bsp_with_room(
    opts: FlashOptions, hooks: Hooks, l4t: str, jetpack: str, tools: tuple[str, ...], configs: list[str]
) -> tuple[Path, bool, bsp_mod.LocalArtifact | None, bsp_mod.LocalArtifact | None]:
    """The BSP (`_resolve_bsp`), with the disk it needs checked before and after fetching its tarballs."""
    # The base need first, so that a disk too small for any flash is refused before the BSP
    # tarballs are fetched; what their extraction needs is added once their sizes are known.
    _refuse_small_disk(
        hooks, opts.bsp.resolve() if opts.bsp is not None else bsp_mod.cached_bsp(l4t), opts.min_free_bytes
    )
    bsp_path, build, driver, rootfs = _resolve_bsp(opts, l4t, jetpack, tools, configs, hooks.note)
    need = opts.min_free_bytes
    if driver is not None and rootfs is not None:
        need += EXTRACT_FACTOR * (driver.path.stat().st_size + rootfs.path.stat().st_size)
    _refuse_small_disk(hooks, bsp_path, need)
    return bsp_path, build, driver, rootfs


def _check_become_vault(opts: FlashOptions, assigned: Sequence[Assignment]) -> None:
    """--write-become-vault: a vault password, and a file tx2setup may own that the boards read."""
    if opts.become_vault is None:
        return
    if become_vault.vault_password_file(opts.vault_password_file) is None:
        raise UserError(
            f"--write-become-vault {opts.become_vault}: needs a vault password to encrypt with: "
            "pass --vault-password-file or set ANSIBLE_VAULT_PASSWORD_FILE"
        )
    hosts = [a.board.name for a in assigned]
    become_vault.check_target(opts.become_vault, opts.inventory, hosts, [a.board.groups for a in assigned])


def _hostname(name: str) -> str | None:
    return name if HOSTNAME_LABEL.match(name) else None


def _create_user(prep: Prepared, log: Path, hooks: Hooks, hostname: str | None) -> str | None:
    """The default user in the rootfs, afresh for this board; an error text, or None when it worked.

    The script cannot be run twice on one rootfs on R32, and keeps the old password on
    R36 (rootfs_user's docstring): what the last run created for this user goes first.
    It gets no `-p`; the password's hash goes into the rootfs's shadow file after it ran.
    """
    user = prep.user
    rootfs = prep.bsp / "rootfs"
    try:
        rootfs_user.clear_user(rootfs, user.name)
    except Tx2SetupError as exc:
        return f"l4t_create_default_user.sh not run: {exc.message}"
    argv = command_lines.create_user(user.name, hostname)
    outcome = runner.run_logged(
        argv,
        prep.bsp,
        log,
        prep.options.timeout_s,
        env=hooks.env,
        secrets=[user.password],
        mask_line=rootfs_user.mask_password_line,
    )
    if outcome.timed_out or outcome.returncode != 0:
        why = "timed out" if outcome.timed_out else f"exit status {outcome.returncode}"
        return f"l4t_create_default_user.sh failed ({why}); see {log}"
    try:
        rootfs_user.set_password(rootfs, user.name, user.password)
    except Tx2SetupError as exc:
        return f"setting {user.name}'s password in the rootfs failed: {exc.message}"
    credentials.install_key(rootfs, user)
    return None


def execute(prep: Prepared, hooks: Hooks | None = None) -> Summary:
    hooks = hooks or Hooks()
    opts = prep.options
    prep.log_dir.mkdir(parents=True, exist_ok=True)
    if prep.build:
        assert prep.driver is not None and prep.rootfs is not None
        bsp_mod.build_from_tarballs(prep.l4t, prep.jetpack, prep.driver, prep.rootfs, prep.bsp, prep.tools)

    if not bsp_mod.applied(prep.bsp, prep.l4t):
        log = prep.log_dir / "apply_binaries.log"
        out = runner.run_logged([command_lines.APPLY_BINARIES], prep.bsp, log, opts.timeout_s, env=hooks.env)
        if out.timed_out or out.returncode != 0:
            raise EnvironmentProblem(f"apply_binaries.sh failed in {prep.bsp}; see {log}")
        bsp_mod.record_applied(prep.bsp, prep.l4t, log)

    results: list[runner.BoardResult] = []
    try:
        _flash_all(prep, hooks, results)
    except KeyboardInterrupt:
        raise _interrupted(prep, results) from None
    return _finish(prep, hooks, results)


def _flash_all(prep: Prepared, hooks: Hooks, results: list[runner.BoardResult]) -> None:
    """Flash every target (mass or one by one), appending each board's result as it ends."""
    opts = prep.options
    targets = prep.targets
    module = prep.matrix.module(targets[0].module)
    if prep.mass:
        # one rootfs for every board: one hostname too, so the script's default (tegra-ubuntu)
        # stays; provisioning sets each board's hostname from the inventory afterwards
        failure = _create_user(prep, prep.log_dir / "create_default_user.log", hooks, hostname=None)
        if failure:
            raise EnvironmentProblem(failure)
        build_argv, flash_argv = command_lines.mass(module, len(targets), prep.l4t, targets[0].flash_board)
        results.extend(
            runner.flash_mass(
                targets, build_argv, flash_argv, prep.bsp, prep.log_dir, opts.timeout_s, hooks.on_event, hooks.env
            )
        )
    else:
        for t in targets:
            log = prep.log_dir / f"{t.name}.log"
            failure = _create_user(prep, log, hooks, _hostname(t.name))
            if failure:
                hooks.on_event(runner.Event(t.name, status="failed"))
                results.append(runner.BoardResult(t.name, t.port, t.module, "failed", 0.0, log, failure))
                continue
            argv = command_lines.single(prep.matrix.module(t.module), t.port, prep.l4t, t.flash_board)
            results.append(
                runner.flash_one(
                    t, argv, prep.bsp, log, opts.timeout_s, hooks.on_event, hooks.env, [prep.user.password]
                )
            )


def _interrupted(prep: Prepared, results: list[runner.BoardResult]) -> Interrupted:
    """Ctrl-C mid-flash, as one line: the board(s) cut short (the runner has killed the flash
    tool and written so in their logs) and the results of those finished before."""
    done = {r.board for r in results}
    cut = [t.name for t in prep.targets if t.name not in done]
    before = ", ".join(f"{r.board} {r.status}" for r in results) or "none"
    return Interrupted(
        f"interrupted while flashing {', '.join(cut)} (logs in {prep.log_dir}): flash "
        f"{'it' if len(cut) == 1 else 'them'} again; finished before the interrupt: {before}"
    )


def _finish(prep: Prepared, hooks: Hooks, results: list[runner.BoardResult]) -> Summary:
    opts = prep.options
    written = None
    if opts.become_vault is not None and any(r.ok for r in results):
        vault_file = become_vault.vault_password_file(opts.vault_password_file)
        assert vault_file is not None  # prepare() refused the run otherwise
        written = become_vault.write(opts.become_vault, prep.user.password, vault_file)
    if opts.wait:
        _wait_for_network(prep, results, hooks)
    return Summary(
        results=results,
        log_dir=prep.log_dir,
        mode="massflash" if prep.mass else "one by one",
        bsp=prep.bsp,
        l4t=prep.l4t,
        user=prep.user.name,
        password_generated=prep.user.password_generated,
        inventory=opts.inventory,
        skipped=prep.skipped,
        chained=opts.then_provision,
        become_vault=written,
        vault_password_file=opts.vault_password_file,
    )


def _wait_for_network(prep: Prepared, results: list[runner.BoardResult], hooks: Hooks) -> None:
    """Wait for each flashed board's SSH port; progress events say where each one is."""
    opts = prep.options
    by_name = {a.board.name: a.board for a in prep.assignments}
    net_targets = []
    for r in results:
        if not r.ok:
            continue
        board = by_name[r.board]
        mac = board.hostvars.get("board_mac")
        net_targets.append(
            network.NetTarget(
                r.board,
                board.ansible_host,
                int(board.hostvars.get("ansible_port", 22)),
                str(mac) if mac else None,
                # one-by-one flashing named the board after its host; a mass flash did not
                hostname=None if prep.mass or _hostname(r.board) in (None, board.ansible_host) else r.board,
            )
        )
        hooks.on_event(runner.Event(r.board, phase="waiting for SSH", line=f"knocking at {board.ansible_host}"))

    def up(target: network.NetTarget, addr: str) -> None:
        hooks.on_event(runner.Event(target.name, phase=f"up at {addr}"))

    found = network.wait_for(
        net_targets, opts.wait_timeout_s, hooks.wait_poll_s, hooks.arp_table, hooks.probe, up, hooks.lease_files
    )
    for r in results:
        if r.board in found:
            addr = found[r.board]
            r.network = f"up at {addr}" if addr else f"not seen within {opts.wait_timeout_s:g} s"
            if not addr:
                hooks.on_event(runner.Event(r.board, phase="not on the network"))
