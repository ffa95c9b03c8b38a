"""`verify`: testinfra checks + the on-board acceptance benchmark, one verdict per board.

Per board, in parallel: (1) the testinfra suite in tx2setup/checks over real SSH,
(2) the benchmark (`python3 -m tx2setup.bench`, installed by the acceptance role) whose
JSON result comes back to the host, (3) a verdict. Each finished board is stored in the
history DB at once and atomically; a board that did not finish is never stored as PASS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup import __version__, board, plan, sshkeys
from tx2setup.connection import close_master, open_master, write_ssh_config
from tx2setup.connection import run as ssh_run
from tx2setup.content import role_default
from tx2setup.errors import UserError
from tx2setup.results import BoardResult, CheckResult, History

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
# verify's own setting (no role has it): the free disk the checks want, in GB
VERIFY_DEFAULTS: dict[str, Any] = {"verify_min_disk_free_gb": 1.0}
# Role settings the checks compare with: the inventory's value, else the role's default,
# read from roles/jetson_base/defaults/main.yml at run time (never copied here)
ROLE_SETTINGS = ("jetson_base_clocks_on_boot", "jetson_base_swap_file")


def check_settings(name: str, hostvars: dict[str, Any], emulated: bool) -> dict[str, Any]:
    """The settings the checks use for one board. The swap minimum is verify_min_swap_mb,
    else the swap file the role was told to make (jetson_base_swap_size_mb), else the role's
    default for this kind of board (a token file on emulated boards): swap cannot pass just
    because nobody set a minimum."""
    out = {k: hostvars.get(k, v) for k, v in VERIFY_DEFAULTS.items()}
    out |= {k: hostvars[k] if k in hostvars else role_default("jetson_base", k) for k in ROLE_SETTINGS}
    key = next((k for k in ("verify_min_swap_mb", "jetson_base_swap_size_mb") if k in hostvars), None)
    if key is None:
        raw = role_default("jetson_base", "jetson_base_swap_size_mb", {"plan_emulated": emulated})
    else:
        raw = hostvars[key]
    try:
        out["verify_min_swap_mb"] = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"host {name}: {key}: {raw!r} is not a number of MB (set verify_min_swap_mb)") from None
    return out


def plans_document(fleet: board.Fleet) -> dict[str, dict[str, Any]]:
    """What the checks read (`--tx2setup-plan`): each board's plan and its check settings."""
    return {
        b.name: {**b.plan.to_dict(), "settings": check_settings(b.name, b.hostvars, b.emulated)} for b in fleet.boards
    }


def bench_dir(b: board.FleetBoard) -> str:
    """Where the acceptance role installed the benchmark on this board (acceptance_dir)."""
    given = b.hostvars.get("acceptance_dir")
    return str(given if given is not None else role_default("acceptance", "acceptance_dir"))


@dataclass(frozen=True)
class VerifyOptions:
    inventory: str
    limit: str | None = None
    model: str = "z2color"
    backend: str = "auto"
    duration: float = 5.0
    source: str = "synthetic"  # the benchmark's camera source on the board
    target_fps: float | None = None  # overrides every board's target
    db: str | None = None
    forks: int = 16
    ssh_timeout: float = 600.0  # per step on one board (checks, benchmark)
    connect_timeout: float = 30.0
    vault_password_file: str | None = None  # for vaulted group_vars/host_vars
    become_password_file: str | None = None  # the boards' sudo password (see tx2setup/become.py)
    model_card: str | None = None  # the user's model card (YAML); carried to the board with --model


@dataclass
class VerifyOutcome:
    run_id: int
    results: list[BoardResult] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and all(r.verdict == "PASS" for r in self.results)


ProgressFn = Callable[[str, str], None]  # (board, what is happening)


def _ssh(
    cfg: Path, name: str, command: str, timeout: float, stdin: str | None = None, tty: bool = False
) -> subprocess.CompletedProcess[str]:
    # through the board's control master (open_master): the tool's one SSH layer
    return ssh_run(cfg, name, command, timeout, stdin=stdin, tty=tty)


