"""Contract: the stand-ins print what real boards print, and our parsers read real output.

The fixtures are real captures (tests/fixtures/real/README.md says how they are kept). The
shapes compared here are taken from the fixtures (field order, sensor and rail names, the
"@MHz" forms, fixed text), never from our own parsers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tx2setup import status
from tx2setup.bench import telemetry
from tx2setup.checks import test_stack
from tx2setup.matrix import l4t_from_release_line
from tx2setup.matrix import load as load_matrix
from tx2setup.sim import identity
from tx2setup.sim.standins import jetson_clocks, nvpmodel, tegrastats

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
HEADER_END = "# ---"


def load(name: str) -> tuple[dict[str, str], list[str]]:
    """A fixture's header keys and its output lines (README.md: header, '# ---', output)."""
    text = (REAL / name).read_text()
    head, sep, body = text.partition(HEADER_END + "\n")
    assert sep, f"{name}: no '{HEADER_END}' line ends the header"
    header = {}
    for line in head.splitlines():
        m = re.match(r"^# (\w+): (.*)$", line)
        assert m, f"{name}: header line {line!r} is not '# key: value'"
        header[m.group(1)] = m.group(2)
    return header, body.splitlines()


def fixtures(prefix: str) -> list[str]:
    return sorted(p.name for p in REAL.glob(f"{prefix}*.txt"))


def make_root(tmp_path: Path, module_key: str, jetpack: str) -> Path:
    m = load_matrix()
    root = tmp_path / module_key
    (root / "etc/tx2setup-sim").mkdir(parents=True)
    (root / "etc/nvpmodel.conf").write_text(identity.nvpmodel_conf(m.module(module_key, jetpack=jetpack)))
    info = identity.board_info("b1", m.module(module_key, jetpack=jetpack), m.release(jetpack=jetpack))
    (root / "etc/tx2setup-sim/board.json").write_text(json.dumps(info))
    return root


def as_user(monkeypatch: pytest.MonkeyPatch, root: bool) -> None:
    """The stand-ins ask nvpmodel.is_root(); a fake board root normally counts as root."""
    monkeypatch.setattr(nvpmodel, "is_root", lambda _root: root)


def run(capsys: pytest.CaptureFixture[str], fn: Any, argv: list[str], root: Path) -> tuple[int, list[str], str]:
    code = fn(argv, root)
    cap = capsys.readouterr()
    return code, cap.out.splitlines(), cap.err


# the tool outputs this file covers (dpkg-query, CUDA version files and package names are
# another fixture set, with its own header, tested with the matrix)
TOOL_PREFIXES = ("nvpmodel-", "tegrastats-", "nv_tegra_release-", "jetson_clocks-")


def test_every_fixture_has_provenance() -> None:
    names = sorted(p.name for p in REAL.glob("*.txt") if p.name.startswith(TOOL_PREFIXES))
    assert len(names) >= 15
    for name in names:
        header, body = load(name)
        assert header.get("source"), f"{name}: no '# source:' line"
        assert {"board", "l4t", "user", "exit"} <= set(header), f"{name}: header keys {sorted(header)}"
        assert body, f"{name}: no output"


# ---- /etc/nv_tegra_release -------------------------------------------------------------

# The first line's shape, from the three captures (GCID and DATE vary; BOARD is t186ref on
# R32/R35 whatever the module, generic on R36)
RELEASE_LINE = re.compile(
    r"^# R(\d+) \(release\), REVISION: \d+\.\d+, GCID: \d+, BOARD: (t186ref|t210ref|generic), "
    r"EABI: aarch64, DATE: [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d UTC \d{4}$"
)


@pytest.mark.parametrize("name", fixtures("nv_tegra_release-"))
def test_release_line_is_read_by_matrix_and_checks(name: str) -> None:
    first = load(name)[1][0]
    m = RELEASE_LINE.match(first)
    assert m, first
    l4t = l4t_from_release_line(first)
    assert l4t is not None and l4t.startswith(m.group(1) + ".")
    assert test_stack.l4t_of(first) == l4t
    assert status.parse_probe(f"1\n@@tx2setup@@\n{first}\n@@tx2setup@@\n")["l4t"] == l4t


@pytest.mark.parametrize(("jetpack", "module", "board"), [("4.6.4", "tx2", "t186ref"), ("5.1.2", "orin-nx", "t186ref")])
def test_standin_release_line_has_the_real_shape(jetpack: str, module: str, board: str) -> None:
    m = load_matrix()
    text = identity.nv_tegra_release(m.release(jetpack=jetpack), m.module(module, jetpack=jetpack).soc)
    match = RELEASE_LINE.match(text.splitlines()[0])
    assert match and match.group(2) == board  # R35 on an Orin still says t186ref (the R35 capture)


def test_standin_r36_release_file_is_the_real_file() -> None:
    real = load("nv_tegra_release-r36-orin-nx.txt")[1]
    m = load_matrix()
    ours = identity.nv_tegra_release(m.release(jetpack="6.2"), "t234").splitlines()
    assert RELEASE_LINE.match(ours[0]) and "BOARD: generic" in ours[0]
    assert ours[1:] == real[1:]  # same lines after the first, same order, nothing added


