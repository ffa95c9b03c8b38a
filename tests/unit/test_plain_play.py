"""The play without the CLI (issue 12): plain `ansible-playbook` resolves each board's plan
in the play, the same plan as `tx2setup inventory check --json`, and refuses every bad
inventory of test_inventory_errors.py at its first task with the CLI's one-line message.
No board is reached: the plan action runs on the controller, and a refused inventory stops
the play before the boards' facts are gathered."""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "playbooks" / "site.yml"
PROBE = ROOT / "tests" / "fixtures" / "ansible" / "plan-probe.yml"
PLAN_TASK = "TASK [validate_inventory : Resolve the board's plan (tx2setup inventory check, in the play)]"


def _errors_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "inventory_errors_cases", Path(__file__).with_name("test_inventory_errors.py")
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = _errors_module()
# inventories Ansible itself cannot parse or that hold no board: no play task runs for them
PARSE_LEVEL = {"ini-syntax", "empty"}
ANSIBLE_REFUSES = {"bad-port"}  # Ansible's own check comes first (see the test)


def playbook(tmp_path: Path, inventory: Path, book: Path = SITE, *extra: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook as a user runs it from the checkout (its ansible.cfg), results per
    host in tmp_path/tree (Ansible's tree callback)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp_path / ".ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-home" / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.tree",
        "ANSIBLE_CALLBACK_TREE_DIR": str(tmp_path / "tree"),
    }
    exe = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.run(
        [str(exe), "-i", str(inventory), str(book), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=300,
    )


def probe_facts(tmp_path: Path, inventory: Path, *extra: str) -> dict[str, dict[str, Any]]:
    proc = playbook(tmp_path, inventory, PROBE, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = {}
    for f in (tmp_path / "tree").iterdir():
        result = json.loads(f.read_text())
        out[f.name] = result["ansible_facts"]
    return out


def assert_parity(facts: dict[str, dict[str, Any]], checked: dict[str, Any]) -> None:
    """tx2setup_plan equals `inventory check --json`'s board field for field, and so does
    every flat plan_* variable the roles read (no lock file, no cache: nothing routed)."""
    boards = {b["name"]: b for b in checked["boards"]}
    assert set(facts) == set(boards)
    for name, board in boards.items():
        assert facts[name]["tx2setup_plan"] == board
        for key, value in board.items():
            if key not in ("name", "ansible_host"):
                assert facts[name][f"plan_{key}"] == value, (name, key)


def test_plan_equals_inventory_check_on_the_sample(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sample = ROOT / "inventory" / "sample" / "lab.ini"
    res = cli("inventory", "check", "-i", str(sample), "--json")
    assert res.code == 0, res.err
    facts = probe_facts(tmp_path, sample)
    assert_parity(facts, json.loads(res.out))
    assert facts["car-tx2-01"]["plan_torch_version"] == "1.10.0"  # the README's TX2 on 4.6.4


def fatal_results(stdout: str) -> dict[str, dict[str, Any]]:
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^fatal: \[(\S+)\]: FAILED! => (\{.*\})$", stdout, re.M)
    }


def assert_refused_at_first_task(proc: subprocess.CompletedProcess[str], host: str, message: str) -> None:
    assert proc.returncode != 0
    play = proc.stdout.split("PLAY [Bring every Jetson to its planned stack]", 1)[1]
    # Ansible's implicit role argument check (meta/argument_specs.yml) runs on the controller
    # too; after it, the plan is the play's first task
    tasks = [
        ln for ln in play.splitlines() if ln.startswith("TASK [") and "Validating arguments against arg spec" not in ln
    ]
    assert tasks and tasks[0].startswith(PLAN_TASK), tasks  # nothing ran before the plan...
    assert len(tasks) == 1, tasks  # ...and nothing after it: the whole play stopped there
    assert fatal_results(play)[host]["msg"] == message


BAD_HOST_CASES = [c for c in CASES.INI_CASES if c.id not in PARSE_LEVEL]


def cli_error(path: Path) -> str:
    """The one line `tx2setup inventory check -i PATH` prints, without its 'error: '."""
    from tx2setup.cli import run

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert run(["inventory", "check", "-i", str(path)]) == 2
    (line,) = err.getvalue().strip().splitlines()
    return line.removeprefix("error: ")


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, subprocess.CompletedProcess[str]]]:
    """Every bad-host case of test_inventory_errors.py: (the CLI's message, the plain play),
    the plays run four at a time (each is mostly ansible-playbook's start-up)."""
    dirs = {c.id: tmp_path_factory.mktemp(c.id) for c in BAD_HOST_CASES}
    paths = {c.id: CASES.write(dirs[c.id], "lab.ini", f"[jetsons]\n{c.values[0]}\n") for c in BAD_HOST_CASES}
    messages = {cid: cli_error(path) for cid, path in paths.items()}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        plays = dict(zip(paths, pool.map(lambda cid: playbook(dirs[cid], paths[cid]), paths), strict=True))
    return {cid: (messages[cid], plays[cid]) for cid in paths}


@pytest.mark.parametrize(("body", "needles"), BAD_HOST_CASES)
def test_bad_inventory_fails_the_play_at_its_first_task(
    refusals: dict[str, tuple[str, subprocess.CompletedProcess[str]]],
    request: pytest.FixtureRequest,
    body: str,
    needles: tuple[str, ...],
) -> None:
    message, proc = refusals[request.node.callspec.id]
    for needle in needles:
        assert needle in message
    host = re.search(r": host (\S+): ", message)
    assert host, message
    if request.node.callspec.id in ANSIBLE_REFUSES:
        # Ansible turns ansible_port into an int for every task, before any plugin runs:
        # the board fails the play's first task with Ansible's own message, naming the value
        assert proc.returncode != 0 and "PLAY [Bring every Jetson" in proc.stdout
        assert "'port' has an invalid value (ssh)" in fatal_results(proc.stdout)[host.group(1)]["msg"]
        return
    assert_refused_at_first_task(proc, host.group(1), message)


def test_error_from_group_vars_names_that_file_in_the_play(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "group_vars").mkdir()
    CASES.write(tmp_path / "group_vars", "tx2.yml", "jetson_module: tx2\njetpack: '6.0'\n")
    path = CASES.write(tmp_path, "lab.ini", "[tx2]\nb1 ansible_host=10.0.0.1\n")
    message = cli("inventory", "check", "-i", str(path)).err.strip().removeprefix("error: ")
    assert f"(set in {tmp_path}/group_vars/tx2.yml)" in message
    assert_refused_at_first_task(playbook(tmp_path, path), "b1", message)


def test_unsafe_yaml_host_name_in_the_play(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = CASES.write(
        tmp_path,
        "lab.yml",
        "all:\n  hosts:\n    'car;reboot':\n"
        "      ansible_host: 10.0.0.1\n      jetson_module: tx2\n      jetpack: '4.6.4'\n",
    )
    message = cli("inventory", "check", "-i", str(path)).err.strip().removeprefix("error: ")
    assert_refused_at_first_task(playbook(tmp_path, path), "car;reboot", message)


def test_inventory_without_boards_fails_with_the_cli_message(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = CASES.write(tmp_path, "lab.ini", "[jetsons]\n# nothing here yet\n")
    message = cli("inventory", "check", "-i", str(path)).err.strip().removeprefix("error: ")
    proc = playbook(tmp_path, path)
    assert proc.returncode != 0
    assert fatal_results(proc.stdout)["localhost"]["msg"] == message


def test_unparsable_inventory_fails_before_any_board(tmp_path: Path) -> None:
    """Ansible warns that it cannot parse the file (naming it) and finds no host: the
    play's first task, on the controller, refuses the run."""
    path = CASES.write(tmp_path, "lab.ini", f"[jetsons]\nb1 {CASES.GOOD_HOST}\nnot a valid = = line\n")
    proc = playbook(tmp_path, path)
    assert proc.returncode != 0
    assert str(path) in " ".join((proc.stdout + proc.stderr).split())  # Ansible's own warning names the file
    assert fatal_results(proc.stdout)["localhost"]["msg"].endswith(": the inventory holds no hosts")
    assert "PLAY [Bring every Jetson" not in proc.stdout or "no hosts matched" in proc.stdout
