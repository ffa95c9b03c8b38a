"""Provision a fleet: the one module that imports ansible_runner.

`run()` is five named steps. Load: the fleet's boards (tx2setup/board.py), each with its
plan, so a bad inventory is refused before anything runs (UserError/PlanError). Fetch and
serve: the large artifacts the plans need go into the cache, verified against the lock
file (ChecksumError: nothing runs), and are served to the boards for the run, as is the
apt proxy. Runner arguments: playbooks/site.yml with the inventory and a generated one
holding each board's `tx2setup_cache_url`/`tx2setup_apt_proxy_url`, the same variables a
plain run takes for a `tx2setup cache serve` server. No plan is passed: the play resolves
it itself (the collection's plan action, tx2setup/playvars.py), exactly as a plain
`ansible-playbook` or AWX run does. Run Ansible: `ansible_runner.run()`, whose events feed
a per-board progress table (`HostProgress`) and per-board log files. Record: success,
failure and idempotence come from `runner.stats` and the runner's structured events, never
from scraping stdout, into the result and a JSON record of the run. Board failures are not
exceptions: they are in the result (`result.ok`, `result.bad_hosts`).

`vault_password_file` decrypts vaulted group_vars/host_vars, both for the inventory check
and for the playbook (handed over as ANSIBLE_VAULT_PASSWORD_FILE); without it, the
inventory's own `tx2setup_vault_password_file` applies. `become_password_file` holds the
boards' sudo password (handed over as ANSIBLE_BECOME_PASSWORD_FILE: the path travels,
never the password).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from tx2setup import aptproxy, become, board, cache, connection, plan, sshkeys, wheelhouse
from tx2setup.content import PLAYBOOK, project_root
from tx2setup.errors import EnvironmentProblem, UserError

COLLECTION = ("tx2setup", "jetson")  # galaxy.yml: the roles call its plan action by FQCN


@dataclass
class HostProgress:
    """One board's live state, updated from runner events."""

    name: str
    role: str = ""
    task: str = ""
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    failed_task: str = ""
    message: str = ""

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class HostResult:
    name: str
    status: str  # ok | failed | unreachable | not run
    ok: int
    changed: int
    failed: int
    skipped: int
    failed_task: str
    message: str
    log: str
    elapsed: float


