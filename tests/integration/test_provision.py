"""`tx2setup provision` against emulated boards: real Ansible over real SSH.

The tests share the session's two boards (a TX2 on JetPack 4.6.4 and a Xavier NX on
5.1.2) and run in file order: check mode on the fresh boards, the full run, the no-op
re-run, a corrupted cache, then a board lost mid-run. Every claim comes from
`runner.stats` (through ProvisionResult) or from the boards themselves over SSH.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tx2setup import cache, fleet, plan, provision
from tx2setup.errors import ChecksumError

pytestmark = pytest.mark.integration

MARKERS = [  # files the play writes (the first one a flashed board already has)
    "/etc/apt/sources.list.d/nvidia-l4t-apt-source.list",
    "/etc/apt/preferences.d/tx2setup-jetpack",
    "/etc/profile.d/tx2setup-cuda.sh",
    "/etc/profile.d/tx2setup-ros.sh",
    "/opt/tx2setup/tx2setup/bench/__main__.py",
]


@pytest.fixture(scope="module")
def env(sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A private cache root for this module; the plans of the session's boards."""
    root = tmp_path_factory.mktemp("provision-cache")
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(root)
    plans = {p.name: p for p in plan.resolve(fleet.load(sim_fleet.inventory))}
    yield {"fleet": sim_fleet, "inventory": sim_fleet.inventory, "plans": plans, "root": root}
    if old is None:
        os.environ.pop(cache.CACHE_ENV, None)
    else:
        os.environ[cache.CACHE_ENV] = old


def sh(env: dict[str, Any], name: str, command: str, user: str = "root") -> tuple[int, str]:
    board = env["fleet"].board(name=name)
    rc, out, err = env["fleet"].run(board, command, user=user)
    return rc, out + err


def fingerprint(env: dict[str, Any], name: str) -> str:
    """What the play would change, as text: the marker files' hashes and the package list."""
    paths = " ".join(shlex.quote(p) for p in MARKERS)
    _, out = sh(env, name, f"for f in {paths}; do sha256sum $f 2>/dev/null || echo absent $f; done; dpkg -l | md5sum")
    return out


def test_check_mode_reports_changes_and_makes_none(env: dict[str, Any]) -> None:
    before = {name: fingerprint(env, name) for name in env["plans"]}
    result = provision.run(env["inventory"], check=True)
    assert result.check
    env["check_upstream_bytes"] = result.upstream_bytes  # check mode fills the cache too
    for name in env["plans"]:
        host = result.hosts[name]
        assert host.status == "ok", (host.failed_task, host.message)
        assert host.changed > 0, f"{name}: check mode on a fresh board reported no change"
        assert fingerprint(env, name) == before[name], f"{name}: --check changed the board"
        assert "absent /etc/profile.d/tx2setup-cuda.sh" in before[name]
        rc, _ = sh(env, name, "python3 -c 'import torch'")
        assert rc != 0, f"{name}: --check installed torch"


@pytest.fixture(scope="module")
def provisioned(env: dict[str, Any]) -> provision.ProvisionResult:
    return provision.run(env["inventory"], forks=8)


