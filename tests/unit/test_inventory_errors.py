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
        ("host b1", "power_mode", "has no power mode 'MAXN'", "0 15W"),
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
    pytest.param(
        f"b1 {GOOD_HOST} torch_version=abc",
        ("host b1", "torch_version", "'abc' is not a torch version"),
        id="torch-abc",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} torch_version=2.1.0",
        ("host b1", "torch_wheel_url", "missing: torch_version is overridden"),
        id="torch-version-without-wheel",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} torch_wheel_url=http://10.0.0.9/torch-1.10.0-cp36-cp36m-linux_aarch64.whl",
        ("host b1", "torch_version", "missing: torch_wheel_url is overridden"),
        id="torch-wheel-without-version",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} torch_version=2.1.0 torch_wheel_url=http://10.0.0.9/torch-1.10.0-cp36-cp36m-linux_aarch64.whl",
        ("host b1", "torch_wheel_url", "is torch 1.10.0, not 2.1.0"),
        id="torch-wheel-other-version",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} torch_version=1.10.0 torch_wheel_url=http://10.0.0.9/torch-1.10.0-cp38-cp38-linux_aarch64.whl",
        ("host b1", "torch_wheel_url", "not Python 3.6 (cp36)"),
        id="torch-wheel-other-python",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} zed_sdk_version=abc", ("host b1", "zed_sdk_version", "not a ZED SDK version"), id="zed-abc"
    ),
    pytest.param(
        f"b1 {GOOD_HOST} nvidia_apt_base=ftp://mirror/jetson",
        ("host b1", "nvidia_apt_base", "not an http(s) URL"),
        id="apt-base-not-http",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 l4t=99.9",
        ("host b1", "l4t", "unknown L4T '99.9'"),
        id="l4t-unknown",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 l4t=32.7.4 jetpack=4.6.1",
        ("host b1", "l4t", "L4T 32.7.4 is JetPack 4.6.4, but jetpack is 4.6.1"),
        id="l4t-jetpack-conflict",
    ),
    pytest.param(
        "b1 ansible_host=10.0.0.1 jetson_module=tx2 l4t=35.4.1",
        ("host b1", "jetpack", "cannot run JetPack 5.1.2"),
        id="l4t-tx2-on-jp5",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} ansible_user='x;reboot'", ("host b1", "ansible_user", "'x;reboot'"), id="unsafe-user"
    ),
    pytest.param(f"b1 {GOOD_HOST} board_serial='$(reboot)'", ("host b1", "board_serial", "unsafe"), id="unsafe-serial"),
    pytest.param(f"b1 {GOOD_HOST} usb_port='1;rm'", ("host b1", "usb_port", "unsafe"), id="unsafe-usb-port"),
    pytest.param(f"b1 {GOOD_HOST} ansible_port=ssh", ("host b1", "ansible_port", "not a TCP port"), id="bad-port"),
    pytest.param(
        "b1 ansible_host=board.local jetson_module=tx2 jetpack=4.6.4\n"
        "b2 ansible_host=BOARD.local jetson_module=tx2 jetpack=4.6.4",
        ("host b2", "ansible_host", "BOARD.local is also the address of b1"),
        id="duplicate-address-case",
    ),
    pytest.param(
        f"b1 {GOOD_HOST} ansible_port=2201\nb2 {GOOD_HOST} ansible_port=2201",
        ("host b2", "ansible_host", "10.0.0.1 port 2201 is also the address of b1"),
        id="duplicate-address-port",
    ),
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
    check_error(
        cli, tmp_path, path, "host b1", "jetpack", "cannot run JetPack 6.0", f"(set in {tmp_path}/group_vars/tx2.yml)"
    )


def test_field_error_from_host_vars_names_that_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "host_vars").mkdir()
    write(tmp_path / "host_vars", "b1.yml", "power_mode: 9\n")
    path = write(tmp_path, "lab.ini", f"[j]\nb1 {GOOD_HOST}\n")
    check_error(cli, tmp_path, path, "host b1", "power_mode", f"(set in {tmp_path}/host_vars/b1.yml)")