@dataclass(frozen=True)
class ProvisionResult:
    status: str  # the runner's: successful, failed, canceled, timeout
    rc: int
    check: bool
    hosts: dict[str, HostResult]
    elapsed: float
    run_dir: str
    record: str
    interrupted: bool
    upstream_bytes: int  # artifact bytes fetched from upstream by the cache in this run
    served_bytes: int  # artifact bytes the cache server sent to boards

    @property
    def ok(self) -> bool:
        return not self.interrupted and bool(self.hosts) and all(h.status == "ok" for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    @property
    def bad_hosts(self) -> list[HostResult]:
        return [h for h in self.hosts.values() if h.status != "ok"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failure_message(res: Mapping[str, Any]) -> str:
    explained = become.explain(str(res.get("msg") or ""))
    if explained:
        return explained
    if str(res.get("msg") or "").startswith("The checksum for "):  # get_url's fail_json (ansible-core 2.16)
        # seen when the artifact server died mid-download (tests/integration/test_signals.py):
        # the short file fails the pin, and the checksum line alone reads like a corrupt artifact
        return _one_line(
            "the download does not match its pinned sha256 (cut short, e.g. the artifact server stopped, or "
            f"changed upstream): run again; `tx2setup cache verify` checks the cache ({res.get('msg')})"
        )
    parts = [str(res.get("msg") or "")]
    for key in ("stderr", "stdout"):
        val = res.get(key)
        if val and str(val).strip() not in parts[0]:
            parts.append(str(val).strip().splitlines()[-1])
            break
    return _one_line(": ".join(p for p in parts if p) or "failed")


class Tracker:
    """Turns runner events into HostProgress rows and per-board log files."""

    def __init__(self, hosts: list[str], log_dir: Path, on_change: Callable[[Mapping[str, HostProgress]], None] | None):
        self.hosts = {h: HostProgress(h) for h in hosts}
        self.log_dir = log_dir
        self.on_change = on_change
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._logs = {h: (log_dir / f"{h}.log").open("a", encoding="utf-8") for h in hosts}

    def close(self) -> None:
        for fh in self._logs.values():
            fh.close()

    def snapshot(self) -> dict[str, HostProgress]:
        with self._lock:
            return {k: HostProgress(**asdict(v)) for k, v in self.hosts.items()}

    def __call__(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        if kind == "playbook_on_stats":
            now = time.monotonic()
            with self._lock:
                for hp in self.hosts.values():
                    hp.finished = hp.finished or now
            if self.on_change is not None:
                self.on_change(self.snapshot())
        if host not in self.hosts:
            return True
        with self._lock:
            hp = self.hosts[host]
            task = str(data.get("task") or "")
            role = str(data.get("role") or "")
            res = data.get("res") or {}
            if kind == "runner_on_start":
                hp.task, hp.role = task, role
            elif kind == "runner_on_ok":
                hp.ok += 1
                hp.changed += bool(res.get("changed"))
            elif kind == "runner_on_skipped":
                hp.skipped += 1
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                hp.failed += 1
                hp.finished = time.monotonic()
                hp.failed_task = f"{role}: {task}" if role else task
                hp.message = _failure_message(res)
            elif kind == "runner_on_unreachable":
                hp.unreachable = True
                hp.finished = time.monotonic()
                hp.failed_task = f"{role}: {task}" if role else task
                hp.message = _failure_message(res)
            fh = self._logs[host]
            if kind == "runner_on_start":
                fh.write(f"TASK [{role + ' : ' if role else ''}{task}] {event.get('created', '')}\n")
            stdout = event.get("stdout")
            if stdout:
                fh.write(stdout.rstrip() + "\n")
            if kind in ("runner_on_failed", "runner_on_unreachable"):
                fh.write(json.dumps(res, default=str, indent=1)[:20000] + "\n")
            fh.flush()
        if self.on_change is not None:
            self.on_change(self.snapshot())
        return True


def _source_address(host: str) -> str:
    """The local address the kernel would use to reach `host` (no packet is sent)."""
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve board address {host!r}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect(sockaddr)
        return str(s.getsockname()[0])


def _serve_address(plans: list[plan.BoardPlan]) -> tuple[str, dict[str, str]]:
    """(address to bind, per-board address to put in URLs) so each board reaches the cache."""
    per_board = {}
    for p in plans:
        src = _source_address(p.ansible_host)
        # boards on loopback (emulated ones share this host's network) reach 127.0.0.1
        per_board[p.name] = "127.0.0.1" if ipaddress.ip_address(src).is_loopback else src
    addrs = set(per_board.values())
    bind = addrs.pop() if len(addrs) == 1 else "0.0.0.0"  # noqa: S104 - boards on several networks
    return bind, per_board


@contextlib.contextmanager
def _interrupts() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event the runner polls, so Ctrl-C stops ansible cleanly."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _runner_error(rdir: Path) -> str:
    """The line of ansible-playbook's output that says why it stopped (it ran no play)."""
    out = rdir / "runner" / "artifacts" / "run" / "stdout"
    text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("ERROR!", "[ERROR]")) or "not found" in ln:
            return _one_line(ln)
    return _one_line(lines[-1]) if lines else f"no output (see {out})"


def _write_cache_inventory(path: Path, hosts: dict[str, dict[str, str]]) -> None:
    """Each board's tx2setup_cache_url and tx2setup_apt_proxy_url (boards may reach this host on
    different addresses)."""
    path.write_text(
        "# Generated by tx2setup provision: where each board fetches cached artifacts and packages this run.\n"
        + yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=True, default_flow_style=False),
        encoding="utf-8",
    )


def _collections_path(root: Path, rdir: Path) -> str:
    """ANSIBLE_COLLECTIONS_PATH for the run: `root` (checkout or installed package) as the
    collection tx2setup.jetson, ahead of the user's own collection paths."""
    link = rdir / "collections" / "ansible_collections" / COLLECTION[0] / COLLECTION[1]
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(root, target_is_directory=True)
    home = Path.home() / ".ansible" / "collections"
    rest = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or f"{home}:/usr/share/ansible/collections"
    return os.pathsep.join([str(rdir / "collections"), rest])


@dataclass(frozen=True)
class RunOptions:
    """What `run` was asked to do, handed from step to step."""

    inventory: Path  # absolute
    limit: str | None
    tags: str | None
    skip_tags: str | None
    check: bool
    forks: int | None
    use_cache: bool
    use_apt_proxy: bool
    cache_bind: str | None
    lock_path: str | Path | None
    extravars: dict[str, Any]
    become_password_file: str | None


@dataclass
class Serving:
    """What this run serves the boards: cached artifacts and the apt proxy, and where each
    board reaches them (its run hostvars: tx2setup_cache_url, tx2setup_apt_proxy_url)."""

    hostvars: dict[str, dict[str, str]]
    server: cache.CacheServer | None = None
    apt_proxy: aptproxy.AptProxy | None = None
    upstream_bytes: int = 0  # fetched from upstream into the cache for this run
    served_bytes: int = 0  # sent to the boards, counted by finish()
    apt_stats: dict[str, object] | None = None
    wheels: wheelhouse.Synced | None = None
    wheel_stats: dict[str, object] | None = None

    def finish(self, warnings: list[str]) -> None:
        """Before the servers stop: what the cache server sent, the apt proxy's statistics."""
        self.served_bytes = self.server.bytes_served if self.server else 0
        self.apt_stats = aptproxy.finish_run(self.apt_proxy, warnings)
        if self.wheels is not None and self.server is not None:
            self.wheel_stats = {
                "fetched_bytes": self.wheels.fetched_bytes,
                "served_bytes": self.server.wheelhouse_bytes_served,
                "files": self.wheels.files,
                "tags": sorted(self.wheels.filled),
                "requests": self.server.wheel_requests,
            }


def _board_address(opts: RunOptions, per_board: dict[str, str], name: str) -> str:
    """Where board `name` reaches this host: --cache-bind when it names one address."""
    return opts.cache_bind if opts.cache_bind and opts.cache_bind != "0.0.0.0" else per_board[name]  # noqa: S104


def _serve_artifacts(stack: contextlib.ExitStack, fleet: board.Fleet, opts: RunOptions, warnings: list[str]) -> Serving:
    """Fetch the large artifacts into the cache (verified against the lock file) and serve
    them, and start the run's apt proxy; both stop when `stack` closes."""
    plans = fleet.plans
    serving = Serving({p.name: {} for p in plans})
    needed = cache.plan_artifacts(plans) if opts.use_cache else {}
    if needed:
        # fetched and pinned in the lock file here; the play's plan action reads the same
        # lock and sends each board to tx2setup_cache_url/<key> with the pinned sha256
        store = cache.ArtifactCache(cache.LockFile.load(opts.lock_path or cache.lock_path_for(opts.inventory)))
        for url, sha in needed.items():
            store.fetch(url, sha)
        serving.upstream_bytes = store.fetched_bytes
        serving.wheels = wheelhouse.sync(plans, store)  # pip's wheels, once per (Python, platform)
        bind, per_board = _serve_address(plans)
        serving.server = stack.enter_context(
            cache.CacheServer(store.dir, bind=opts.cache_bind or bind, wheelhouse=wheelhouse.root())
        )
        port = serving.server.base_url.rsplit(":", 1)[1]
        for p in plans:
            serving.hostvars[p.name]["tx2setup_cache_url"] = f"http://{_board_address(opts, per_board, p.name)}:{port}"
    if opts.use_apt_proxy:
        # the boards' apt cache (apt-cacher-ng) for this run, where the boards reach this host
        bind, per_board = _serve_address(plans)
        serving.apt_proxy = aptproxy.start_for_run(opts.cache_bind or bind, warnings)
        if serving.apt_proxy is not None:
            stack.callback(serving.apt_proxy.stop)  # also when the runner raises
            for p in plans:
                url = serving.apt_proxy.url_for(_board_address(opts, per_board, p.name))
                serving.hostvars[p.name]["tx2setup_apt_proxy_url"] = url
    return serving


def _runner_envvars(root: Path, rdir: Path, control_dir: Path, fleet: board.Fleet, opts: RunOptions) -> dict[str, str]:
    env = {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": _collections_path(root, rdir),
        # ansible-playbook lives next to this Python (a venv need not be activated)
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # ansible-runner sets this to False unless it is given (ansible_runner/config/_base.py,
        # _prepare_env): host keys stay checked unless the user turned the check off
        "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
        # this run's own SSH masters: one left by an earlier run (ControlPersist) would
        # reach a board whose host key has changed since without checking it
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
    }
    if fleet.vault_password_file:
        # through the environment rather than cmdline: `--check --diff` already uses
        # cmdline, and ansible-playbook reads this variable as --vault-password-file.
        # Absolute, since ansible-playbook runs from the runner's directory.
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(Path(fleet.vault_password_file).resolve())
    if opts.become_password_file:
        env["ANSIBLE_BECOME_PASSWORD_FILE"] = str(Path(opts.become_password_file).resolve())
    return env


def _runner_args(
    opts: RunOptions, fleet: board.Fleet, rdir: Path, serving: Serving, stack: contextlib.ExitStack
) -> dict[str, Any]:
    """ansible_runner.run's arguments (without the event handler and the cancel callback).
    The run directory is created here, once the artifacts are verified: a refused run
    leaves nothing behind."""
    root = project_root()
    (rdir / "runner").mkdir(parents=True, exist_ok=True)
    inventories = [str(opts.inventory)]
    if any(serving.hostvars.values()):
        _write_cache_inventory(rdir / "cache.yml", serving.hostvars)
        inventories.append(str(rdir / "cache.yml"))
    run_vars = dict(opts.extravars)
    if opts.lock_path:
        run_vars.setdefault("tx2setup_lock_file", str(Path(opts.lock_path).resolve()))
    control_dir = stack.enter_context(connection.private_control_dir())
    kwargs: dict[str, Any] = {
        "private_data_dir": str(rdir / "runner"),
        "project_dir": str(root),
        "playbook": str(root / PLAYBOOK),
        "inventory": inventories,
        "envvars": _runner_envvars(root, rdir, control_dir, fleet, opts),
        "extravars": run_vars,
        "quiet": True,
        "ident": "run",
        "suppress_env_files": True,
    }
    optional = {"limit": opts.limit, "tags": opts.tags, "skip_tags": opts.skip_tags, "forks": opts.forks}
    kwargs.update({k: v for k, v in optional.items() if v})
    if opts.check:
        kwargs["cmdline"] = "--check --diff"
    return kwargs


def _run_ansible(kwargs: dict[str, Any], tracker: Tracker, stop: threading.Event) -> Any:
    """The play through ansible-runner: its events feed `tracker`, `stop` cancels it."""
    import ansible_runner

    try:
        return ansible_runner.run(**kwargs, event_handler=tracker, cancel_callback=stop.is_set)
    finally:
        tracker.close()


def _host_result(
    name: str, hp: HostProgress, stats: dict[str, dict[str, int]], interrupted: bool, rdir: Path
) -> HostResult:
    """One board's outcome: the runner's stats, and the tracker's failing task and message."""

    def stat(key: str) -> int:
        return int(stats.get(key, {}).get(name, 0))

    if stat("dark") or hp.unreachable:
        status = "unreachable"
    elif stat("failures") or hp.failed:
        status = "failed"
    elif name in stats.get("processed", {}) and not interrupted:
        status = "ok"
    else:
        status = "interrupted" if interrupted else "not run"
    return HostResult(
        name=name,
        status=status,
        ok=stat("ok"),
        changed=stat("changed"),
        failed=stat("failures"),
        skipped=stat("skipped"),
        failed_task=hp.failed_task or (f"{hp.role}: {hp.task}" if status == "interrupted" and hp.task else ""),
        message=hp.message or ("run interrupted" if status == "interrupted" else ""),
        log=str(rdir / "logs" / f"{name}.log"),
        elapsed=round(hp.elapsed, 2),
    )


def _record(
    opts: RunOptions,
    fleet: board.Fleet,
    rdir: Path,
    runner: Any,
    tracker: Tracker,
    interrupted: bool,
    started: float,
    serving: Serving,
    warnings: list[str],
) -> ProvisionResult:
    """The run's result from the runner's stats, written as rdir/provision.json."""
    stats: dict[str, dict[str, int]] = runner.stats or {}
    if not stats and not interrupted:
        raise EnvironmentProblem(f"ansible-playbook failed before reaching any board: {_runner_error(rdir)}")
    snap = tracker.snapshot()
    result = ProvisionResult(
        status=str(runner.status),
        rc=int(runner.rc if runner.rc is not None else -1),
        check=opts.check,
        hosts={n: _host_result(n, snap[n], stats, interrupted, rdir) for n in fleet.names},
        elapsed=round(time.monotonic() - started, 2),
        run_dir=str(rdir),
        record=str(rdir / "provision.json"),
        interrupted=interrupted,
        upstream_bytes=serving.upstream_bytes,
        served_bytes=serving.served_bytes,
    )
    record = result.to_dict() | {
        "inventory": str(opts.inventory),
        "limit": opts.limit,
        "tags": opts.tags,
        "forks": opts.forks,
        "stats": stats,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "apt_proxy": serving.apt_stats,
        "wheelhouse": serving.wheel_stats,
        "warnings": warnings,
    }
    Path(result.record).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return result


def _load(opts: RunOptions, vault_password_file: str | None) -> board.Fleet:
    """The boards with their plans; a bad inventory or an unusable key is refused here,
    before anything runs."""
    fleet = board.load(opts.inventory, limit=opts.limit, vault_password_file=vault_password_file)
    sshkeys.require_usable((b.name, b.ssh.key_file) for b in fleet.boards)  # no passphrase prompt mid-run
    return fleet


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def run(
    inventory_path: str | Path,
    limit: str | None = None,
    tags: str | None = None,
    check: bool = False,
    forks: int | None = None,
    *,
    use_cache: bool = True,
    use_apt_proxy: bool = True,
    cache_bind: str | None = None,
    lock_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    skip_tags: str | None = None,
    extravars: dict[str, Any] | None = None,
    vault_password_file: str | None = None,
    become_password_file: str | None = None,
    progress: Callable[[Mapping[str, HostProgress]], None] | None = None,
    cancel: threading.Event | None = None,
) -> ProvisionResult:
    """Bring every (limited) board to its plan: load, fetch and serve artifacts, build the
    runner's arguments, run Ansible, record. Errors and secrets: see the module docstring."""
    started = time.monotonic()
    opts = RunOptions(
        inventory=Path(inventory_path).resolve(),
        limit=limit,
        tags=tags,
        skip_tags=skip_tags,
        check=check,
        forks=forks,
        use_cache=use_cache,
        use_apt_proxy=use_apt_proxy,
        cache_bind=cache_bind,
        lock_path=lock_path,
        extravars=dict(extravars or {}),
        become_password_file=become_password_file,
    )
    fleet = _load(opts, vault_password_file)
    rdir = Path(run_dir) if run_dir else cache.cache_root() / "runs" / f"provision-{_stamp()}-{os.getpid()}"
    warnings: list[str] = []
    with contextlib.ExitStack() as stack:
        serving = _serve_artifacts(stack, fleet, opts, warnings)
        kwargs = _runner_args(opts, fleet, rdir, serving, stack)
        tracker = Tracker(fleet.names, rdir / "logs", progress)
        stop = cancel or stack.enter_context(_interrupts())
        runner = _run_ansible(kwargs, tracker, stop)
        serving.finish(warnings)
    interrupted = stop.is_set() or runner.status == "canceled"
    return _record(opts, fleet, rdir, runner, tracker, interrupted, started, serving, warnings)