def sudo_check(cfg: Path, name: str, password: str | None, timeout: float) -> CheckResult:
    """Does the become password given open sudo on the board (what provisioning needs)?
    Skipped when none was given: verifying a provisioned board needs no root."""
    if password is None:
        return CheckResult("sudo", "skipped", "no become password given (-K, --become-password-file or vaulted)")
    # -S: the password from stdin; -p '': no prompt text; -k: ignore a cached credential
    proc = _ssh(cfg, name, "sudo -k -S -p '' true", min(timeout, 60.0), stdin=password + "\n")
    if proc.returncode == 0:
        return CheckResult("sudo", "passed", "the become password opens sudo")
    if proc.returncode == 255:
        return CheckResult("sudo", "error", "ssh failed while checking sudo")
    return CheckResult("sudo", "failed", "sudo on the board refused the become password given")


def run_checks(
    host_spec: str,
    host_id: str,
    plan_file: Path,
    junit: Path,
    timeout: float,
    ssh_config: Path | None = None,
    vault_password_file: str | None = None,
) -> list[CheckResult]:
    """The testinfra suite against one host (e.g. 'ssh://b1', id 'ssh://b1'); results come
    from its JUnit XML. pytest runs isolated from any project config around it.
    `vault_password_file` reaches the checks' conftest as ANSIBLE_VAULT_PASSWORD_FILE, for
    when it resolves plans from a vaulted inventory itself."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    cmd += ["--rootdir", str(CHECKS_DIR), f"--hosts={host_spec}", f"--tx2setup-plan={plan_file}", f"--junitxml={junit}"]
    if ssh_config is not None:
        cmd.append(f"--ssh-config={ssh_config}")
    try:
        env = dict(os.environ)
        if vault_password_file:
            env["ANSIBLE_VAULT_PASSWORD_FILE"] = vault_password_file
        proc = subprocess.run(
            [*cmd, str(CHECKS_DIR)], capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return [CheckResult("testinfra", "error", f"checks did not finish within {timeout:.0f} s")]
    if not junit.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        return [CheckResult("testinfra", "error", f"pytest exited {proc.returncode}: {tail[0]}")]
    return parse_junit(junit.read_text(), host_id)


def parse_junit(text: str, host_id: str) -> list[CheckResult]:
    """Check results from pytest's JUnit XML. `host_id` is testinfra's id for the host
    (e.g. 'ssh://b1'); it is dropped from test names, other parameters are kept."""
    root = ET.fromstring(text)  # noqa: S314 - pytest's own JUnit file, written by us a moment ago
    out = []
    for case in root.iter("testcase"):
        out.append(CheckResult(_check_name(case.get("name", "?"), host_id), *_outcome(case)))
    return out


def _check_name(test_id: str, host_id: str) -> str:
    """'test_x[ssh://b1-appsink]' -> 'test_x[appsink]'; 'test_y[ssh://b1]' -> 'test_y'."""
    base, _, params = test_id.partition("[")
    params = params.removesuffix("]").removeprefix(host_id).removeprefix("-")
    return f"{base}[{params}]" if params else base


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, kind in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        node = case.find(tag)
        if node is not None:
            text = (node.get("message") or node.text or "").strip()
            return kind, text.splitlines()[0][:300] if text else ""
    # a passing check can leave a note (record_property("note", ...)): how it was checked
    note = next((p.get("value", "") for p in case.iter("property") if p.get("name") == "note"), "")
    return "passed", note[:300]


def model_files(opts: VerifyOptions) -> list[str]:
    """The local files verify carries to each board: a --model file and its --model-card."""
    return [f for f in (opts.model, opts.model_card) if f and f != "z2color" and os.path.isfile(f)]


def remote_model_path(path: str, bench_dir: str) -> str:
    # where the acceptance role's acceptance_model_files land too (roles/acceptance/tasks/main.yml)
    return f"{bench_dir}/models/{os.path.basename(path)}"


def carry_model_files(cfg: Path, name: str, opts: VerifyOptions, bench_dir: str, timeout: float) -> str:
    """Copy the model (and card) to the board over the control master; '' or why it failed."""
    for path in model_files(opts):
        dest = remote_model_path(path, bench_dir)
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        cmd = (
            f"mkdir -p {shlex.quote(dest.rsplit('/', 1)[0])} && base64 -d > {shlex.quote(dest + '.part')}"
            f" && mv {shlex.quote(dest + '.part')} {shlex.quote(dest)}"
        )
        proc = _ssh(cfg, name, cmd, timeout, stdin=data)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"could not copy {path} to {dest}: {last[0]}"
    return ""


def bench_command(opts: VerifyOptions, target: float, remote_json: str, bench_dir: str) -> str:
    local = model_files(opts)
    model = remote_model_path(opts.model, bench_dir) if opts.model in local else opts.model
    card = ["--model-card", remote_model_path(opts.model_card, bench_dir)] if opts.model_card in local else []
    argv = [
        "python3",
        "-m",
        "tx2setup.bench",
        "--model",
        model,
        *card,
        "--backends",
        "all" if opts.backend == "auto" else opts.backend,
        "--min-duration",
        f"{opts.duration:g}",
        "--source",
        opts.source,
        "--target-fps",
        f"{target:g}",
        "--json",
        remote_json,
        "--quiet",
    ]
    results_dir = shlex.quote(remote_json.rsplit("/", 1)[0])
    return f"mkdir -p {results_dir} && cd {shlex.quote(bench_dir)} && " + " ".join(shlex.quote(a) for a in argv)


def run_bench(
    cfg: Path, name: str, command: str, remote_json: str, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """Run the benchmark on the board; return its JSON result (or None and why)."""
    try:
        proc = _ssh(cfg, name, command, timeout, tty=True)  # ends with its session (Ctrl-C)
    except subprocess.TimeoutExpired:
        return None, f"benchmark did not finish within {timeout:.0f} s"
    if proc.returncode == 255:
        return None, f"unreachable: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'ssh failed'}"
    try:  # the board's network can fail between the two sessions (net-flaky): unreachable, not a verdict
        fetched = _ssh(cfg, name, f"cat {shlex.quote(remote_json)} && rm -f {shlex.quote(remote_json)}", 60)
    except subprocess.TimeoutExpired:
        return None, "unreachable: the benchmark's result could not be fetched within 60 s"
    if fetched.returncode == 255:
        return (
            None,
            f"unreachable: {fetched.stderr.strip().splitlines()[-1] if fetched.stderr.strip() else 'ssh failed'}",
        )
    if fetched.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"benchmark failed (exit {proc.returncode}): {last[0]}"
    try:
        data: dict[str, Any] = json.loads(fetched.stdout)
    except json.JSONDecodeError as exc:
        return None, f"benchmark wrote no valid JSON ({exc})"
    return data, ""


def measured_identity(p: plan.BoardPlan, bench: dict[str, Any] | None) -> tuple[str, str, list[str]]:
    """(L4T, power mode) as the benchmark measured them on the board, else the plan's;
    plus a note for each one that differs from the plan."""
    cond = (bench or {}).get("conditions") or {}
    planned_mode = f"{p.power_mode_id} {p.power_mode_name}"
    l4t = str(cond.get("l4t") or p.l4t)
    nvp = cond.get("nvpmodel") or {}
    mode = planned_mode
    if nvp.get("name"):
        mode = f"{nvp.get('id') if nvp.get('id') is not None else '?'} {nvp['name']}"
    notes = [f"measured L4T {l4t}, the plan says {p.l4t}"] if l4t != p.l4t else []
    if mode != planned_mode:
        notes.append(f"measured power mode {mode}, the plan says {planned_mode}")
    return l4t, mode, notes


@dataclass(frozen=True)
class Verdict:
    """One board's judgement: PASS, FAIL or ERROR, the figures it rests on, and why."""

    verdict: str
    inference_fps: float | None
    e2e_fps: float | None
    p99_ms: float | None
    margin_pct: float | None
    reason: str