# ---- nvpmodel -q ------------------------------------------------------------------------

QUERY_NAME = re.compile(r"^NV Power Mode: [A-Za-z0-9_]+$")


@pytest.mark.parametrize("name", fixtures("nvpmodel-q-"))
def test_power_mode_parsers_read_every_capture(name: str) -> None:
    body = load(name)[1]
    assert QUERY_NAME.match(body[0]) and body[1].isdigit()
    expected = (body[0].split(": ", 1)[1], int(body[1]))
    assert status.parse_nvpmodel_query("\n".join(body)) == expected
    assert (
        status.parse_probe("1\n@@tx2setup@@\n\n@@tx2setup@@\n\n@@tx2setup@@\n" + "\n".join(body))["power_mode"]
        == f"{expected[1]} {expected[0]}"
    )


class FakeHost:
    def __init__(self, out: str) -> None:
        self.out = out

    def check_output(self, command: str) -> str:
        assert command == "nvpmodel -q"
        return self.out


def test_power_mode_check_accepts_the_login_users_output() -> None:
    body = load("nvpmodel-q-r32-nano-default.txt")[1]
    test_stack.test_power_mode_is_configured(FakeHost("\n".join(body)), {"power_mode_name": "5W", "power_mode_id": 1})
    with pytest.raises(AssertionError):
        test_stack.test_power_mode_is_configured(
            FakeHost("\n".join(body)), {"power_mode_name": "MAXN", "power_mode_id": 0}
        )


@pytest.mark.parametrize(("module", "jetpack"), [("tx2", "4.6.4"), ("agx-xavier", "4.6.4")])
def test_standin_query_as_root_and_as_login_user_on_r32(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, module: str, jetpack: str
) -> None:
    root = make_root(tmp_path, module, jetpack)
    real_root = load("nvpmodel-q-r32-nano-root.txt")[1]
    real_user = load("nvpmodel-q-r32-nano-default.txt")[1]
    as_user(monkeypatch, True)
    code, out, _ = run(capsys, nvpmodel.main, ["-q"], root)
    assert code == 0 and len(out) == len(real_root) and QUERY_NAME.match(out[0]) and out[1].isdigit()
    as_user(monkeypatch, False)
    code, out, _ = run(capsys, nvpmodel.main, ["-q"], root)
    assert code == 0 and len(out) == len(real_user) and QUERY_NAME.match(out[0]) and out[1].isdigit()
    assert out[2:] == real_user[2:]  # the EMC cap errors, word for word


def test_standin_query_on_r35_has_no_emc_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path, "agx-orin", "5.1.2")
    as_user(monkeypatch, False)
    code, out, _ = run(capsys, nvpmodel.main, ["-q"], root)
    assert code == 0 and len(out) == 2 and QUERY_NAME.match(out[0])


# ---- tegrastats ---------------------------------------------------------------------------


