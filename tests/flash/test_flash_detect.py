"""Recovery-mode detection against fake sysfs trees, and matching to inventory hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from flash_helpers import sysfs

from tx2setup import matrix as mx
from tx2setup.errors import InventoryError
from tx2setup.flash.detect import scan
from tx2setup.flash.match import match
from tx2setup.fleet import Board, Inventory
from tx2setup.plan import resolve_board


def test_two_tx2s_are_found_with_port_product_and_serial() -> None:
    devices = scan(sysfs("two-tx2"))
    assert [(d.port, d.product_id, d.modules, d.serial) for d in devices] == [
        ("1-2.1", "7c18", ("tx2", "tx2-nx"), "0321017042389"),
        ("1-2.2", "7c18", ("tx2", "tx2-nx"), None),
    ]
    # the booted Jetson (0955:7020), the root hub, the keyboard and the interfaces are not listed
    assert all(d.sysfs_path.name in ("1-2.1", "1-2.2") for d in devices)


def test_each_product_id_maps_to_its_modules() -> None:
    devices = {d.port: d.modules for d in scan(sysfs("mixed"))}
    assert devices == {"1-2.1": ("tx2", "tx2-nx"), "2-1": ("xavier-nx",), "2-2": ("agx-orin",)}
    assert [d.modules for d in scan(sysfs("orin-nano"))] == [("orin-nano",)]


def test_no_board_in_recovery_mode_and_no_sysfs() -> None:
    assert scan(sysfs("none")) == []
    assert scan(Path("/nonexistent/sysfs")) == []


def test_product_ids_come_from_the_matrix() -> None:
    data = mx.load()
    # a matrix in which no module enumerates as 7c18: the TX2s are no longer recognised
    modules = {
        k: m.model_copy(update={"usb_product_ids": ["7fff"]}) if "7c18" in m.usb_product_ids else m
        for k, m in data.modules.items()
    }
    assert scan(sysfs("two-tx2"), data.model_copy(update={"modules": modules})) == []


def _boards(*specs: dict[str, object]) -> list[tuple[Board, object]]:
    data = mx.load()
    out = []
    boards = [
        Board(
            name=str(s["name"]),
            ansible_host=f"10.0.0.{i + 1}",
            module=str(s.get("module", "tx2")),
            jetpack=str(s.get("jetpack", "4.6.4")),
            power_mode=None,
            target_fps=15.0,
            components=(),
            groups=(),
            usb_port=s.get("usb_port"),  # type: ignore[arg-type]
            serial=s.get("serial"),  # type: ignore[arg-type]
        )
        for i, s in enumerate(specs)
    ]
    inv = Inventory(Path("lab.ini"), tuple(boards))
    for b in boards:
        out.append((b, resolve_board(inv, b, data)))
    return out


def test_match_by_port_and_by_serial() -> None:
    devices = scan(sysfs("two-tx2"))
    boards = _boards({"name": "a", "serial": "0321017042389"}, {"name": "b", "usb_port": "1-2.2"})
    result = match(devices, boards)  # type: ignore[arg-type]
    assert [(a.board.name, a.device.port, a.how, a.module_fits) for a in result.assigned] == [
        ("a", "1-2.1", "board_serial", True),
        ("b", "1-2.2", "usb_port", True),
    ]
    assert result.unassigned == [] and result.absent == []


def test_unpinned_boards_are_asked_for_and_absent_ones_reported() -> None:
    devices = scan(sysfs("two-tx2"))
    boards = _boards({"name": "pinned-away", "usb_port": "9-9"}, {"name": "free"})
    asked: list[tuple[str, list[str]]] = []

    def ask(dev: object, names: list[str]) -> str | None:
        asked.append((dev.port, names))  # type: ignore[attr-defined]
        return "free" if dev.port == "1-2.2" else None  # type: ignore[attr-defined]

    result = match(devices, boards, ask)  # type: ignore[arg-type]
    assert asked == [("1-2.1", ["free"]), ("1-2.2", ["free"])]
    assert [(a.board.name, a.device.port, a.how) for a in result.assigned] == [("free", "1-2.2", "asked")]
    assert [d.port for d in result.unassigned] == ["1-2.1"]
    assert [b.name for b in result.absent] == ["pinned-away"]


def test_without_asking_unpinned_devices_stay_unassigned() -> None:
    result = match(scan(sysfs("two-tx2")), _boards({"name": "free"}))  # type: ignore[arg-type]
    assert result.assigned == [] and len(result.unassigned) == 2


def test_module_mismatch_is_recorded() -> None:
    result = match(scan(sysfs("mixed")), _boards({"name": "nx", "module": "xavier-nx", "usb_port": "1-2.1"}))  # type: ignore[arg-type]
    assert [(a.board.name, a.module_fits) for a in result.mismatched] == [("nx", False)]


def test_one_port_claimed_twice_is_an_inventory_error() -> None:
    boards = _boards({"name": "a", "usb_port": "1-2.1"}, {"name": "b", "usb_port": "1-2.1"})
    with pytest.raises(InventoryError, match=r"host b: usb_port: .*1-2\.1 is also claimed by a"):
        match(scan(sysfs("two-tx2")), boards)  # type: ignore[arg-type]


def test_tx2_variants_and_a_known_unsupported_product() -> None:
    devices = {d.port: d for d in scan(sysfs("tx2-variants"))}
    assert sorted(devices) == ["1-4.1", "1-4.2", "1-4.3"]
    assert (devices["1-4.1"].modules, devices["1-4.1"].module_label) == (("tx2",), "tx2 (Jetson TX2i)")
    assert devices["1-4.2"].module_label == "tx2 (Jetson TX2 4GB)"
    industrial = devices["1-4.3"]
    assert not industrial.supported and industrial.modules == ()
    assert industrial.module_label == "Jetson AGX Xavier Industrial (not supported by tx2setup)"
