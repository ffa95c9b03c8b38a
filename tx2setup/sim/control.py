"""The fleet: bring boards up and down, report on them, write their inventory.

All state lives in the fleet's dir (paths.Layout.fleet): fleet.json (port, HTTP server
pid, board order, upstream facts), one dir per board, the SSH key and known_hosts.
Every verb takes the fleet lock, so two `tx2setup sim` runs never interleave.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tx2setup.errors import EnvironmentProblem, UserError
from tx2setup.matrix import Matrix
from tx2setup.matrix import load as load_matrix
from tx2setup.sim import base, board, httpd, upstream
from tx2setup.sim import inventory as inv
from tx2setup.sim.board import SimBoard, SimBoardStatus
from tx2setup.sim.hostcmd import require_root, require_tools, run
from tx2setup.sim.locking import locked
from tx2setup.sim.paths import Layout
from tx2setup.sim.procs import alive, children_map, logins_open, port_in_use, signal_pid, ssh_banner, wait_for
from tx2setup.sim.spec import BoardSpec, assign_names, check, from_args

BOOT_TIMEOUT = 180.0  # seconds until the user can log in; ~2 s on an idle 2-core host, minutes under load (32 boards)


@dataclass
class State:
    port: int | None = None
    http_pid: int | None = None
    boards: list[str] = field(default_factory=list)
    torch_wheel: str | None = None
    torch_version: str | None = None

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError as exc:
            raise EnvironmentProblem(f"{path}: unreadable fleet state ({exc}); `tx2setup sim down --destroy`") from None
        return cls(
            **{k: raw.get(k) for k in ("port", "http_pid", "torch_wheel", "torch_version")},
            boards=raw.get("boards", []),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        os.replace(tmp, path)


class Fleet:
    """One fleet of emulated boards (its state dir: TX2SETUP_SIM_DIR or the default)."""

    def __init__(self, sim_dir: Path | str | None = None, matrix: Matrix | None = None) -> None:
        self.layout = Layout.default(sim_dir)
        self.matrix = matrix or load_matrix()
        # seconds from launch to the SSH banner of each board the last start booted
        self.boot_seconds: dict[str, float] = {}
        self.warnings: list[str] = []  # one line each, for the command to print

    # ---- reading --------------------------------------------------------------------
    def _state(self) -> State:
        return State.load(self.layout.state)

    def boards(self) -> list[SimBoard]:
        return [board.load_board(self.layout, n) for n in self._state().boards]

    def board(self, name: str) -> SimBoard:
        if name not in self._state().boards:
            known = ", ".join(self._state().boards) or "none"
            raise UserError(f"{self.layout.fleet}: no emulated board {name!r} (boards: {known})")
        return board.load_board(self.layout, name)

    def upstream(self) -> inv.Upstream:
        st = self._state()
        return inv.Upstream(
            port=st.port or httpd.DEFAULT_PORT, torch_wheel=st.torch_wheel, torch_version=st.torch_version
        )

    def status(self) -> list[SimBoardStatus]:
        require_root()
        out = []
        for b in self.boards():
            pid = board.recorded_pid(b)
            if pid is not None:
                ssh = ssh_banner(b.address)
                state = "running" if ssh else "starting"
            else:
                ssh = False
                state = "stray" if board.stray_pids(b) else "down"
            out.append(SimBoardStatus(board=b, state=state, pid=pid, ssh=ssh))
        return out

    def http_running(self) -> bool:
        return httpd.is_ours(self._state().http_pid, self.layout.upstream)

    # ---- changing -------------------------------------------------------------------
    def up(self, specs: list[BoardSpec] | None = None) -> list[SimBoard]:
        """Make the fleet hold (at least) these boards and bring every board of it up.

        Idempotent: boards that exist are reused (started if down), running ones are left
        alone, and the base is never rebuilt under them.
        """
        require_root()
        require_tools()
        with locked(self.layout.fleet_lock):
            st = self._state()
            existing = {b.name: b for b in self.boards()}
            if specs is None:
                specs = [] if existing else from_args(1, None, None, self.matrix)
            specs = assign_names(list(specs))
            for i, s in enumerate(specs):  # validate all before changing anything
                check(s, f"board {s.name or i}", self.matrix)
                old = existing.get(s.name or "")
                if old is not None and (old.module, old.jetpack) != (s.module, s.jetpack):
                    raise UserError(
                        f"board {s.name}: exists as {old.module} on JetPack {old.jetpack}, not {s.module} on "
                        f"{s.jetpack}; `tx2setup sim down --destroy` first or name the new board differently"
                    )
            stamp = base.ensure_base(self.layout)
            facts = upstream.ensure(self.layout, self.matrix)
            if facts.torch_wheel is None:
                self.warnings.append(upstream.missing_wheel_warning())
            st.torch_wheel, st.torch_version = facts.torch_wheel, facts.torch_version
            self._ensure_key()
            self._ensure_http(st)
            assert st.port is not None
            for s in specs:
                if s.name not in existing:
                    assert s.name is not None
                    index = self._claim_address(s.name)
                    board.create(
                        self.layout,
                        self.matrix,
                        s.name,
                        s.module,
                        s.jetpack,
                        index,
                        f"http://127.0.0.1:{st.port}/jetson",
                        stamp.get("recipe"),
                    )
                    st.boards.append(s.name)
            st.save(self.layout.state)
            boards = [board.load_board(self.layout, n) for n in st.boards]
            self._start(boards)
            self._write_known_hosts(boards)
            self._write_inventory(self.layout.inventory, boards)
            return boards

    def start_board(self, name: str) -> SimBoard:
        require_root()
        with locked(self.layout.fleet_lock):
            b = self.board(name)
            st = self._state()
            self._ensure_http(st)
            st.save(self.layout.state)
            self._start([b])
            return b

    def stop_board(self, name: str) -> None:
        require_root()
        with locked(self.layout.fleet_lock):
            board.stop(self.board(name))

    def destroy_board(self, name: str) -> None:
        require_root()
        with locked(self.layout.fleet_lock):
            b = self.board(name)
            board.destroy(b)
            self._release_address(b)
            st = self._state()
            st.boards.remove(name)
            st.save(self.layout.state)
            self._write_known_hosts(self.boards())

    def down(self, destroy: bool = False) -> None:
        """Stop every board and the HTTP server; with destroy, delete the fleet's disks too."""
        require_root()
        if not self.layout.fleet.exists():
            return
        with locked(self.layout.fleet_lock):
            st = self._state()
            boards = self.boards()
            # power all off at once, then wait for each: N boards take as long as one
            for b in boards:
                pid = board.recorded_pid(b)
                if pid is not None:
                    for kid in children_map().get(pid, []):
                        signal_pid(kid, signal.SIGTERM)
            for b in boards:
                board.stop(b)
            httpd.stop(st.http_pid, self.layout.upstream)
            st.http_pid = None
            st.save(self.layout.state)
            if destroy:
                for b in boards:
                    self._release_address(b)
                for child in self.layout.fleet.iterdir():
                    if child.name != self.layout.fleet_lock.name:
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if destroy:
            self.layout.fleet_lock.unlink(missing_ok=True)

    def write_inventory(self, path: Path | str | None = None, names: list[str] | None = None) -> Path:
        boards = self.boards()
        if names is not None:
            boards = [b for b in boards if b.name in names]
        if not boards:
            raise UserError(f"{self.layout.fleet}: no emulated boards (run `tx2setup sim up` first)")
        target = Path(path) if path is not None else self.layout.inventory
        return self._write_inventory(target, boards)

    # ---- helpers --------------------------------------------------------------------
    def _write_inventory(self, target: Path, boards: list[SimBoard]) -> Path:
        vault = self._ensure_vault_password()
        text = inv.render(boards, self.upstream(), self.layout.key, self.layout.known_hosts, self.matrix, vault)
        target.parent.mkdir(parents=True, exist_ok=True)
        become = target.parent / inv.BECOME_VARS
        header = inv.BECOME_HEADER.format(fleet=self.layout.fleet)
        if become.exists() and not become.read_text(encoding="utf-8", errors="replace").startswith(header):
            raise UserError(
                f"{become}: exists and is not this fleet's (another fleet's inventory, or yours): "
                "write the inventory into another directory"
            )
        become.parent.mkdir(parents=True, exist_ok=True)
        tmp = become.with_name(become.name + ".tmp")
        tmp.write_text(inv.become_vars(base.NORMAL_PASSWORD, vault.read_text().strip(), self.layout.fleet))
        os.chmod(tmp, 0o600)
        os.replace(tmp, become)
        target.write_text(text)
        return target

    def _ensure_vault_password(self) -> Path:
        """The fleet's vault password (random, 0600), made on first use."""
        path = self.layout.vault_password
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        return path

    def _ensure_key(self) -> None:
        key = self.layout.key
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(key.parent, 0o700)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tx2setup-sim", "-f", str(key)], "ssh-keygen")

    def _ensure_http(self, st: State) -> None:
        if httpd.is_ours(st.http_pid, self.layout.upstream):
            return
        # keep the port the boards were set up with; pick one only for a new fleet
        st.port = st.port or httpd.pick_port()
        st.http_pid = httpd.start(self.layout.upstream, st.port, self.layout.http_log)
        st.save(self.layout.state)

    def _claim_address(self, name: str) -> int:
        """The lowest board index whose address no fleet on this host holds or listens on."""
        claims = self.layout.claims
        with locked(self.layout.host_lock):
            claims.mkdir(parents=True, exist_ok=True)
            for index in range(1, board.MAX_INDEX + 1):
                addr = board.address_of(index)
                claim = claims / addr
                if claim.exists():
                    owner = Path(claim.read_text().strip())
                    if (owner / "board.json").exists() or owner == self.layout.board_dir(name):
                        continue
                if port_in_use(addr, 22):
                    continue
                claim.write_text(f"{self.layout.board_dir(name)}\n")
                return index
        raise EnvironmentProblem(f"no free loopback address for board {name} (127.0.1.11 to .250 are taken)")

    def _release_address(self, b: SimBoard) -> None:
        claim = self.layout.claims / b.address
        try:
            if Path(claim.read_text().strip()) == b.board_dir:
                claim.unlink()
        except OSError:
            pass

    def _start(self, boards: list[SimBoard]) -> None:
        starting: dict[str, int] = {}
        launched: dict[str, float] = {}
        recipe = (base.read_stamp(self.layout) or {}).get("recipe")
        for b in boards:
            if board.recorded_pid(b) is not None:
                continue
            if b.base_recipe is not None and b.base_recipe != recipe:
                raise EnvironmentProblem(
                    f"board {b.name}: its disk was made on base recipe {b.base_recipe}, the base is now "
                    f"recipe {recipe}; `tx2setup sim down --destroy` and bring the fleet up again"
                )
            board.kill_strays(b)
            board.refresh_tools(self.layout, b, self.matrix)
            if port_in_use(b.address, 22):
                raise EnvironmentProblem(f"board {b.name}: {b.address}:22 is taken by another program")
            launched[b.name] = time.monotonic()
            starting[b.name] = board.launch(self.layout, b)
        pending = [b for b in boards if b.name in starting]
        answered: dict[str, float] = {}

        def watch(b: SimBoard) -> None:
            # one watcher per board, so a board whose banner is slow never delays the
            # probe (and the measured boot time) of another.
            # sshd answering is not enough: until systemd-user-sessions removes /run/nologin,
            # pam_nologin refuses every login but root's ("System is booting up"), and the
            # boards log in as the default user, as a freshly flashed Jetson's do
            up = wait_for(
                lambda: (ssh_banner(b.address) and logins_open(starting[b.name])) or not alive(starting[b.name]),
                BOOT_TIMEOUT,
            )
            if up and alive(starting[b.name]):
                answered[b.name] = time.monotonic() - launched[b.name]

        if pending:
            with ThreadPoolExecutor(max_workers=min(len(pending), 64)) as pool:
                list(pool.map(watch, pending))
        self.boot_seconds = {n: round(t, 2) for n, t in answered.items()}
        failed = [
            b
            for b in pending
            if b.name not in answered and not (ssh_banner(b.address) and logins_open(starting[b.name]))
        ]
        for b in failed:
            board.stop(b)
        if failed:
            b = failed[0]
            tail = _last_line(b.board_dir / "console.log")
            raise EnvironmentProblem(
                f"board {b.name} did not let its user log in over SSH on {b.address}:22 "
                f"within {BOOT_TIMEOUT:g} s: {tail} "
                f"(log: {b.board_dir / 'console.log'})"
            )

    def _write_known_hosts(self, boards: list[SimBoard]) -> None:
        lines = [board.host_key_line(b) for b in boards]
        self.layout.known_hosts.write_text("".join(f"{ln}\n" for ln in lines))


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no console log"
    return lines[-1] if lines else "empty console log"
