"""The matrix data file and its loader."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from tx2setup import matrix as mx
from tx2setup.errors import MatrixError


def packaged_text() -> str:
    return resources.files("tx2setup").joinpath("data/matrix.yaml").read_text()


def test_packaged_matrix_loads_and_covers_the_required_releases() -> None:
    m = mx.load()
    jps = [r.jetpack for r in m.releases]
    for required in ["3.3", "4.2.2", "4.3", "4.4", "4.5", "4.6", "4.6.1", "4.6.4", "4.6.6", "5.0.2", "5.1", "5.1.2"]:
        assert required in jps
    for required in ["6.0", "6.1", "6.2"]:
        assert required in jps
    assert set(m.modules) == {"tx2", "tx2-nx", "xavier-nx", "agx-xavier", "orin-nx", "orin-nano", "agx-orin"}


def test_jetpack_464_is_l4t_3274_with_the_jp4_stack() -> None:
    rel = mx.load().release(jetpack="4.6.4")
    assert (rel.l4t, rel.ubuntu, rel.python, rel.ros) == ("32.7.4", "18.04", "3.6", "melodic")
    assert rel.pytorch is not None and rel.pytorch.version.startswith("1.10")
    assert rel.apt_lines("t186") == [
        "deb https://repo.download.nvidia.com/jetson/common r32.7 main",
        "deb https://repo.download.nvidia.com/jetson/t186 r32.7 main",
    ]
    assert rel.nv_tegra_release("t186").startswith("# R32 (release), REVISION: 7.4, ")


def test_tx2_never_appears_in_jetpack_5_or_6() -> None:
    for rel in mx.load().releases:
        if rel.l4t_major >= 35:
            assert "tx2" not in rel.modules and "tx2-nx" not in rel.modules


def test_ubuntu_follows_l4t_major() -> None:
    expected = {28: "16.04", 32: "18.04", 35: "20.04", 36: "22.04"}
    for rel in mx.load().releases:
        assert rel.ubuntu == expected[rel.l4t_major], rel.jetpack


def test_sources_that_disagree_are_noted_in_the_data() -> None:
    notes = " ".join(r.notes for r in mx.load().releases)
    assert "36.4.2" in notes and "36.5.0" in notes


def test_l4t_r36_writes_board_generic() -> None:
    assert "BOARD: generic" in mx.load().release(jetpack="6.2").nv_tegra_release("t234")


def test_power_mode_by_name_or_number() -> None:
    tx2 = mx.load().module("tx2")
    assert tx2.power_mode_id("MAXN") == 0
    assert tx2.power_mode_id("maxp_core_arm") == 3
    assert tx2.power_mode_id("4") == 4
    with pytest.raises(ValueError):
        tx2.power_mode_id("MODE_15W")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('    cudnn: "8.2.1"\n', '    cudnnn: "8.2.1"\n', "cudnnn: Extra inputs are not permitted"),
        ("    modules: [tx2]\n", "    modules: [tx3]\n", "unknown module 'tx3'"),
        ('  - jetpack: "4.3"\n', '  - jetpack: "4.2.2"\n', "duplicate jetpack"),
        ("    soc: t186\n", "    soc: t999\n", "soc: String should match pattern"),
        ('    l4t: "32.7.4"\n', '    l4t: "32.7.x"\n', "is not a dotted version"),
        ("    ros: kinetic\n", "    ros: kinetik\n", "unknown ROS distro 'kinetik'"),
        ('  sha256: ""\n', '  sha256: "abc"\n', "sha256 must be 64 lowercase hex digits"),
        ('    usb_product_ids: ["7019"]\n', '    usb_product_ids: ["70191"]\n', "is not 4 lowercase hex digits"),
    ],
)
def test_a_typo_in_the_data_fails_the_load(old: str, new: str, expected: str) -> None:
    text = packaged_text()
    assert old in text, f"fixture drifted: {old!r} not in matrix.yaml"
    with pytest.raises(MatrixError, match=r"matrix\.yaml: ") as info:
        mx.parse(text.replace(old, new, 1), "matrix.yaml")
    assert expected in str(info.value)


def test_yaml_syntax_error_reports_the_line() -> None:
    text = packaged_text().replace("modules:\n  tx2:\n", "modules:\n  tx2: [\n", 1)
    with pytest.raises(MatrixError, match=r"^m\.yaml:\d+: YAML syntax error"):
        mx.parse(text, "m.yaml")


def test_matrix_json_filters(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("matrix", "--module", "tx2", "--json")
    assert res.code == 0
    data = json.loads(res.out)
    jps = [r["jetpack"] for r in data["releases"]]
    assert jps[0] == "3.3" and jps[-1] == "4.6.6"
    assert all("tx2" in r["modules"] for r in data["releases"])
    res = cli("matrix", "--jetpack", "4.6", "--json")
    assert [r["jetpack"] for r in json.loads(res.out)["releases"]] == [
        "4.6",
        "4.6.1",
        "4.6.2",
        "4.6.3",
        "4.6.4",
        "4.6.5",
        "4.6.6",
    ]
    res = cli("matrix", "--l4t", "36.4.3", "--json")
    assert [r["jetpack"] for r in json.loads(res.out)["releases"]] == ["6.2"]


def test_matrix_table_names_every_release(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("matrix", "--module", "agx-orin")
    assert res.code == 0
    for jp in ("5.0.2", "6.2.1"):
        assert jp in res.out