def shape(line: str) -> dict[str, Any]:
    """What a tegrastats line is made of, field by field (values dropped)."""
    cpus = re.search(r"CPU \[([^\]]*)\]", line)
    emc = re.search(r"EMC_FREQ \d+%(@\d+)?", line)
    gr3d = re.search(r"GR3D_FREQ \d+%(@\[[\d,]+\]|@\d+)?", line)
    assert cpus and emc and gr3d, line
    gr3d_form = gr3d.group(1) or ""
    return {
        "timestamp": bool(re.match(r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d ", line)),
        "cpus": len(cpus.group(1).split(",")),
        "emc_clock": bool(emc.group(1)),
        "gr3d_form": "array" if gr3d_form.startswith("@[") else ("clock" if gr3d_form else "plain"),
        "gr3d_clusters": gr3d_form.count(",") + 1 if gr3d_form.startswith("@[") else 0,
        "engines": re.findall(r"\b(VIC_FREQ|APE|MTS) ", line),
        "sensors": re.findall(r"\b([A-Za-z][A-Za-z0-9_]*)@-?[\d.]+C\b", line),
        "rails": re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*) \d+(?:mW)?/\d+(?:mW)?(?=\s|$)", line),
        "rail_unit": "mW" if re.search(r" \d+mW/\d+mW", line) else "",
    }


@pytest.mark.parametrize("name", fixtures("tegrastats-"))
def test_tegrastats_parsers_read_every_capture(name: str) -> None:
    for line in load(name)[1]:
        ram_total = int(re.search(r"RAM \d+/(\d+)MB", line).group(1))  # type: ignore[union-attr]
        p = tegrastats.parse_line(line)
        assert p["ram_total_mb"] == ram_total and len(p["cpus"]) == shape(line)["cpus"]
        t = telemetry.parse_tegrastats(line)
        assert t["ram_total_mb"] == ram_total and "gpu_util_pct" in t and "cpu_util_pct" in t
        s = status.parse_tegrastats(line)
        assert s["gpu_load_pct"] == p["gr3d_pct"]
        assert s.get("gpu_temp_c", 0.0) > -100  # a gated sensor (-256C) is no reading
        if shape(line)["rails"]:
            assert t["power_w"] > 0


# (module, jetpack, fixture, as_root, keys compared): SWAP shows only when swap exists, and
# a TX2's R28 root capture has R28's rail names, so only what the fixture settles is compared
CASES = [
    (
        "tx2",
        "4.6.4",
        "tegrastats-r32-tx2-default.txt",
        False,
        ["cpus", "emc_clock", "gr3d_form", "engines", "sensors", "rails"],
    ),
    (
        "agx-xavier",
        "4.6.4",
        "tegrastats-r32-agx-xavier-default.txt",
        False,
        ["cpus", "emc_clock", "gr3d_form", "engines", "sensors", "rails"],
    ),
    ("tx2", "4.6.4", "tegrastats-r28-tx2-root.txt", True, ["cpus", "emc_clock", "gr3d_form"]),
    ("agx-orin", "5.1.2", "tegrastats-r35plus-agx-orin.txt", True, list(shape("CPU [] EMC_FREQ 0% GR3D_FREQ 0%"))),
    ("agx-orin", "6.2", "tegrastats-r35plus-agx-orin.txt", False, list(shape("CPU [] EMC_FREQ 0% GR3D_FREQ 0%"))),
]


@pytest.mark.parametrize(("module", "jetpack", "name", "root_user", "keys"), CASES)
def test_standin_tegrastats_has_the_real_shape(
    module: str, jetpack: str, name: str, root_user: bool, keys: list[str]
) -> None:
    real = shape(load(name)[1][0])
    m = load_matrix()
    info = identity.board_info("b1", m.module(module, jetpack=jetpack), m.release(jetpack=jetpack))
    conf = nvpmodel.parse_conf(identity.nvpmodel_conf(m.module(module, jetpack=jetpack)))
    maxn = next(k for k, v in conf.modes.items() if v.startswith("MAXN"))  # every core online, as the captures
    line = tegrastats.format_line(info, conf, maxn, [5] * 12, False, 2000, 1_700_000_000.0, as_root=root_user)
    ours = shape(line)
    assert {k: ours[k] for k in keys} == {k: real[k] for k in keys}, line
    if "engines" not in keys and root_user:
        assert "APE" in ours["engines"]  # root sees APE on R32 as on R28


# ---- jetson_clocks --show -------------------------------------------------------------------

HEADLINE = re.compile(r"^SOC family:tegra\d{3}  Machine:\S.*$")
ONLINE = re.compile(r"^Online CPUs: [\d,-]+$")
CPU_LINE = re.compile(
    r"^cpu\d+: +Online=1 Governor=\w+ MinFreq=\d+ MaxFreq=\d+ CurrentFreq=\d+ IdleStates: (\w+=\d )+$"
)


@pytest.mark.parametrize(
    ("module", "jetpack", "name"),
    [
        ("agx-orin", "5.1.2", "jetson_clocks-show-r35-agx-orin-root.txt"),
        ("xavier-nx", "4.6.4", "jetson_clocks-show-r32-xavier-nx-root.txt"),
        ("orin-nx", "5.1.2", "jetson_clocks-show-r35-orin-nx-root.txt"),
    ],
)
def test_standin_show_has_the_real_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module: str, jetpack: str, name: str
) -> None:
    real = load(name)[1]
    root = make_root(tmp_path, module, jetpack)
    conf = nvpmodel.parse_conf((root / nvpmodel.CONF).read_text())
    widest = max(conf.modes, key=lambda mode: len(conf.online_cpus(mode)))
    nvpmodel.set_mode(conf, root, widest)  # every core online, as in the captures
    code, out, _ = run(capsys, jetson_clocks.main, ["--show"], root)
    assert code == 0
    for line in (real[0], out[0]):
        assert HEADLINE.match(line), line
    assert ONLINE.match(out[1]) and ONLINE.match(real[1])
    real_cpus = [ln for ln in real if ln.startswith("cpu")]
    our_cpus = [ln for ln in out if ln.startswith("cpu")]
    assert all(CPU_LINE.match(ln) for ln in real_cpus + our_cpus)
    # same order (cpu10 before cpu2 on R35) and the same idle states, trailing space included
    assert [ln.split(":")[0] for ln in our_cpus][: len(real_cpus)] == [ln.split(":")[0] for ln in real_cpus]
    assert {ln.split("IdleStates: ")[1] for ln in our_cpus} == {real_cpus[0].split("IdleStates: ")[1]}
    assert out[-1].startswith("NV Power Mode: ")
    assert out[0].split("Machine:")[1] == load_matrix().module(module, jetpack=jetpack).model


def test_standin_show_as_login_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    header, real = load("jetson_clocks-show-default-user.txt")
    root = make_root(tmp_path, "tx2", "4.6.4")
    as_user(monkeypatch, False)
    code, out, err = run(capsys, jetson_clocks.main, ["--show"], root)
    assert (code, out, err) == (int(header["exit"]), real, "")  # a TX2's model: the whole text matches
    code, out, _ = run(capsys, jetson_clocks.main, [], root)
    assert (code, out) == (1, real[1:])  # without --show only the error