def _figures(bench: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(inference FPS, end-to-end FPS, end-to-end p99 ms) of the backend the benchmark chose."""
    chosen = (bench.get("verdict") or {}).get("backend")
    result = next((r for r in bench.get("results", []) if r.get("backend") == chosen), None)
    if result is None and bench.get("results"):
        result = bench["results"][0]
    if result is None:
        return None, None, None
    e2e_stats = result.get("end_to_end") or {}
    return (result.get("inference") or {}).get("fps"), e2e_stats.get("fps"), e2e_stats.get("p99_ms")


def decide(
    p: plan.BoardPlan,
    target: float,
    checks: list[CheckResult],
    bench: dict[str, Any] | None,
    bench_error: str,
    model: str = "z2color",
) -> Verdict:
    """One board's verdict.

    The benchmark judges on the fastest correct backend (`--backend auto` runs every
    backend the board has). For z2color the verdict is end to end (camera to steering):
    without an end-to-end figure there is no PASS. A backend with wrong output fails the
    board even when another backend is fast enough: it is a broken stack.
    """
    if bench is None:
        return Verdict("ERROR", None, None, None, None, bench_error)
    verdict = bench.get("verdict") or {}
    inf, e2e, p99 = _figures(bench)
    end_to_end = False
    reasons = []
    fps: float | None = None
    if e2e is not None and verdict.get("measure", "end_to_end") == "end_to_end":
        end_to_end = True
        fps = float(e2e)  # the chosen backend's, which the benchmark judged on
    elif model == "z2color":
        reasons.append("no end-to-end figure (the verdict for z2color is camera to steering)")
    else:  # a user's own model may have no camera pipeline: judged on inference, and labelled
        fps = verdict.get("fps", inf)
        if fps is not None:
            reasons.append("inference-only figure (no end-to-end run)")
    if fps is None and not reasons:
        return Verdict("ERROR", inf, e2e, p99, None, "benchmark result has no FPS figure")
    margin = None if fps is None else (float(fps) - target) / target * 100.0
    if fps is not None and fps < target:
        reasons.append(
            f"{'end-to-end' if end_to_end else 'inference-only'} {fps:.1f} FPS is below the target {target:g}"
        )
    incorrect = [r.get("backend", "?") for r in bench.get("results", []) if r.get("correct") is False]
    if incorrect:
        reasons.append(f"incorrect output: {', '.join(incorrect)}")
    failed = [c for c in checks if c.outcome in ("failed", "error")]
    if failed:
        reasons.append(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed[:5])}")
    reasons += measured_identity(p, bench)[2]
    # an inference-only verdict of a user's model can pass; its label stays in the reason
    blocking = [r for r in reasons if not r.startswith("inference-only figure")]
    return Verdict("FAIL" if blocking else "PASS", inf, e2e, p99, margin, "; ".join(reasons))


def board_result(
    p: plan.BoardPlan,
    target: float,
    checks: list[CheckResult],
    bench: dict[str, Any] | None,
    verdict: Verdict,
    run_id: int,
) -> BoardResult:
    """What the history stores for one finished board."""
    l4t, power_mode, _ = measured_identity(p, bench)
    return BoardResult(
        board=p.name,
        module=p.module,
        l4t=l4t,
        power_mode=power_mode,
        checks=tuple(checks),
        inference_fps=verdict.inference_fps,
        e2e_fps=verdict.e2e_fps,
        p99_ms=verdict.p99_ms,
        target_fps=target,
        verdict=verdict.verdict,
        margin_pct=verdict.margin_pct,
        reason=verdict.reason,
        conditions=dict((bench or {}).get("conditions") or {}),
        bench=bench,
        finished_at=time.time(),
        run_id=run_id,
    )


class SharedOrAlone:
    """A readers/writer lock: any number of `shared()` holders at once, or one `alone()`.

    Emulated boards share this host's CPU. A benchmark runs alone (no other board's
    benchmark or checks: torch imports and roscores would load the cores it measures);
    checks of several boards may run together. A waiting benchmark holds back new checks,
    so benchmarks are not starved.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._alone = False
        self._waiting_alone = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._alone and not self._waiting_alone)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._waiting_alone += 1
            self._cond.notify_all()  # lets an observer see that a benchmark waits
            self._cond.wait_for(lambda: not self._alone and self._shared == 0)
            self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()


