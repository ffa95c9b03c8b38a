"""Every bad input a user can give `inventory check`: one line naming file, host and field,
exit status 2, no traceback, nothing touched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

GOOD_HOST = "ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4"


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def check_error(
    cli: Callable[..., object], tmp_path: Path, path: Path, *needles: str, extra: tuple[str, ...] = ()
) -> None:
    before = snapshot(tmp_path)
    res = cli("inventory", "check", "-i", str(path), *extra)
    assert res.code == 2, res.err  # type: ignore[attr-defined]
    err_lines = res.err.strip().splitlines()  # type: ignore[attr-defined]
    assert len(err_lines) == 1, res.err  # type: ignore[attr-defined]
    line = err_lines[0]
    assert line.startswith("error: ")
    assert "Traceback" not in line
    for needle in (str(path), *needles):
        assert needle in line, f"{needle!r} not in {line!r}"
    assert res.out == ""  # type: ignore[attr-defined]
    assert snapshot(tmp_path) == before


INI_CASES = [
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx3 jetpack=4.6.4",
        ("host b1", "jetson_module", "'tx3'"),
        id="unknown-module",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=5.1.2",
        ("host b1", "jetpack", "cannot run JetPack 5.1.2"),
        id="tx2-on-jp5",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=6.2",
        ("host b1", "jetpack", "cannot run JetPack 6.2"),
        id="tx2-on-jp6",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.9",
        ("host b1", "jetpack", "unknown JetPack '4.9'"),
        id="unknown-jetpack",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=four",
        ("host b1", "jetpack", "not a version"),
        id="jetpack-not-a-version",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=agx-orin jetpack=6.2 ros_distro=melodic",
        ("host b1", "ros_distro", "ROS melodic is not available for Ubuntu 22.04"),
        id="melodic-on-2204",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4 ros_distro=rolling",
        ("host b1", "ros_distro", "'rolling'"),
        id="unknown-ros",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.3 components=zed_sdk",
        ("host b1", "components", "zed_sdk is not available for JetPack 4.3"),
        id="zed-on-jp43",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=3.3 components=pytorch",
        ("host b1", "components", "pytorch is not available for JetPack 3.3"),
        id="pytorch-on-jp33",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4 components=ros,gazebo",
        ("host b1", "components", "'gazebo'"),
        id="unknown-component",
    ),
    pytest.param(
        f"b1 {GOOD_HOST}\nb2 {GOOD_HOST}",
        ("host b2", "ansible_host", "10.0.0.1 is also the address of b1"),
        id="duplicate-address",
    ),
    pytest.param("b1 jetson_module=tx2 jetpack=4.6.4", ("host b1", "ansible_host", "missing"), id="missing-address"),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetpack=4.6.4", ("host b1", "jetson_module", "missing"), id="missing-module"
    ),
    pytest.param("b1 ansible_host=10.0.0.1 jetson_module=tx2", ("host b1", "jetpack", "missing"), id="missing-jetpack"),
    pytest.param(f"b1 {GOOD_HOST} target_fps=0", ("host b1", "target_fps", "positive"), id="target-zero"),
    pytest.param(f"b1 {GOOD_HOST} target_fps=-5", ("host b1", "target_fps", "positive"), id="target-negative"),
    pytest.param(
        f"b1 {GOOD_HOST} target_fps=fast", ("host b1", "target_fps", "not a number"), id="target-not-a-number"
    ),
    pytest.param(f"b1 {GOOD_HOST} target_fps=nan", ("host b1", "target_fps", "positive"), id="target-nan"),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=orin-nano jetpack=6.0 power_mode=MAXN",
        ("host b1", "power_mode", "has no power mode 'MAXN'", "0 MODE_15W"),
        id="power-mode-name",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} power_mode=9", ("host b1", "power_mode", "no power mode '9'"), id="power-mode-number"
    ),
    pytest.param(f"b1 {GOOD_HOST} power_mode='0;reboot'", ("host b1", "power_mode", "unsafe"), id="unsafe-power-mode"),
    pytest.param(
        "b1 ansible_host='10.0.0.1;reboot' jetson_module=tx2 jetpack=4.6.4",
        ("host b1", "ansible_host", "neither an IP"),
        id="unsafe-address",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} torch_wheel_url='http://x/$(reboot).whl'",
        ("host b1", "torch_wheel_url", "unsafe"),
        id="unsafe-override",
    ),
    pytest.param(f"b1 {GOOD_HOST}\nnot a valid = = line", ("line ",), id="ini-syntax"),
    pytest.param("# nothing here yet\n", ("holds no hosts",), id="empty"),
]


@pytest.mark.parametrize(("body", "needles"), INI_CASES)
def test_bad_ini_inventory(cli, tmp_path: Path, body: str, needles: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    check_error(cli, tmp_path, write(tmp_path, "lab.ini", f"[jetsons]\n{body}\n"), *needles)


def test_ini_syntax_error_names_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "lab.ini", f"[jetsons]\nb1 {GOOD_HOST}\nb2 ansible_host\n")
    check_error(cli, tmp_path, path, "line 3")


def test_yaml_syntax_error_names_the_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(
        tmp_path, "lab.yml", "all:\n  hosts:\n    b1:\n      ansible_host: 10.0.0.1\n     jetson_module: [tx2\n"
    )
    check_error(cli, tmp_path, path, "line 5", "YAML syntax error")


def test_unsafe_host_name_in_yaml(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(
        tmp_path,
        "lab.yml",
        "all:\n  hosts:\n    'car;reboot':\n"
        "      ansible_host: 10.0.0.1\n      jetson_module: tx2\n      jetpack: '4.6.4'\n",
    )
    check_error(cli, tmp_path, path, "host car;reboot", "name")


def test_missing_inventory_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    check_error(cli, tmp_path, tmp_path / "nope.ini", "no such inventory")


def test_limit_that_matches_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "lab.ini", f"[jetsons]\nb1 {GOOD_HOST}\n")
    check_error(cli, tmp_path, path, "--limit 'zz'", extra=("--limit", "zz"))


def test_error_inherited_from_group_vars_still_names_the_host(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "group_vars").mkdir()
    write(tmp_path / "group_vars", "tx2.yml", "jetson_module: tx2\njetpack: '6.0'\n")
    path = write(tmp_path, "lab.ini", "[tx2]\nb1 ansible_host=10.0.0.1\n")
    check_error(cli, tmp_path, path, "host b1", "jetpack", "cannot run JetPack 6.0")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("matrix", "--module", "tx3"), "unknown module 'tx3'"),
        (("matrix", "--jetpack", "9.9"), "unknown JetPack '9.9'"),
        (("matrix", "--l4t", "99.1"), "unknown L4T '99.1'"),
    ],
)
def test_bad_matrix_filters(cli, args: tuple[str, ...], needle: str) -> None:  # type: ignore[no-untyped-def]
    res = cli(*args)
    assert res.code == 2
    assert res.err.strip().splitlines() == [f"error: {res.err.strip().removeprefix('error: ')}"]
    assert needle in res.err


def test_verbose_shows_the_traceback() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "tx2setup", "--verbose", "matrix", "--module", "tx3"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "MatrixError" in proc.stderr
