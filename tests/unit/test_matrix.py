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


def test_releases_the_issue_names_are_all_there() -> None:
    jps = [r.jetpack for r in mx.load().releases]
    for required in ("4.2", "4.2.1", "4.2.2", "5.1.3", "5.1.4", "5.1.5", "5.1.6", "6.2.1", "6.2.2"):
        assert required in jps
    assert mx.load().release(jetpack="4.2").l4t == "32.1.0"
    assert mx.load().release(jetpack="5.1.5").l4t == "35.6.1"
    assert mx.load().release(l4t="36.5.0").jetpack == "6.2.2"


def test_every_release_since_l4t_32_has_a_stack_with_a_matching_wheel() -> None:
    for rel in mx.load().releases:
        if rel.l4t_major < 32:
            continue
        assert rel.apt_repo and rel.pytorch, rel.jetpack
        assert mx.wheel_mismatch(rel.pytorch.url, rel.pytorch.version, rel.python) is None
        assert f"cp{rel.python.replace('.', '')}" in rel.pytorch.wheel_name


def test_jetpack_6_torch_comes_with_its_index_and_an_unverified_file_url() -> None:
    for rel in mx.load().releases:
        if rel.pytorch is not None and rel.l4t_major >= 36:
            assert not rel.pytorch.url_verified, rel.jetpack
        if rel.l4t_major == 36:
            assert rel.pytorch is not None
            assert rel.pytorch.index_url in (
                "https://pypi.jetson-ai-lab.io/jp6/cu122",
                "https://pypi.jetson-ai-lab.io/jp6/cu126",
            )
            assert rel.pytorch.index_url.endswith("cu" + rel.cuda.replace(".", ""))


def test_a_wheel_that_does_not_fit_its_release_fails_the_load() -> None:
    # the JetPack 4 wheel's name is in `wheel` (its box.com URL does not carry it)
    text = packaged_text().replace("wheel: torch-1.10.0-cp36-cp36m", "wheel: torch-1.10.0-cp38-cp38", 1)
    with pytest.raises(MatrixError, match=r"not Python 3\.6 \(cp36\)"):
        mx.parse(text, "matrix.yaml")
    text = packaged_text().replace('  version: "1.10.0"\n', '  version: "1.11.0"\n', 1)
    with pytest.raises(MatrixError, match=r"is torch 1\.10\.0, not 1\.11\.0"):
        mx.parse(text, "matrix.yaml")


def test_wheel_helpers() -> None:
    url = "https://x/jp/v512/pytorch/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl"
    assert mx.wheel_tags(url) == ("torch", "2.1.0a0+41361538.nv23.06", {"cp38"})
    assert mx.wheel_tags("https://pypi.jetson-ai-lab.io/jp6/cu126") is None
    assert mx.release_of("2.1") == mx.release_of("2.1.0a0") == (2, 1, 0)
    assert mx.wheel_mismatch(url, "2.1.0", "3.8") is None
    assert mx.wheel_mismatch(url, "2.1.0", None) is None
    assert "not 2.2.0" in (mx.wheel_mismatch(url, "2.2.0", "3.8") or "")
    assert "not Python 3.10" in (mx.wheel_mismatch(url, "2.1.0", "3.10") or "")
    assert mx.wheel_mismatch("http://h/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "2.13.0", None) is None


def test_power_modes_per_release() -> None:
    m = mx.load()
    assert "MAXN_SUPER" not in m.module("orin-nano", jetpack="6.0").power_modes.values()
    nano62 = m.module("orin-nano", jetpack="6.2")
    assert nano62.power_mode_id("MAXN_SUPER") == 2 and nano62.power_mode_id("25W") == 1
    assert nano62.power_mode_id("MODE_15W") == 0  # the older name of the same mode
    assert m.module("orin-nx", jetpack="6.2.1").power_mode_id("maxn_super") == 0
    assert 8 not in m.module("xavier-nx", jetpack="4.5.1").power_modes
    assert m.module("xavier-nx", jetpack="4.6").power_modes[8] == "MODE_20W_6CORE"
    assert m.module("xavier-nx", jetpack="5.1.2").power_mode_id("MODE_20W_6CORE") == 8
    assert m.module("xavier-nx").power_modes == m.modules["xavier-nx"].power_modes  # no release: the module's table
    assert m.module("agx-orin", jetpack="6.2").power_modes == m.modules["agx-orin"].power_modes


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  orin-nano: {0: 15W,", "  tx2: {0: 15W,", "power_modes for 'tx2', which this release does not support"),
        ("  orin-nano: {0: 15W,", "  orin-nano: {9: 15W,", "power_modes for 'orin-nano' lack the default mode"),
    ],
)
def test_bad_per_release_power_modes_fail_the_load(old: str, new: str, expected: str) -> None:
    text = packaged_text()
    assert old in text
    with pytest.raises(MatrixError) as info:
        mx.parse(text.replace(old, new, 1), "matrix.yaml")
    assert expected in str(info.value)


def test_caffe_uses_cudnn_only_before_cudnn_8() -> None:
    m = mx.load()
    assert m.caffe.use_cudnn(m.release(jetpack="4.3").cudnn)
    assert not m.caffe.use_cudnn(m.release(jetpack="4.4").cudnn)
    assert not m.caffe.use_cudnn(m.release(jetpack="6.2").cudnn)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ("--module", "tx2", "--jetpack", "6.0"),
            "NVIDIA Jetson TX2 cannot run JetPack 6.0 (it runs JetPack 3.3 to 4.6.6)",
        ),
        (("--module", "orin-nano", "--l4t", "32.7"), "cannot run L4T 32.7"),
        (("--jetpack", "4.6", "--l4t", "35.4.1"), "no release is JetPack 4.6 with L4T 35.4.1"),
    ],
)
def test_matrix_filters_that_match_no_release_are_errors(cli, args: tuple[str, ...], needle: str) -> None:  # type: ignore[no-untyped-def]
    res = cli("matrix", *args)
    assert res.code == 2 and res.out == ""
    (line,) = res.err.strip().splitlines()
    assert line.startswith("error: ") and needle in line