class _Stopped(Exception):
    """A board that was not started (or not continued) because the run was interrupted."""


@dataclass
class _Run:
    """One verify run's shared state, and the steps each board goes through."""

    opts: VerifyOptions
    fleet: board.Fleet
    workdir: Path
    cfg: Path  # the SSH config every board is reached through
    plan_file: Path
    run_id: int
    note: ProgressFn
    cpu: SharedOrAlone = field(default_factory=SharedOrAlone)  # emulated boards share this host's CPU
    stop: threading.Event = field(default_factory=threading.Event)  # an interrupt: no board starts a step

    def begin(self, b: board.FleetBoard, what: str) -> None:
        if self.stop.is_set():
            raise _Stopped(b.name)
        self.note(b.name, what)

    def step(self, b: board.FleetBoard, what: str, exclusive: bool) -> contextlib.AbstractContextManager[None]:
        self.begin(b, what)
        if not b.emulated:  # real boards have their own CPUs
            return contextlib.nullcontext()
        return self.cpu.alone() if exclusive else self.cpu.shared()

    def run_checks(self, b: board.FleetBoard) -> list[CheckResult]:
        with self.step(b, "checks", exclusive=False):
            host = f"ssh://{b.name}"
            junit = self.workdir / f"{b.name}.checks.xml"
            vault = self.fleet.vault_password_file
            checks = run_checks(host, host, self.plan_file, junit, self.opts.ssh_timeout, self.cfg, vault)
            return [*checks, sudo_check(self.cfg, b.name, b.become_password, self.opts.ssh_timeout)]

    def run_benchmark(self, b: board.FleetBoard, target: float) -> tuple[dict[str, Any] | None, str]:
        where = bench_dir(b)
        remote_json = f"{where}/results/verify-{self.run_id}.json"
        command = bench_command(self.opts, target, remote_json, where)
        with self.step(b, "benchmark", exclusive=True):
            carried = carry_model_files(self.cfg, b.name, self.opts, where, self.opts.ssh_timeout)
            if carried:
                return None, carried
            return run_bench(self.cfg, b.name, command, remote_json, self.opts.ssh_timeout)

    def verify_board(self, b: board.FleetBoard) -> BoardResult:
        """Connect, run the checks, run the benchmark, decide."""
        target = self.opts.target_fps or b.plan.target_fps
        self.begin(b, "connecting")
        unreachable = open_master(self.cfg, b.name, self.opts.connect_timeout)
        checks: list[CheckResult] = []
        if unreachable is not None:
            bench, bench_error = None, f"unreachable: {unreachable}"
        else:
            checks = self.run_checks(b)
            bench, bench_error = self.run_benchmark(b, target)
        if self.stop.is_set():  # an interrupted step's result is not a verdict
            raise _Stopped(b.name)
        verdict = decide(b.plan, target, checks, bench, bench_error, self.opts.model)
        result = board_result(b.plan, target, checks, bench, verdict, self.run_id)
        self.note(b.name, verdict.verdict)
        return result

    def guarded(self, b: board.FleetBoard) -> BoardResult:
        try:
            return self.verify_board(b)
        except BaseException:
            self.stop.set()  # before this future completes: a queued board sees it at once
            raise


