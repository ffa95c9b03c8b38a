"""Integration: a fleet's life through the CLI: up (idempotent), kill, restart, down.

Uses its own fleet (not the session one) because it kills and restarts boards.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tx2setup.errors import EnvironmentProblem
from tx2setup.matrix import load as load_matrix
from tx2setup.sim import Fleet, base
from tx2setup.sim.procs import ns_init, port_in_use, wait_for

if TYPE_CHECKING:
    from tests.conftest import CliResult

pytestmark = pytest.mark.integration


@pytest.fixture
def own_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from tests.integration.conftest import require_sim, sim_leftovers

    require_sim()
    sim_dir = tmp_path / "fleet"
    monkeypatch.setenv("TX2SETUP_SIM_DIR", str(sim_dir))
    yield sim_dir
    Fleet(sim_dir).down(destroy=True)
    assert not sim_leftovers(sim_dir)


def status(cli: Callable[..., CliResult]) -> dict[str, Any]:
    res = cli("sim", "status", "--json")
    assert res.code == 0, res.err
    data: dict[str, Any] = json.loads(res.out)
    return data


def board_state(cli: Callable[..., CliResult], name: str) -> str:
    return str(next(b["state"] for b in status(cli)["boards"] if b["name"] == name))


def ssh(fleet: Fleet, name: str, command: str) -> subprocess.CompletedProcess[str]:
    """`command` as root on the board: sudo with the login user's password on stdin (no root login)."""
    argv = fleet.board(name).ssh_argv("sudo -S -p '' sh -c " + shlex.quote(command))
    password = base.NORMAL_PASSWORD + "\n"
    return subprocess.run(argv, input=password, capture_output=True, text=True, timeout=60, check=False)


def test_up_is_idempotent_and_never_rebuilds_the_base(own_fleet: Path, cli: Callable[..., CliResult]) -> None:
    res = cli("sim", "up", "--boards", "1", "--module", "agx-orin", "--jetpack", "6.2")
    assert res.code == 0, res.err
    st1 = status(cli)
    (b1,) = st1["boards"]
    assert b1["state"] == "running" and b1["ssh"] is True
    assert st1["http"]["running"] is True
    stamp = (base.read_stamp(Fleet(own_fleet).layout) or {}).get("built_at")
    inode = Fleet(own_fleet).layout.rootfs.stat().st_ino

    res = cli("sim", "up", "--boards", "1", "--module", "agx-orin", "--jetpack", "6.2")
    assert res.code == 0, res.err
    st2 = status(cli)
    assert [b["name"] for b in st2["boards"]] == [b1["name"]]
    assert st2["boards"][0]["pid"] == b1["pid"]  # the running board was left alone
    assert (base.read_stamp(Fleet(own_fleet).layout) or {}).get("built_at") == stamp
    assert Fleet(own_fleet).layout.rootfs.stat().st_ino == inode

    # the same name as another module: refused, one line, nothing changed
    res = cli("sim", "up", "--boards", "1", "--module", "agx-orin", "--jetpack", "5.1.2")
    assert res.code == 2 and "exists as agx-orin on JetPack 6.2" in res.err
    assert res.err.strip().count("\n") == 0


