"""Emulated boards for integration tests (`tx2setup sim`, issue 3).

`sim_fleet` (session scope) brings up two boards of different modules and JetPacks in
its own TX2SETUP_SIM_DIR and yields a SimFleetHandle:

    handle.boards       [SimBoard(tx2-1: tx2, 4.6.4), SimBoard(xavier-nx-1: xavier-nx, 5.1.2)]
    handle.inventory    Path of a standard INI inventory for both (fleet.load() accepts it)
    handle.board(module="tx2")   the board of that module (or name=...)
    handle.connect(board)        a paramiko SSHClient as the login user nvidia, host key checked (RejectPolicy)
    handle.run(board, "cmd")     (exit status, stdout, stderr) over that SSH; as root through
                                 sudo and its password (no root login, as on a real board),
                                 or user="nvidia" for the login user itself
    handle.fleet        the tx2setup.sim.Fleet (stop_board, start_board, status, ...)

At the end it runs `down(destroy=True)` and asserts that no mount and no process of the
fleet is left. `fresh_board` is a factory for extra boards that are destroyed after the
test: `board, inventory = fresh_board("tx2", "4.6.4")`.

Both skip (with the reason) when not root or when debootstrap / systemd-nspawn is missing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tx2setup import cache
from tx2setup.sim import BoardSpec, Fleet, SimBoard, httpd
from tx2setup.sim.base import NORMAL_PASSWORD
from tx2setup.sim.control import State
from tx2setup.sim.procs import alive, port_in_use

SIM_FLEET_SPECS = [BoardSpec("tx2", "4.6.4"), BoardSpec("xavier-nx", "5.1.2")]


def sim_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "emulated boards need root"
    for tool in ("debootstrap", "systemd-nspawn", "unshare", "dpkg-deb", "dpkg-scanpackages", "gpg"):
        if shutil.which(tool) is None:
            return f"emulated boards need {tool} (scripts/setup.sh installs it)"
    return None


def require_sim() -> None:
    reason = sim_skip_reason()
    if reason is not None:
        pytest.skip(reason)


def _open_files(pid_dir: Path) -> list[str]:
    out: list[str] = []
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        return out
    for fd in fds:
        try:
            out.append(os.readlink(fd))
        except OSError:
            continue
    return out


def sim_leftovers(sim_dir: Path) -> list[str]:
    """Mounts (any process's /proc/*/mountinfo), processes (cmdline) and open files
    (/proc/*/fd: the HTTP stand-in's cmdline names only the shared upstream dir, but it
    logs into the fleet's dir) that mention sim_dir."""
    needle = str(sim_dir)
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            mountinfo = (entry / "mountinfo").read_text(errors="replace")
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in mountinfo:
            found.append(f"pid {entry.name} has a mount of {needle}")
        if needle in argv:
            found.append(f"pid {entry.name} runs {argv.strip()}")
        found += [f"pid {entry.name} ({argv.strip()}) has {f} open" for f in _open_files(entry) if needle in f]
    return found


def upstream_leftover(fleet: Fleet, port: int | None, http_pid: int | None) -> str | None:
    """The fleet's HTTP stand-in, if it still runs or still holds the fleet's port."""
    if httpd.is_ours(http_pid, fleet.layout.upstream):
        return f"the HTTP stand-in (pid {http_pid}) still runs"
    if port is not None and port_in_use(httpd.ADDRESS, port) and http_pid is not None and alive(http_pid):
        return f"{httpd.ADDRESS}:{port} is still held while pid {http_pid} lives"
    return None


@dataclass
class SimFleetHandle:
    fleet: Fleet
    boards: list[SimBoard]
    inventory: Path
    sim_dir: Path

    def board(self, module: str | None = None, name: str | None = None) -> SimBoard:
        for b in self.boards:
            if (module is None or b.module == module) and (name is None or b.name == name):
                return b
        raise LookupError(f"no board module={module} name={name} in {[b.name for b in self.boards]}")

    @property
    def upstream_url(self) -> str:
        return self.fleet.upstream().base_url

    def connect(self, board: SimBoard, user: str | None = None) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(str(board.known_hosts_path))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            board.address,
            username=user or board.user,
            key_filename=str(board.key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        return client

    def run(self, board: SimBoard, command: str, timeout: float = 300.0, user: str = "root") -> tuple[int, str, str]:
        client = self.connect(board)
        as_root = user == "root"
        if as_root:  # sudo reads the password from stdin; the command gets no input
            command = "sudo -S -p '' sh -c " + shlex.quote(command)
        elif user != board.user:
            raise ValueError(f"run as root or {board.user}, not {user}")
        try:
            stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
            if as_root:
                stdin.write(NORMAL_PASSWORD + "\n")
                stdin.flush()
                stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            return stdout.channel.recv_exit_status(), out, err
        finally:
            client.close()


def _caffe_on_one_board(inventory: Path, boards: list[SimBoard]) -> None:
    """The real Caffe build costs ~430 CPU-seconds a board (docs/benchmarks.md): the session
    builds it on the first board (the TX2) only; the others list their other components."""
    for b in boards[1:]:
        text = inventory.read_text()
        line = next(ln for ln in text.splitlines() if ln.startswith(b.name + " "))
        if "components=" not in line:
            inventory.write_text(text.replace(line, line + " components=ros,zed_sdk,pytorch", 1))


@pytest.fixture(scope="session")
def sim_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleetHandle]:
    require_sim()
    sim_dir = tmp_path_factory.mktemp("simfleet")
    fleet = Fleet(sim_dir)
    try:
        boards = fleet.up(list(SIM_FLEET_SPECS))
        # not the fleet's default inventory.ini, which every `up` (fresh_board) rewrites
        inventory = fleet.write_inventory(sim_dir / "session.ini")
        _caffe_on_one_board(inventory, boards)
        yield SimFleetHandle(fleet=fleet, boards=boards, inventory=inventory, sim_dir=sim_dir)
    finally:
        http = State.load(fleet.layout.state)
        fleet.down(destroy=True)
    left = sim_leftovers(sim_dir)
    assert not left, f"sim_fleet teardown left: {left}"
    assert upstream_leftover(fleet, http.port, http.http_pid) is None


def fresh_pair(
    sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[tuple[Any, list[SimBoard], Path]]:
    """Two fresh TX2 boards (JetPack 4.6.4) of a module's own, their inventory, and a private
    cache root made after the boards are up (the sim keeps its own paths), so the run's
    servers start empty; the boards are destroyed afterwards. For a module fixture to yield from."""
    names = [f"{prefix}-{i}-{os.getpid() % 10000}" for i in (1, 2)]
    sim_fleet.fleet.up([BoardSpec("tx2", "4.6.4", n) for n in names])
    boards = [sim_fleet.fleet.board(n) for n in names]
    inventory = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / f"{prefix}.ini", names=names)
    root = tmp_path_factory.mktemp(f"{prefix}-cache")
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(root)
    try:
        yield sim_fleet, boards, inventory
    finally:
        if old is None:
            os.environ.pop(cache.CACHE_ENV, None)
        else:
            os.environ[cache.CACHE_ENV] = old
        for name in names:
            sim_fleet.fleet.destroy_board(name)
        inventory.unlink(missing_ok=True)


@pytest.fixture
def private_cache(tmp_path: Path) -> Iterator[Path]:
    """A cache directory of the test's own (TX2SETUP_CACHE) for what the test runs in-process."""
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(tmp_path / "cache")
    yield tmp_path / "cache"
    if old is None:
        os.environ.pop(cache.CACHE_ENV, None)
    else:
        os.environ[cache.CACHE_ENV] = old


@pytest.fixture
def fresh_board(sim_fleet: SimFleetHandle) -> Iterator[Callable[..., tuple[SimBoard, Path]]]:
    """Factory: a new board in the session's fleet, with an inventory of just it; destroyed after the test."""
    made: list[str] = []

    def make(module: str = "tx2", jetpack: str = "4.6.4") -> tuple[SimBoard, Path]:
        name = f"fresh-{uuid.uuid4().hex[:6]}"
        sim_fleet.fleet.up([BoardSpec(module, jetpack, name)])
        made.append(name)
        board = sim_fleet.fleet.board(name)
        inventory = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / f"{name}.ini", names=[name])
        return board, inventory

    yield make
    for name in made:
        sim_fleet.fleet.destroy_board(name)
        (sim_fleet.sim_dir / f"{name}.ini").unlink(missing_ok=True)


# The session's two boards go from fresh (sim tests) to provisioned (provision tests) to
# verified (verify tests), so the modules run in that order whatever their names; tests
# outside this folder (no boards) run first.
STAGES = ("test_sim_", "test_provision", "test_verify")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent

    def stage(item: pytest.Item) -> int:
        if here not in item.path.parents:
            return -1
        return next((i for i, prefix in enumerate(STAGES) if item.path.name.startswith(prefix)), len(STAGES))

    items.sort(key=stage)  # stable: file and definition order is kept within a stage
