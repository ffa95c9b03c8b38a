"""Unit: the shared base is never rebuilt under a board's disk, and a board never boots on
a base other than the one its disk was made on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tx2setup.errors import EnvironmentProblem
from tx2setup.sim import base
from tx2setup.sim.board import SimBoard
from tx2setup.sim.control import Fleet
from tx2setup.sim.paths import Layout


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    lay = Layout.default(tmp_path / "fleet")
    lay.rootfs.mkdir(parents=True)
    lay.base_stamp.write_text(json.dumps({"recipe": base.RECIPE - 1}))
    return lay


def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the (root, network) base build by a record of the roots it would build."""
    built: list[Path] = []

    def build(lay: Layout) -> dict[str, Any]:
        built.append(lay.rootfs)
        return {"recipe": base.RECIPE}

    monkeypatch.setattr(base, "build_base", build)
    return built


def claim(layout: Layout, address: str, board_dir: Path, record: bool) -> None:
    layout.claims.mkdir(parents=True, exist_ok=True)
    board_dir.mkdir(parents=True)
    if record:
        (board_dir / "board.json").write_text("{}")
    (layout.claims / address).write_text(f"{board_dir}\n")


def test_outdated_base_with_a_stopped_board_is_refused_naming_it(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = fake_build(monkeypatch)
    stopped = tmp_path / "other-fleet" / "boards" / "tx2-1"
    claim(layout, "127.0.1.11", stopped, record=True)
    with pytest.raises(EnvironmentProblem) as exc:
        base.ensure_base(layout)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(stopped) in msg and f"want {base.RECIPE}" in msg
    assert built == []


def test_outdated_base_is_rebuilt_when_only_stale_claims_are_left(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = fake_build(monkeypatch)
    claim(layout, "127.0.1.12", tmp_path / "gone" / "boards" / "x", record=False)  # destroyed by hand
    assert base.ensure_base(layout) == {"recipe": base.RECIPE}
    assert built == [layout.rootfs]


def test_current_base_is_reused_whatever_boards_exist(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout.base_stamp.write_text(json.dumps({"recipe": base.RECIPE}))
    monkeypatch.setattr(base, "build_base", lambda lay: pytest.fail("rebuilt a current base"))
    claim(layout, "127.0.1.11", tmp_path / "f" / "boards" / "b", record=True)
    stamp: dict[str, Any] = base.ensure_base(layout)
    assert stamp["recipe"] == base.RECIPE


def test_a_board_made_on_another_base_recipe_does_not_boot(layout: Layout, tmp_path: Path) -> None:
    layout.base_stamp.write_text(json.dumps({"recipe": base.RECIPE}))
    fleet = Fleet(tmp_path / "fleet")
    d = tmp_path / "fleet" / "boards" / "tx2-1"
    d.mkdir(parents=True)
    b = SimBoard(
        name="tx2-1",
        index=1,
        address="127.0.1.11",
        module="tx2",
        jetpack="4.6.4",
        l4t="32.7.4",
        soc="t186",
        serial="1",
        key_path=tmp_path / "k",
        known_hosts_path=tmp_path / "kh",
        board_dir=d,
        base_recipe=base.RECIPE - 1,
    )
    with pytest.raises(EnvironmentProblem, match=f"base recipe {base.RECIPE - 1}, the base is now recipe"):
        fleet._start([b])
    assert not (d / "pid").exists()  # nothing was launched