def test_an_outdated_base_is_not_rebuilt_under_running_boards(
    own_fleet: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(own_fleet)
    fleet.up(None)
    inode = fleet.layout.rootfs.stat().st_ino
    monkeypatch.setattr(base, "RECIPE", base.RECIPE + 1)  # this process now wants a newer base
    with pytest.raises(EnvironmentProblem, match="boards run on it"):
        fleet.up(None)
    assert fleet.layout.rootfs.stat().st_ino == inode
    assert all(s.running for s in fleet.status())
    # stopped, the boards still have their disks on the base: still refused, naming them
    names = [b.name for b in fleet.boards()]
    for name in names:
        fleet.stop_board(name)
    # other fleets' running boards (the session's) would be refused first: leave them out
    monkeypatch.setattr(base, "base_in_use", lambda layout: [])
    with pytest.raises(EnvironmentProblem, match="stopped boards have disks on it") as exc:
        fleet.up(None)
    assert all(str(fleet.layout.board_dir(n)) in str(exc.value) for n in names)
    assert fleet.layout.rootfs.stat().st_ino == inode


def test_module_alone_gets_a_jetpack_it_runs(own_fleet: Path, cli: Callable[..., CliResult]) -> None:
    res = cli("sim", "up", "--module", "agx-orin")
    assert res.code == 0, res.err
    (b,) = status(cli)["boards"]
    m = load_matrix()
    assert b["state"] == "running"
    assert b["jetpack"] == [r.jetpack for r in m.releases if "agx-orin" in r.modules][-1]


def test_killed_board_shows_down_and_restart_keeps_its_disk(own_fleet: Path, cli: Callable[..., CliResult]) -> None:
    assert cli("sim", "up", "--boards", "1").code == 0
    fleet = Fleet(own_fleet)
    (b,) = fleet.boards()
    assert (
        ssh(fleet, b.name, "echo kept > /root/marker && apt-get install -y -qq --no-install-recommends less").returncode
        == 0
    )

    # 1. nspawn killed from outside: the PID namespace goes with it
    pid = next(s.pid for s in fleet.status())
    assert pid is not None
    kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert kids
    os.kill(kids[0], signal.SIGKILL)
    assert wait_for(lambda: board_state(cli, b.name) == "down", 15.0)
    assert not port_in_use(b.address, 22)

    res = cli("sim", "up")  # brings the existing fleet back
    assert res.code == 0, res.err
    out = ssh(fleet, b.name, "cat /root/marker; command -v less")
    assert out.stdout.split() == ["kept", "/usr/bin/less"]

    # 2. the board's own init killed (a power cut): nspawn exits, status says down
    from tx2setup.sim.board import stray_pids

    (init,) = [p for p in ns_init(stray_pids(b)) if Path(f"/proc/{p}/comm").read_text().strip() == "systemd"]
    os.kill(init, signal.SIGKILL)
    assert wait_for(lambda: board_state(cli, b.name) == "down", 15.0)
    fleet.start_board(b.name)
    assert board_state(cli, b.name) == "running"
    assert ssh(fleet, b.name, "cat /root/marker").stdout.strip() == "kept"


def test_down_leaves_no_mount_no_process_and_frees_the_port(own_fleet: Path, cli: Callable[..., CliResult]) -> None:
    from tests.integration.conftest import sim_leftovers

    assert cli("sim", "up", "--boards", "2", "--module", "xavier-nx", "--jetpack", "5.1.2").code == 0
    st = status(cli)
    assert [b["state"] for b in st["boards"]] == ["running", "running"]
    assert sim_leftovers(own_fleet)  # the check sees a live fleet...
    res = cli("sim", "inventory", "-o", str(own_fleet / "x.ini"))
    assert res.code == 0 and (own_fleet / "x.ini").read_text().count("ansible_host=") == 2
    ssh_cli = subprocess.run(
        [str(Path(sys.executable).with_name("tx2setup")), "sim", "ssh", "xavier-nx-2", "hostname"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ssh_cli.stdout.strip() == "xavier-nx-2", ssh_cli.stderr
    port = st["http"]["port"]
    res = cli("sim", "down")
    assert res.code == 0 and "2 board(s) down" in res.out
    assert not sim_leftovers(own_fleet)  # ...and nothing once it is down
    assert not port_in_use("127.0.0.1", port)
    assert [b["state"] for b in status(cli)["boards"]] == ["down", "down"]
    assert (own_fleet / "boards" / "xavier-nx-1" / "upper").is_dir()  # disks kept until --destroy
    res = cli("sim", "down", "--destroy")
    assert res.code == 0
    assert not (own_fleet / "boards").exists()
