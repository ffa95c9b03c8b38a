"""Unit: board specs for `tx2setup sim up` (flags and YAML file), no root needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tx2setup.errors import UserError
from tx2setup.matrix import load as load_matrix
from tx2setup.sim.spec import BoardSpec, assign_names, from_args, load_spec, parse_spec


def test_from_args_names_boards_per_module() -> None:
    specs = from_args(3, "agx-xavier", "5.1.2")
    assert [s.name for s in specs] == ["agx-xavier-1", "agx-xavier-2", "agx-xavier-3"]
    assert {(s.module, s.jetpack) for s in specs} == {("agx-xavier", "5.1.2")}


def test_defaults_are_a_tx2_on_its_newest_jetpack() -> None:
    m = load_matrix()
    newest = [r.jetpack for r in m.releases if "tx2" in r.modules][-1]
    assert newest.startswith("4.6.")  # the TX2 ends with JetPack 4
    assert from_args(1, None, None) == [BoardSpec("tx2", newest, "tx2-1")]


@pytest.mark.parametrize("module", list(load_matrix().modules))
def test_module_alone_gets_a_jetpack_it_runs(module: str) -> None:
    m = load_matrix()
    (spec,) = from_args(1, module, None)
    rel = m.release(jetpack=spec.jetpack)
    assert module in rel.modules
    later = m.releases[m.releases.index(rel) + 1 :]
    assert not [r.jetpack for r in later if module in r.modules]  # the newest one


def test_agx_orin_alone_is_not_given_jetpack_4() -> None:
    (spec,) = from_args(1, "agx-orin", None)
    assert not spec.jetpack.startswith("4.")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((0, "tx2", "4.6.4"), "--boards: 0 is out of range"),
        ((65, "tx2", "4.6.4"), "--boards: 65 is out of range"),
        ((1, "tx3", "4.6.4"), "module: unknown module 'tx3'"),
        ((1, "tx2", "9.9"), "jetpack: unknown JetPack '9.9'"),
        ((1, "tx2", "5.1.2"), "NVIDIA Jetson TX2 cannot run JetPack 5.1.2"),
    ],
)
def test_from_args_errors_name_the_flag(args: tuple[int, str, str], needle: str) -> None:
    with pytest.raises(UserError) as exc:
        from_args(*args)
    assert needle in exc.value.message
    assert "\n" not in exc.value.message


def test_spec_file_counts_and_names(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yml"
    f.write_text(
        'boards:\n  - {module: tx2, jetpack: "4.6.4", count: 2}\n'
        '  - {name: nx-lab, module: xavier-nx, jetpack: "5.1.2"}\n  - {module: tx2, jetpack: "4.6.4"}\n'
    )
    specs = load_spec(f)
    assert [(s.name, s.module) for s in specs] == [
        ("tx2-1", "tx2"),
        ("tx2-2", "tx2"),
        ("nx-lab", "xavier-nx"),
        ("tx2-3", "tx2"),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("boards: []\n", "boards: expected a non-empty list"),
        ("boards:\n  - {module: tx2}\n", "boards[0]: jetpack: missing"),
        ('boards:\n  - {module: tx2, jetpack: "4.6.4", count: 0}\n', "boards[0]: count: 0 is not a number"),
        ('boards:\n  - {module: tx2, jetpack: "4.6.4", colour: red}\n', "boards[0]: colour: unknown key"),
        ('boards:\n  - {module: tx2, jetpack: "4.6.4", name: Bad_Name}\n', "boards[0]: name: 'Bad_Name'"),
        ('boards:\n  - {module: tx2, jetpack: "4.6.4", name: a, count: 2}\n', "a named entry stands for one board"),
        ('boards:\n  - {module: agx-orin, jetpack: "4.6.4"}\n', "boards[0]: jetpack: NVIDIA Jetson AGX Orin cannot"),
        (
            'boards:\n  - {name: x, module: tx2, jetpack: "4.6.4"}\n  - {name: x, module: tx2, jetpack: "4.6.4"}\n',
            "two boards are called 'x'",
        ),
        ("boards: [\n", ":2: YAML syntax error"),
        ("fleet: 1\nboards:\n  - {module: tx2, jetpack: '4.6.4'}\n", "fleet: unknown key"),
    ],
)
def test_spec_file_errors_are_one_line_naming_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "fleet.yml"
    f.write_text(text)
    with pytest.raises(UserError) as exc:
        load_spec(f)
    assert str(f) in exc.value.message
    assert needle in exc.value.message
    assert "\n" not in exc.value.message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_spec(tmp_path / "nope.yml")


def test_names_are_stable_so_up_is_idempotent() -> None:
    a = parse_spec({"boards": [{"module": "tx2", "jetpack": "4.6.4", "count": 2}]}, "x")
    b = assign_names([BoardSpec("tx2", "4.6.4"), BoardSpec("tx2", "4.6.4")])
    assert a == b
