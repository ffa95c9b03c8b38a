"""The Ansible content on its own against emulated boards (issue 12): plain
`ansible-playbook -i <sim inventory> playbooks/site.yml` converges the session's two boards
and a second run changes nothing (from the recap); the built collection, installed into a
temporary collections path, runs as `tx2setup.jetson.site` and changes nothing; the plan
action's plan equals `inventory check --json` on the sim inventory; and the CLI's run of
the same play is timed beside the plain one (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tx2setup import cache, fleet, provision

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "fixtures" / "ansible" / "plan-probe.yml"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TIMINGS = os.environ.get("TX2SETUP_TIMINGS_OUT")  # where the measured wall times go (docs/benchmarks.md)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP rows: {host: {ok, changed, unreachable, failed}} (the last play's counts)."""
    return {
        m.group(1): dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()[1:]), strict=True))
        for m in RECAP.finditer(stdout)
    }


@pytest.fixture(scope="module")
def env(sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("plain-play")
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(root / "cache")  # the CLI run's cache, apart from the user's
    inv = sim_fleet.inventory
    vault = fleet.load(inv).vault_password_file
    assert vault, "the sim inventory names its vault password file"
    yield {
        "fleet": sim_fleet,
        "inventory": inv,
        "vault": vault,
        "root": root,
        "names": [b.name for b in sim_fleet.boards],
    }
    if old is None:
        os.environ.pop(cache.CACHE_ENV, None)
    else:
        os.environ[cache.CACHE_ENV] = old


def play(
    env: dict[str, Any], target: str, *extra: str, cwd: Path = ROOT, **overrides: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """ansible-playbook as a user types it (the vault password file as the sim docs say)."""
    base = {
        **os.environ,
        "ANSIBLE_HOME": str(env["root"] / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(env["inventory"]),
            target,
            "--vault-password-file",
            env["vault"],
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**base, **overrides},
        cwd=cwd,
        check=False,
        timeout=3600,
    )
    return proc, time.monotonic() - started


def record(key: str, seconds: float) -> None:
    if TIMINGS:
        path = Path(TIMINGS)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = round(seconds, 1)
        path.write_text(json.dumps(data, indent=2) + "\n")


def test_plan_equals_inventory_check_on_the_sim_inventory(cli, env: dict[str, Any], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("inventory", "check", "-i", str(env["inventory"]), "--json")
    assert res.code == 0, res.err
    boards = {b["name"]: b for b in json.loads(res.out)["boards"]}
    proc, _ = play(
        env,
        str(PROBE),
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
        ANSIBLE_CALLBACK_TREE_DIR=str(tmp_path / "tree"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lock = cache.LockFile.load(cache.lock_path_for(env["inventory"]))
    assert set(boards) == set(env["names"])
    for name, board in boards.items():
        facts = json.loads((tmp_path / "tree" / name).read_text())["ansible_facts"]
        assert facts["tx2setup_plan"] == board
        for key, value in board.items():
            if key in ("name", "ansible_host"):
                continue
            if key.endswith("_sha256"):  # the lock's pin, where the cache pinned one
                url = board[{"torch_sha256": "torch_wheel_url", "caffe_sha256": "caffe_source_url"}[key]]
                value = lock.pins[url].sha256 if url in lock.pins else value
            assert facts[f"plan_{key}"] == value, (name, key)


@pytest.fixture(scope="module")
def converged(env: dict[str, Any]) -> dict[str, Any]:
    first, first_s = play(env, "playbooks/site.yml")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    again, again_s = play(env, "playbooks/site.yml")
    record("plain_first_run_s", first_s)
    record("plain_noop_run_s", again_s)
    return {"first": recap(first.stdout), "again": recap(again.stdout), "again_s": again_s, "again_out": again.stdout}


# The collection and CLI runs below repeat one role (the test's point is that they run the
# same play as the plain run, not a second full converge, which takes minutes a board here)
QUICK = ("--tags", "jetson_base")


@pytest.fixture(scope="module")
def base_converged(env: dict[str, Any]) -> dict[str, Any]:
    """Both boards with jetson_base converged by plain ansible-playbook (a no-op after `converged`)."""
    proc, _ = play(env, "playbooks/site.yml", *QUICK)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return recap(proc.stdout)


def test_plain_playbook_converges_both_boards(env: dict[str, Any], converged: dict[str, Any]) -> None:
    for name in env["names"]:
        row = converged["first"][name]
        assert row["failed"] == 0 and row["unreachable"] == 0, (name, row)
        assert row["ok"] > 20, (name, row)  # the whole play ran, not just the plan


def test_plain_playbook_second_run_changes_nothing(env: dict[str, Any], converged: dict[str, Any]) -> None:
    for name in env["names"]:
        row = converged["again"][name]
        assert row == {**row, "changed": 0, "failed": 0, "unreachable": 0}, (name, row, converged["again_out"][-4000:])


def test_built_collection_runs_as_tx2setup_jetson_site(env: dict[str, Any], base_converged: dict[str, Any]) -> None:
    out = env["root"] / "galaxy"
    built = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_HOME": str(env["root"] / "ansible-home")},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = out.glob("tx2setup-jetson-*.tar.gz")
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
    assert {"galaxy.yml", "MANIFEST.json"} - names == {"galaxy.yml"}
    assert "plugins/action/plan.py" in names and "playbooks/site.yml" in names
    assert "roles/jetson_base/tasks/main.yml" in names and "roles/pytorch/tasks/main.yml" in names
    assert not [n for n in names if n.split("/")[0] in ("tx2setup", "collections", "inventory")]
    # of tests/, only ansible-test's sanity ignore file ships
    assert {n for n in names if n.startswith("tests/")} == {"tests/sanity", "tests/sanity/ignore-2.16.txt"}
    colls = env["root"] / "collections"
    # no checkout in sight: another directory, no ansible.cfg (whose collections_path holds the
    # checkout's links: ansible-galaxy would call the collection installed), only the tarball
    away = env["root"] / "elsewhere"
    away.mkdir()
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(colls)],
        capture_output=True,
        check=True,
        cwd=away,
        env={**os.environ, "ANSIBLE_HOME": str(env["root"] / "ansible-home"), "ANSIBLE_COLLECTIONS_PATH": str(colls)},
    )
    assert (colls / "ansible_collections" / "tx2setup" / "jetson" / "playbooks" / "site.yml").is_file()
    proc, _ = play(env, "tx2setup.jetson.site", *QUICK, ANSIBLE_COLLECTIONS_PATH=str(colls), cwd=away)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "validate_inventory : Resolve the board's plan" in proc.stdout
    rows = recap(proc.stdout)
    for name in env["names"]:
        assert rows[name]["changed"] == 0 and rows[name]["failed"] == 0, (name, rows[name], proc.stdout[-4000:])


def test_cli_drives_the_same_play_in_about_the_same_time(env: dict[str, Any], base_converged: dict[str, Any]) -> None:
    tags = QUICK[1]
    warm = provision.run(env["inventory"], tags=tags)  # fills this module's cache and the lock once
    assert warm.ok, {h.name: (h.status, h.failed_task, h.message) for h in warm.bad_hosts}
    started = time.monotonic()
    again = provision.run(env["inventory"], tags=tags)
    cli_s = time.monotonic() - started
    assert again.ok and again.changed == 0, {h.name: h.changed for h in again.hosts.values()}
    proc, plain_s = play(env, "playbooks/site.yml", *QUICK)
    assert proc.returncode == 0 and all(r["changed"] == 0 for r in recap(proc.stdout).values())
    record("cli_noop_jetson_base_s", cli_s)
    record("plain_noop_jetson_base_s", plain_s)
    # the CLI adds its inventory check, the artifact cache and server, the apt proxy and the
    # record around the same play, not another play
    assert cli_s < plain_s * 1.5 + 15, (cli_s, plain_s)
