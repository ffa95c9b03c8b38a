"""The board object every verb loads: inventory entry, plan and SSH settings in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tx2setup import board, cli, fleet, plan
from tx2setup.errors import PlanError, UserError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventory" / "sample" / "lab.ini"


def test_one_object_per_board_with_its_entry_plan_and_connection() -> None:
    loaded = board.load(SAMPLE)
    inv = fleet.load(SAMPLE)
    assert loaded.names == [b.name for b in inv.boards]
    # the plan is exactly what plan.resolve gives for the same board
    assert loaded.plans == plan.resolve(inv)
    orin = next(b for b in loaded.boards if b.name == "car-orin-01")
    assert (orin.entry.module, orin.plan.module, orin.plan.jetpack) == ("agx-orin", "agx-orin", "6.2")
    assert (orin.ssh.name, orin.ssh.host) == ("car-orin-01", "192.168.55.121")
    assert loaded.path == inv.path


def test_limit_and_vault_reach_the_inventory() -> None:
    loaded = board.load(SAMPLE, limit="car-nx-01")
    assert loaded.names == ["car-nx-01"]
    assert loaded.boards[0].plan.ubuntu == "20.04"


def write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "lab.ini"
    path.write_text(f"[b]\n{line}\n")
    return path


def test_a_plan_the_matrix_refuses_stops_the_load_unless_plans_are_not_wanted(tmp_path: Path) -> None:
    inv = write(tmp_path, "b1 ansible_host=127.0.0.1 jetson_module=tx2 jetpack=6.2")
    with pytest.raises(PlanError, match=r"host b1: jetpack: .*cannot run JetPack 6\.2"):
        board.load(inv)
    # status reaches boards whatever their plan says
    (b1,) = board.load(inv, plans=False).boards
    assert b1.resolved is None and b1.ssh.host == "127.0.0.1"
    with pytest.raises(RuntimeError, match="b1 was loaded without its plan"):
        _ = b1.plan


def test_become_passwords_come_from_the_file_given_else_the_inventory(tmp_path: Path) -> None:
    inv = write(tmp_path, "b1 ansible_host=127.0.0.1 jetson_module=tx2 jetpack=4.6.4 ansible_become_password=fromInv")
    loaded = board.load(inv)
    assert loaded.boards[0].become_password is None  # not resolved until asked
    assert loaded.with_become_passwords(None).boards[0].become_password == "fromInv"
    given = tmp_path / "pw"
    given.write_text("fromFile\n")
    given.chmod(0o600)
    assert loaded.with_become_passwords(str(given)).boards[0].become_password == "fromFile"


def test_a_vaulted_password_without_its_vault_password_is_one_line(tmp_path: Path) -> None:
    inv = tmp_path / "lab.yml"
    inv.write_text(
        "all:\n  hosts:\n    b1:\n      ansible_host: 127.0.0.1\n      jetson_module: tx2\n      jetpack: 4.6.4\n"
        "      ansible_become_password: !vault |\n"
        "        $ANSIBLE_VAULT;1.1;AES256\n"
        "        6134\n"
    )
    with pytest.raises(UserError, match="ansible_become_password is vault-encrypted: pass --vault-password-file"):
        board.load(inv).with_become_passwords(None)


def test_inventory_check_prints_every_board_of_the_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["inventory", "check", "-i", str(SAMPLE), "--json", "-"]) == 0
    out = capsys.readouterr().out
    for name in board.load(SAMPLE).names:
        assert f'"name": "{name}"' in out