def test_full_run_brings_every_board_to_its_plan(env: dict[str, Any], provisioned: provision.ProvisionResult) -> None:
    result = provisioned
    bad = {h.name: (h.status, h.failed_task, h.message) for h in result.bad_hosts}
    assert result.ok, f"boards not provisioned: {bad} (logs in {result.run_dir})"
    record = json.loads(Path(result.record).read_text())
    # the play's first play refuses an empty inventory on the controller (localhost)
    boards = set(record["stats"]["processed"]) - {"localhost"}
    assert record["ok"] is True and boards == set(env["plans"])
    for name, p in env["plans"].items():
        assert Path(result.hosts[name].log).stat().st_size > 0
        # JetPack components at the matrix's versions
        rc, out = sh(env, name, "dpkg-query -W -f='${Package} ${Version}\\n' nvidia-l4t-core nvidia-jetpack tensorrt")
        assert rc == 0, out
        versions = dict(line.split(" ", 1) for line in out.strip().splitlines())
        assert versions["nvidia-l4t-core"].startswith(p.l4t + "-")
        assert versions["nvidia-jetpack"].startswith(p.jetpack + "-")
        assert versions["tensorrt"].startswith(p.tensorrt)
        rc, out = sh(env, name, "bash -lc 'echo $CUDA_HOME'")
        assert out.strip() == f"/usr/local/cuda-{p.cuda}"
        # PyTorch at the planned version, with numpy
        rc, out = sh(env, name, "python3 -c 'import numpy, torch; print(torch.__version__)'")
        assert rc == 0 and out.strip().split("+")[0] == p.torch_version, out
        # ROS: a real roscore answers in a login shell
        rc, out = sh(
            env,
            name,
            "bash -lc 'export ROS_MASTER_URI=http://127.0.0.1:11398; (roscore -p 11398 >/tmp/rc.log 2>&1 &) ;"
            " for i in $(seq 100); do rosparam get /run_id 2>/dev/null && break; sleep 0.2; done;"
            ' pkill -INT -f "roscore -p 11398"\'',
            # as the login user, as on the car: as root, the sudo wrapper's own command line
            # matches the pkill pattern and is killed with roscore
            user="nvidia",
        )
        assert rc == 0 and len(out.strip()) >= 8, f"{name}: roscore did not answer: {out}"
        # Caffe and the ZED SDK
        if "caffe" in p.components:  # built on one session board only (conftest)
            rc, out = sh(env, name, "bash -lc 'caffe --version && python3 -c \"import caffe\"'")
            assert rc == 0 and p.caffe_version in out, out
        if p.zed_sdk_version:
            rc, out = sh(env, name, "grep -h '#define ZED_SDK_M' /usr/local/zed/include/sl/Camera.hpp")
            major, minor = p.zed_sdk_version.split(".")[:2]
            assert f"MAJOR_VERSION {major}" in out and f"MINOR_VERSION {minor}" in out, out
        # the acceptance harness, runnable on its own
        rc, out = sh(env, name, "cd /opt/tx2setup && python3 -m tx2setup.bench --help")
        assert rc == 0, out
    # each artifact crossed the upstream link once (in the check run), boards got it from the cache
    lock = json.loads(cache.lock_path_for(env["inventory"]).read_text())
    total = sum(a["size"] for a in lock["artifacts"].values())
    assert env.get("check_upstream_bytes", 0) + result.upstream_bytes == total
    assert result.served_bytes >= total


def test_second_run_changes_nothing(env: dict[str, Any], provisioned: provision.ProvisionResult) -> None:
    assert provisioned.ok
    again = provision.run(env["inventory"], forks=8)
    assert again.ok
    assert {h.name: h.changed for h in again.hosts.values()} == dict.fromkeys(env["plans"], 0)
    assert again.upstream_bytes == 0


GATED = ("jetson_base", "jetpack", "ros", "zed_sdk", "caffe", "pytorch", "acceptance")


def probes(result: provision.ProvisionResult) -> dict[tuple[str, str], dict[str, Any]]:
    """What each role's converged probe answered in this run: {(board, role): module result}."""
    events = Path(result.run_dir) / "runner" / "artifacts" / "run" / "job_events"
    out = {}
    for f in events.glob("*.json"):
        e = json.loads(f.read_text())
        data = e.get("event_data", {})
        if e.get("event") == "runner_on_ok" and data.get("task_action") == "tx2setup.jetson.converged":
            if data["res"].get("reason") not in ("forgotten", "recorded"):
                out[(data["host"], data["role"])] = data["res"]
        elif e.get("event") == "runner_on_skipped" and data.get("task_action") == "tx2setup.jetson.converged":
            out[(data["host"], data["role"])] = {"skipped": True}
    return out


def planned_gated(env: dict[str, Any], name: str) -> list[str]:
    comps = env["plans"][name].components
    return [r for r in GATED if r in ("jetson_base", "jetpack", "acceptance") or r in comps]


def test_a_converged_fleet_runs_one_probe_per_role(env: dict[str, Any], provisioned: provision.ProvisionResult) -> None:
    """The no-op run above left a record per role: the next run skips every role's tasks
    (one probe and one skipped include each) and still changes nothing."""
    assert provisioned.ok
    again = provision.run(env["inventory"], forks=8)
    assert again.ok and again.changed == 0
    answers = probes(again)
    for name in env["plans"]:
        for role in planned_gated(env, name):
            assert answers[(name, role)].get("converged") is True, (name, role, answers.get((name, role)))
        full = provisioned.hosts[name]
        assert again.hosts[name].ok + again.hosts[name].skipped < (full.ok + full.skipped) / 2