def _verify_and_record(run: _Run, history: History) -> list[BoardResult]:
    """Every board in parallel; each finished board is stored at once, atomically, from this
    (the DB's) thread. An interrupt marks the run and starts no further board."""
    results: list[BoardResult] = []
    # Not `with ThreadPoolExecutor`: its exit waits for every queued board, so Ctrl-C
    # would carry on verifying the whole fleet.
    pool = ThreadPoolExecutor(max_workers=max(1, min(run.opts.forks, len(run.fleet.boards))))
    try:
        futures = [pool.submit(run.guarded, b) for b in run.fleet.boards]
        for fut in as_completed(futures):
            result = fut.result()
            history.record_board(run.run_id, result)
            results.append(result)
    except BaseException:
        run.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        history.finish_run(run.run_id, "interrupted")
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for name in run.fleet.names:
            close_master(run.cfg, name)
    return results


def _quiet(name: str, what: str) -> None:
    """No progress wanted."""


def verify(opts: VerifyOptions, progress: ProgressFn | None = None) -> VerifyOutcome:
    """Every board: run the checks, run the benchmark, decide, record (in the history DB)."""
    fleet = board.load(opts.inventory, limit=opts.limit, vault_password_file=opts.vault_password_file)
    sshkeys.require_usable((b.name, b.ssh.key_file) for b in fleet.boards)  # no passphrase prompt mid-run
    # before any board is touched: a vaulted password without its vault password is a
    # user error for the whole run
    fleet = fleet.with_become_passwords(opts.become_password_file)
    with History(opts.db) as history, tempfile.TemporaryDirectory(prefix="tx2v-") as tmp:
        workdir = Path(tmp)
        cfg = write_ssh_config([b.ssh for b in fleet.boards], workdir)
        plan_file = workdir / "plans.json"
        plan_file.write_text(json.dumps(plans_document(fleet)))
        run_id = history.start_run(str(fleet.path), __version__, {k: v for k, v in opts.__dict__.items() if k != "db"})
        run = _Run(opts, fleet, workdir, cfg, plan_file, run_id, progress or _quiet)
        outcome = VerifyOutcome(run_id, _verify_and_record(run, history))
        history.finish_run(run_id, "complete")
    outcome.results.sort(key=lambda r: r.board)
    return outcome
