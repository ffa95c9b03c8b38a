"""Faults injected into emulated boards mid-provision (`tx2setup sim fault`, issue 13).

One scenario on four fresh boards, faults in parallel where they do not interfere, so
the whole file costs three `provision --tags jetson_base` runs:

  cut     power cut while dpkg configures packages (timed by that event on the board),
          then apt's locks held (as unattended-upgrades at first boot) when the re-run starts
  net     every packet to and from its address dropped from the start of the first run
  full    its writable layer full from the start of the first run
  calm    no fault: it must finish the first run whatever happens to the others

Then: the faults clear, a plain re-run converges on every board (the roles finish the
interrupted dpkg and wait for the lock), and the run after it changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tx2setup import provision
from tx2setup.sim import SimBoard, fault

pytestmark = pytest.mark.integration


def _cut_when_dpkg_configures(fleet: Any, name: str, done: list[str]) -> None:
    try:
        fault.wait_for_process(fleet, name, ("dpkg",), timeout=600, argv_has="--configure")
        done.append(fault.inject(fleet, name, "power-cut"))
    except Exception as exc:  # the test asserts on what happened
        done.append(f"no cut: {exc}")


def _journal(sim_fleet: Any, b: SimBoard) -> str:
    _, out, _ = sim_fleet.run(b, "ls /var/lib/dpkg/updates | grep -E '^[0-9]+$' || true")
    return str(out).strip()


def _interrupted(sim_fleet: Any, b: SimBoard) -> str:
    """What a cut dpkg run left: its journal, or packages it left half done (`dpkg --audit`).
    Which one depends on the instant of the cut (dpkg empties its journal at each
    checkpoint); jetson_base repairs both (roles/jetson_base/tasks/apt_repair.yml)."""
    _, audit, _ = sim_fleet.run(b, "dpkg --audit || true", user="root")
    return (_journal(sim_fleet, b) + "\n" + str(audit)).strip()


def test_faults_mid_provision_then_plain_reruns_converge(
    sim_fleet: Any, fresh_board: Callable[..., tuple[SimBoard, Path]], private_cache: Path
) -> None:
    boards = {role: fresh_board("tx2", "4.6.4")[0] for role in ("cut", "net", "full", "calm")}
    names = [b.name for b in boards.values()]
    inventory = sim_fleet.fleet.write_inventory(sim_fleet.sim_dir / "faults.ini", names=names)
    fleet = sim_fleet.fleet
    fault.inject(fleet, boards["net"].name, "net-down")
    fault.inject(fleet, boards["full"].name, "disk-full")
    cut: list[str] = []
    watcher = threading.Thread(target=_cut_when_dpkg_configures, args=(fleet, boards["cut"].name, cut))
    watcher.start()
    try:
        first = provision.run(inventory, tags="jetson_base")
    finally:
        watcher.join(timeout=30)
    hosts = first.hosts
    assert cut and cut[0].startswith(f"board {boards['cut'].name}: power-cut"), cut
    # the other boards finish; each faulty one is one line naming what failed
    assert hosts[boards["calm"].name].status == "ok", hosts[boards["calm"].name]
    assert hosts[boards["calm"].name].changed >= 1
    for role in ("cut", "net", "full"):
        h = hosts[boards[role].name]
        assert h.status in ("unreachable", "failed"), (role, h)
        assert h.message and "\n" not in h.message, (role, h.message)
    assert hosts[boards["net"].name].status == "unreachable"
    assert not first.ok
    assert Path(first.record).is_file()  # the run's record survives its failures

    for role in ("cut", "net", "full"):
        assert fault.clear(fleet, boards[role].name), role
    # the cut left dpkg's journal (apt refuses every install until `dpkg --configure -a`) or
    # packages half configured
    assert _interrupted(sim_fleet, boards["cut"]), "the power cut did not interrupt dpkg"
    fault.inject(fleet, boards["cut"].name, "apt-locked", duration=20)

    second = provision.run(inventory, tags="jetson_base")
    assert second.ok, {h.name: (h.status, h.failed_task, h.message) for h in second.bad_hosts}
    assert not _interrupted(sim_fleet, boards["cut"])
    third = provision.run(inventory, tags="jetson_base")
    assert third.ok
    assert {n: third.hosts[n].changed for n in names} == dict.fromkeys(names, 0)
    assert Path(first.record).is_file() and Path(second.record).is_file()


def test_fault_kinds_undo_cleanly(sim_fleet: Any) -> None:
    """Each kind does what it says on a running board and `clear` undoes it (seconds)."""
    b = sim_fleet.board(module="xavier-nx")
    fleet = sim_fleet.fleet
    name = b.name
    try:
        fault.inject(fleet, name, "sshd-down")
        with pytest.raises(OSError):
            sim_fleet.connect(b).close()
        fault.clear(fleet, name)
        assert sim_fleet.run(b, "true")[0] == 0

        fault.inject(fleet, name, "disk-full")
        rc, out, _ = sim_fleet.run(b, "touch /var/tmp/x 2>&1; df --output=avail /var | tail -1")
        assert "No space left on device" in out and out.split()[-1] == "0", out
        fault.clear(fleet, name)
        assert sim_fleet.run(b, "touch /var/tmp/x && rm /var/tmp/x")[0] == 0

        fault.inject(fleet, name, "apt-locked", duration=30)
        rc, out, err = sim_fleet.run(b, "apt-get -o DPkg::Lock::Timeout=1 install -y --no-download hello")
        assert rc != 0 and "held by process" in (out + err) and "(unattended-upgr)" in (out + err), out + err
        fault.clear(fleet, name)
        rc, out, err = sim_fleet.run(b, "apt-get -o DPkg::Lock::Timeout=5 check")
        assert rc == 0, out + err

        with pytest.raises(Exception, match="shares the host's clock"):
            fault.inject(fleet, name, "clock-wrong")
        with pytest.raises(Exception, match="not one of"):
            fault.inject(fleet, name, "meteor")
    finally:
        fault.clear(fleet, name)
    assert fault.active(fleet, name) == {}


def test_net_faults_touch_only_that_board(sim_fleet: Any) -> None:
    victim, other = sim_fleet.board(module="tx2"), sim_fleet.board(module="xavier-nx")
    fleet = sim_fleet.fleet
    try:
        fault.inject(fleet, victim.name, "net-down", duration=60)
        with pytest.raises(OSError):
            sim_fleet.connect(victim).close()
        assert sim_fleet.run(other, "true")[0] == 0  # its neighbour on the same loopback is untouched
    finally:
        fault.clear(fleet, victim.name)
    assert sim_fleet.run(victim, "true")[0] == 0