def test_drift_reconverges_only_the_role_that_owns_it(
    env: dict[str, Any], provisioned: provision.ProvisionResult
) -> None:
    """A managed file edited on one board: only that board's owning role runs its tasks, and
    puts the file back; every other (board, role) stays skipped."""
    assert provisioned.ok
    board = next(n for n in env["plans"] if "ros" in env["plans"][n].components)
    rc, before = sh(env, board, "cat /etc/profile.d/tx2setup-ros.sh")
    assert rc == 0
    sh(env, board, "echo 'export ROS_MASTER_URI=http://elsewhere:11311' >> /etc/profile.d/tx2setup-ros.sh")
    result = provision.run(env["inventory"], forks=8)
    assert result.ok and result.hosts[board].changed >= 1
    answers = probes(result)
    assert answers[(board, "ros")]["converged"] is False
    assert answers[(board, "ros")]["reason"] == "the board's state changed since the last complete run"
    others = {k: v.get("converged") for k, v in answers.items() if k != (board, "ros") and not v.get("skipped")}
    assert set(others.values()) == {True}, others
    assert sh(env, board, "cat /etc/profile.d/tx2setup-ros.sh") == (0, before)


def test_full_runs_every_task_and_keeps_the_records(
    env: dict[str, Any], provisioned: provision.ProvisionResult
) -> None:
    """`--full` (tx2setup_converge_gate false): every probe steps aside, every task runs,
    nothing changes on a converged fleet; the next plain run is converged again."""
    assert provisioned.ok
    # the string, as `ansible-playbook -e tx2setup_converge_gate=false` passes it
    full = provision.run(env["inventory"], forks=8, extravars={"tx2setup_converge_gate": "false"})
    assert full.ok and full.changed == 0
    assert {v.get("reason") for v in probes(full).values() if not v.get("skipped")} == {"tx2setup_converge_gate is off"}
    after = provision.run(env["inventory"], forks=8)
    assert after.ok and after.changed == 0
    assert {v.get("converged") for v in probes(after).values() if not v.get("skipped")} == {True}
    for name, host in full.hosts.items():
        assert host.ok + host.skipped > 2 * (after.hosts[name].ok + after.hosts[name].skipped)


def test_corrupted_cached_artifact_is_refused(env: dict[str, Any], provisioned: provision.ProvisionResult) -> None:
    assert provisioned.ok
    store = cache.ArtifactCache(cache.LockFile.load(cache.lock_path_for(env["inventory"])))
    _url, pin, present = next(iter(store.entries()))
    path = store.dir / pin.key
    assert present
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    runs = set((env["root"] / "runs").iterdir())
    try:
        with pytest.raises(ChecksumError) as exc:
            provision.run(env["inventory"])
        assert pin.sha256 in str(exc.value)
        assert set((env["root"] / "runs").iterdir()) == runs, "a run started with a corrupted artifact"
    finally:
        path.write_bytes(original)


def test_board_lost_mid_run_does_not_stop_the_others(
    env: dict[str, Any], provisioned: provision.ProvisionResult
) -> None:
    assert provisioned.ok
    sim = env["fleet"]
    victim = sim.board(module="tx2")
    other = sim.board(module="xavier-nx")
    for b in (victim, other):  # give both boards something to do
        sh(env, b.name, "rm -f /etc/profile.d/tx2setup-cuda.sh")
    stopped: list[str] = []

    def on_progress(rows: Mapping[str, provision.HostProgress]) -> None:
        if not stopped and rows[victim.name].role == "jetpack":
            stopped.append(victim.name)
            sim.fleet.stop_board(victim.name)

    result = provision.run(env["inventory"], progress=on_progress)
    assert stopped, "the run never reached the jetpack role on the victim"
    assert not result.ok
    assert result.hosts[victim.name].status in ("unreachable", "failed")
    assert result.hosts[victim.name].failed_task.startswith("jetpack")
    assert result.hosts[other.name].status == "ok"
    assert result.hosts[other.name].changed >= 1
    sim.fleet.start_board(victim.name)
    again = provision.run(env["inventory"])
    assert again.ok, {h.name: (h.status, h.failed_task, h.message) for h in again.bad_hosts}
    assert again.hosts[victim.name].changed >= 1 and again.hosts[other.name].changed == 0
    rc, _ = sh(env, victim.name, "test -f /etc/profile.d/tx2setup-cuda.sh")
    assert rc == 0
