"""provision without boards: event tracking, exit codes, the roles' documented interface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tx2setup import cli, provision
from tx2setup.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[2]
ROLES = ["validate_inventory", "jetson_base", "jetpack", "ros", "zed_sdk", "caffe", "pytorch", "acceptance"]


def ev(kind: str, host: str | None = None, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, **data}, "stdout": f"{kind} {host}"}


def test_tracker_follows_each_board(tmp_path: Path) -> None:
    seen: list[dict[str, provision.HostProgress]] = []
    t = provision.Tracker(["a", "b"], tmp_path / "logs", lambda rows: seen.append(dict(rows)))
    t(ev("runner_on_start", "a", task="Install ROS", role="ros"))
    t(ev("runner_on_ok", "a", task="Install ROS", role="ros", res={"changed": True}))
    t(ev("runner_on_ok", "a", task="Source ROS", role="ros", res={"changed": False}))
    t(ev("runner_on_start", "b", task="Install torch", role="pytorch"))
    t(ev("runner_on_failed", "b", task="Install torch", role="pytorch", ignore_errors=True, res={"msg": "x"}))
    t(
        ev(
            "runner_on_failed",
            "b",
            task="Install torch",
            role="pytorch",
            res={"msg": "pip failed", "stderr": "a\nno wheel"},
        )
    )
    t(ev("runner_on_unreachable", "c", task="x", res={"msg": "not ours"}))
    t(ev("playbook_on_stats"))
    t.close()
    a, b = seen[-1]["a"], seen[-1]["b"]
    assert (a.role, a.task, a.ok, a.changed, a.failed) == ("ros", "Install ROS", 2, 1, 0)
    assert (b.failed, b.failed_task, b.message) == (1, "pytorch: Install torch", "pip failed: no wheel")
    assert a.finished is not None and b.finished is not None
    log = (tmp_path / "logs" / "b.log").read_text()
    assert "TASK [pytorch : Install torch]" in log and "pip failed" in log
    assert not (tmp_path / "logs" / "c.log").exists()


def test_unreachable_board_is_recorded(tmp_path: Path) -> None:
    t = provision.Tracker(["a"], tmp_path, None)
    t(ev("runner_on_start", "a", task="Read the power mode", role="jetson_base"))
    t(ev("runner_on_unreachable", "a", task="Read the power mode", role="jetson_base", res={"msg": "ssh: refused"}))
    snap = t.snapshot()["a"]
    assert (
        snap.unreachable and snap.failed_task == "jetson_base: Read the power mode" and snap.message == "ssh: refused"
    )


def test_loopback_boards_get_the_cache_on_loopback() -> None:
    plans = [type("P", (), {"name": n, "ansible_host": h})() for n, h in (("a", "127.0.1.5"), ("b", "127.0.1.6"))]
    bind, per_board = provision._serve_address(plans)  # type: ignore[arg-type]
    assert bind == "127.0.0.1" and per_board == {"a": "127.0.0.1", "b": "127.0.0.1"}


def _result(status: str) -> provision.ProvisionResult:
    host = provision.HostResult(
        name="tx2-1",
        status=status,
        ok=10,
        changed=0,
        failed=int(status != "ok"),
        skipped=0,
        failed_task="jetpack: Refuse a board flashed with another L4T" if status != "ok" else "",
        message="tx2-1 runs L4T 32.7.1 but its plan is JetPack 4.6.4" if status != "ok" else "",
        log="/x/tx2-1.log",
        elapsed=1.0,
    )
    return provision.ProvisionResult(
        status="failed" if status != "ok" else "successful",
        rc=2 if status != "ok" else 0,
        check=False,
        hosts={"tx2-1": host},
        elapsed=1.0,
        run_dir="/x",
        record="/x/provision.json",
        interrupted=False,
        upstream_bytes=0,
        served_bytes=0,
    )


@pytest.mark.parametrize(("status", "code"), [("ok", 0), ("failed", 4), ("unreachable", 4)])
def test_cli_exit_status_follows_the_boards(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], status: str, code: int
) -> None:
    monkeypatch.setattr(provision, "run", lambda *a, **k: _result(status))
    assert cli.run(["provision", "-i", "inv.ini"]) == code
    captured = capsys.readouterr()
    assert "tx2-1" in captured.out
    if code:
        # one whole line per failed board (status, task, message, log), then the error line
        board_line, error_line = captured.err.strip().splitlines()
        assert board_line.startswith(f"tx2-1: {status} at ") and "Refuse a board flashed" in board_line
        assert error_line.startswith("error: 1 of 1 board(s) not provisioned: tx2-1 (logs in ")


def test_runner_failure_before_any_board_is_an_environment_problem(tmp_path: Path) -> None:
    out = tmp_path / "runner" / "artifacts" / "run"
    out.mkdir(parents=True)
    (out / "stdout").write_text("noise\nERROR! the role 'jetpack' was not found\nmore\n")
    assert provision._runner_error(tmp_path) == "ERROR! the role 'jetpack' was not found"
    assert issubclass(EnvironmentProblem, Exception)


def test_playbook_passes_syntax_check(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    b1: {ansible_host: 127.0.0.1}\n")
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inv),
            "--syntax-check",
            "playbooks/site.yml",
        ],
        cwd=ROOT,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_yamllint_is_clean() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("yamllint")), "-s", "playbooks", "roles"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("role", ROLES)
def test_role_interface_is_documented(role: str) -> None:
    """defaults/main.yml and meta/argument_specs.yml name the same, role-prefixed variables."""
    base = ROOT / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(defaults) == set(specs)
    assert all(name.startswith(role + "_") for name in defaults)
    assert all(spec.get("description") for spec in specs.values())


def test_every_role_has_a_tag_in_the_play() -> None:
    # the play with the roles (a first play on localhost refuses an inventory without boards)
    play = next(p for p in yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text()) if "roles" in p)
    tags = {r["role"]: r["tags"] for r in play["roles"]}
    assert list(tags) == ROLES
    assert tags["validate_inventory"] == ["always"]
    assert all(tags[r] == [r] for r in ROLES[1:])