def test_field_error_on_the_host_line_names_no_other_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "group_vars").mkdir()
    write(tmp_path / "group_vars", "j.yml", "target_fps: 20\n")
    path = write(tmp_path, "lab.ini", f"[j]\nb1 {GOOD_HOST} target_fps=-1\n")
    check_error(cli, tmp_path, path, "host b1", "target_fps", "positive")
    res = cli("inventory", "check", "-i", str(path))
    assert "set in" not in res.err


def test_group_vars_syntax_error_names_the_group_vars_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "group_vars").mkdir()
    write(tmp_path / "group_vars", "tx2.yml", "jetson_module: tx2\npower_mode: [1\n")
    path = write(tmp_path, "lab.ini", "[tx2]\nb1 ansible_host=10.0.0.1\n\n[tx2:vars]\njetpack=4.6.4\n")
    res = cli("inventory", "check", "-i", str(path))
    assert res.code == 2
    (line,) = res.err.strip().splitlines()
    assert line.startswith(f"error: {tmp_path}/group_vars/tx2.yml: line ") and "YAML syntax error" in line
    assert "lab.ini" not in line


@pytest.mark.parametrize("header", ["[j:vars", "[j:children", "[j"])
def test_bad_ini_section_header_names_the_line(cli, tmp_path: Path, header: str) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "lab.ini", f"[tx2]\nb1 {GOOD_HOST}\n\n{header}\nb2 ansible_host=10.0.0.2\n")
    check_error(cli, tmp_path, path, "line 4", "bad section header", repr(header))


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("all:\n  hosts:\n    - b1\n    - b2\n", ("line 3", "hosts must be a mapping of names, not a list")),
        ("all:\n  vars:\n    - a\n", ("line 3", "vars must be a mapping")),
        ("- b1\n- b2\n", ("line 1", "the top level must be a mapping of groups")),
        ("all:\n  children:\n    j:\n      host:\n        b1: {}\n", ("line 4", "unexpected key 'host'")),
    ],
)
def test_yaml_structure_error_names_the_line(cli, tmp_path: Path, body: str, needles: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    check_error(cli, tmp_path, write(tmp_path, "lab.yml", body), *needles)


def test_inventory_directory_with_only_ini_files_says_why(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inv"
    inv.mkdir()
    write(inv, "lab.ini", f"[j]\nb1 {GOOD_HOST}\n")
    check_error(cli, tmp_path, inv, "skips *.ini files inside an inventory directory", f"-i {inv}/lab.ini")


def test_inventory_directory_with_yaml_is_read(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inv"
    inv.mkdir()
    write(inv, "lab.yml", "all:\n  hosts:\n    b1: {ansible_host: 10.0.0.1, jetson_module: tx2, jetpack: '4.6.4'}\n")
    res = cli("inventory", "check", "-i", str(inv), "--json")
    assert res.code == 0, res.err


def test_check_leaves_home_alone(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    path = write(tmp_path, "lab.ini", f"[j]\nb1 {GOOD_HOST}\n")
    res = cli("inventory", "check", "-i", str(path), "--json")
    assert res.code == 0, res.err
    assert list(home.iterdir()) == []


def test_vaulted_group_vars(cli, vaulted: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path, secret, wrong = vaulted["inv"], vaulted["secret"], vaulted["wrong"]
    for extra, needle in (
        ((), "vault-encrypted; pass --vault-password-file"),
        (("--vault-password-file", str(wrong)), "does not decrypt it"),
    ):
        res = cli("inventory", "check", "-i", str(path), *extra)
        assert res.code == 2 and res.out == ""
        (line,) = res.err.strip().splitlines()
        assert line.startswith(f"error: {vaulted['group_vars']}: ") and needle in line, line
    res = cli("inventory", "check", "-i", str(path), "--json", "--vault-password-file", str(secret))
    assert res.code == 0, res.err
    assert '"l4t": "32.7.4"' in res.out
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(secret))
    assert cli("inventory", "check", "-i", str(path), "--json").code == 0


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