def test_matrix_module_view_shows_soc_arch_modes_and_notes(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "250")
    res = cli("matrix", "--module", "orin-nano")
    assert res.code == 0, res.err
    assert "t234 / 8.7 (sm_87)" in res.out
    assert "0 15W, 1 7W" in res.out and "2 MAXN_SUPER" in res.out  # L4T 35/36 names (issue 11)
    assert "6.2.2 [" in res.out and "jetson-containers" in res.out  # notes as footnotes


# Torch wheel URLs known to name a real NVIDIA file, each with where it was seen (issue 11,
# defect 4). A matrix URL outside this table must say url_verified: false.
JP4_TORCH = "https://nvidia.box.com/shared/static/fjtbno0vpo676a25cgvuqc1wty0fkkg6.whl"
REDIST = "https://developer.download.nvidia.com/compute/redist/jp"
KNOWN_REAL_TORCH_URLS = {
    # dusty-nv/jetson-containers packages/ml/pytorch/config.py: pytorch_wget('1.10', ...)
    JP4_TORCH: "torch-1.10.0-cp36-cp36m-linux_aarch64.whl",
    # https://forums.developer.nvidia.com/t/pytorch-for-jetson/72048 (quoted in many public repos)
    f"{REDIST}/v502/pytorch/torch-1.13.0a0+d0d6b1f2.nv22.10-cp38-cp38-linux_aarch64.whl": None,
    f"{REDIST}/v511/pytorch/torch-2.0.0+nv23.05-cp38-cp38-linux_aarch64.whl": None,
    f"{REDIST}/v512/pytorch/torch-2.1.0a0+41361538.nv23.06-cp38-cp38-linux_aarch64.whl": None,
}


def test_every_torch_url_is_a_known_real_file_or_says_it_is_unverified() -> None:
    for rel in mx.load().releases:
        if rel.pytorch is None:
            continue
        if rel.pytorch.url in KNOWN_REAL_TORCH_URLS:
            assert rel.pytorch.url_verified, rel.jetpack
            assert rel.pytorch.wheel == KNOWN_REAL_TORCH_URLS[rel.pytorch.url], rel.jetpack
        else:
            assert not rel.pytorch.url_verified, f"JetPack {rel.jetpack}: {rel.pytorch.url} is not a known file"


def test_jetpack_4_4_to_4_6_torch_is_the_published_1_10_wheel() -> None:
    """Defect 4: .../v461/pytorch/torch-1.10.0+nv22.01-... matched no NVIDIA file."""
    for jp in ("4.4", "4.5.1", "4.6", "4.6.4", "4.6.6"):
        torch = mx.load().release(jetpack=jp).pytorch
        assert torch is not None and torch.url == JP4_TORCH
        assert torch.wheel_name == "torch-1.10.0-cp36-cp36m-linux_aarch64.whl" and torch.version == "1.10.0"
        assert "v461" not in torch.url


def test_every_row_and_module_names_its_source() -> None:
    m = mx.load()
    assert all(r.source.strip() for r in m.releases)
    assert all(mod.source.strip() for mod in m.modules.values())
    text = packaged_text().replace("    source: >-\n      rbonghi/jetson_stats", "    sourcex: >-\n      x", 1)
    with pytest.raises(MatrixError, match="source"):
        mx.parse(text, "matrix.yaml")


def test_release_table_agrees_with_jetson_stats() -> None:
    """L4T <-> JetPack as rbonghi/jetson_stats jtop/core/jetson_variables.py (7.2.2) maps it,
    for every row; 36.5.0 is '6.2.2' there and '6.2.1' in jetson-containers (noted)."""
    jetson_stats = {
        "28.2.1": "3.3", "32.1.0": "4.2", "32.2.0": "4.2.1", "32.2.1": "4.2.2", "32.3.1": "4.3",
        "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.6.1": "4.6",
        "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5",
        "32.7.6": "4.6.6", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
        "35.5.0": "5.1.3", "35.6.0": "5.1.4", "35.6.1": "5.1.5", "35.6.4": "5.1.6", "36.3.0": "6.0",
        "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1", "36.5.0": "6.2.2",
    }  # fmt: skip
    assert {r.l4t: r.jetpack for r in mx.load().releases} == jetson_stats


def test_orin_nano_modes_carry_the_names_nvpmodel_prints() -> None:
    """L4T 35/36 print 'NV Power Mode: 15W' on an Orin Nano (SnapDragonfly/jetson-fpv doc/TESTENV.md)."""
    for jp in ("5.1.4", "6.0", "6.2"):
        mod = mx.load().module("orin-nano", jetpack=jp)
        assert mod.power_modes[mod.default_power_mode] == "15W"
        assert mod.power_mode_id("MODE_15W") == mod.default_power_mode  # the old spelling still resolves
