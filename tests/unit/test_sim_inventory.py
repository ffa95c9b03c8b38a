"""Unit: the sim's INI inventory, read back by the real loader (ansible-inventory) and planner."""

from __future__ import annotations

from pathlib import Path

from tx2setup import become, fleet, plan
from tx2setup.matrix import load as load_matrix
from tx2setup.sim.board import SimBoard, address_of
from tx2setup.sim.inventory import MISSING_WHEEL, Upstream, become_vars, zed_file
from tx2setup.sim.inventory import render as render_inventory


def render(boards: list[SimBoard], up: Upstream, key: Path, known_hosts: Path, matrix: object) -> str:
    """The inventory, with a vault password file beside the key (the loader checks it exists)."""
    vault = key.parent / "vault-password"
    vault.parent.mkdir(parents=True, exist_ok=True)
    vault.write_text("fleet-vault-secret\n")
    return render_inventory(boards, up, key, known_hosts, load_matrix(), vault)


def _board(tmp_path: Path, name: str, module: str, jetpack: str, index: int) -> SimBoard:
    m = load_matrix()
    rel = m.release(jetpack=jetpack)
    return SimBoard(
        name=name,
        index=index,
        address=address_of(index),
        module=module,
        jetpack=jetpack,
        l4t=rel.l4t,
        soc=m.module(module).soc,
        serial="0123456789012",
        key_path=tmp_path / "keys" / "id_ed25519",
        known_hosts_path=tmp_path / "known_hosts",
        board_dir=tmp_path / "boards" / name,
    )


def test_rendered_inventory_loads_and_resolves(tmp_path: Path) -> None:
    boards = [
        _board(tmp_path, "tx2-1", "tx2", "4.6.4", 1),
        _board(tmp_path, "xavier-nx-1", "xavier-nx", "5.1.2", 2),
        _board(tmp_path, "agx-orin-1", "agx-orin", "6.2", 3),
    ]
    wheel = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    up = Upstream(port=8471, torch_wheel=wheel, torch_version="2.13.0")
    path = tmp_path / "sim.ini"
    path.write_text(render(boards, up, tmp_path / "keys/id_ed25519", tmp_path / "known_hosts", load_matrix()))
    inv = fleet.load(path)
    by_name = {b.name: b for b in inv.boards}
    assert set(by_name) == {"tx2-1", "xavier-nx-1", "agx-orin-1"}
    tx2 = by_name["tx2-1"]
    assert tx2.ansible_host == "127.0.1.11"
    assert tx2.emulated is True
    assert tx2.serial == "0123456789012"  # leading zero kept: INI must not read it as a number
    assert set(tx2.groups) == {"sim", "tx2"}
    assert "agx_orin" in by_name["agx-orin-1"].groups
    hv = tx2.hostvars
    # the BSP's default user with sudo, as a freshly flashed board: never root
    assert hv["ansible_user"] == "nvidia"
    assert str(hv["ansible_become"]).lower() == "true"
    assert inv.vault_password_file == str(tmp_path / "keys" / "vault-password")
    assert hv["ansible_ssh_private_key_file"] == str(tmp_path / "keys/id_ed25519")
    assert "StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in hv["ansible_ssh_common_args"]
    assert hv["ansible_python_interpreter"] == "/usr/bin/python3"
    plans = {p.name: p for p in plan.resolve(inv)}
    p = plans["tx2-1"]
    assert p.torch_version == "2.13.0"
    assert p.torch_wheel_url == f"http://127.0.0.1:8471/pytorch/{wheel}"
    assert p.zed_sdk_url == "http://127.0.0.1:8471/zed/ZED_SDK_Tegra_L4T32.7_v3.8.zstd.run"
    assert p.zed_sdk_version == "3.8"
    assert p.caffe_source_url == "http://127.0.0.1:8471/caffe/caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
    assert p.apt_sources == (
        "deb http://127.0.0.1:8471/jetson/common r32.7 main",
        "deb http://127.0.0.1:8471/jetson/t186 r32.7 main",
    )
    assert plans["agx-orin-1"].apt_sources[1] == "deb http://127.0.0.1:8471/jetson/t234 r36.4 main"


def test_jetpack_without_zed_drops_the_component(tmp_path: Path) -> None:
    boards = [_board(tmp_path, "old-1", "tx2", "4.3", 1)]
    path = tmp_path / "sim.ini"
    path.write_text(render(boards, Upstream(port=8470), tmp_path / "k", tmp_path / "kh", load_matrix()))
    inv = fleet.load(path)
    assert inv.boards[0].components == ("ros", "caffe", "pytorch")
    (p,) = plan.resolve(inv)  # no PlanError: what this JetPack cannot have is not asked for
    assert p.zed_sdk_url is None


def test_zed_file_names_follow_the_real_pattern() -> None:
    m = load_matrix()
    assert zed_file(m.release(jetpack="5.1.2")) == "ZED_SDK_Tegra_L4T35.4_v5.0.zstd.run"
    assert zed_file(m.release(jetpack="4.3")) is None


def test_no_host_wheel_gives_a_url_that_names_the_problem(tmp_path: Path) -> None:
    boards = [_board(tmp_path, "tx2-1", "tx2", "4.6.4", 1)]
    path = tmp_path / "sim.ini"
    path.write_text(render(boards, Upstream(port=8470), tmp_path / "k", tmp_path / "kh", load_matrix()))
    (p,) = plan.resolve(fleet.load(path))
    # never NVIDIA's aarch64 wheel (it cannot install on the x86_64 boards)
    assert p.torch_wheel_url == f"http://127.0.0.1:8470/pytorch/{MISSING_WHEEL}"


def test_become_vars_are_vaulted_and_decrypt_with_the_fleet_vault_password(tmp_path: Path) -> None:
    boards = [_board(tmp_path, "tx2-1", "tx2", "4.6.4", 1)]
    path = tmp_path / "sim.ini"
    path.write_text(render(boards, Upstream(port=8470), tmp_path / "keys" / "id_ed25519", tmp_path / "kh", None))
    vault = tmp_path / "keys" / "vault-password"
    text = become_vars("nvidia", vault.read_text().strip(), tmp_path)
    assert "nvidia" not in text.split("!vault", 1)[1]  # only ciphertext after the tag
    gv = tmp_path / "group_vars" / "sim"
    gv.mkdir(parents=True)
    (gv / "become.yml").write_text(text)
    inv = fleet.load(path)  # parses without the vault password: the value stays encrypted
    (b,) = inv.boards
    assert become.vaulted_text(b.hostvars["ansible_become_password"]) is not None
    assert become.board_password(b.hostvars, None, inv.vault_password_file) == "nvidia"
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    try:
        become.board_password(b.hostvars, None, str(wrong))
    except become.UserError as exc:
        assert "does not decrypt" in str(exc)
    else:
        raise AssertionError("a wrong vault password decrypted the become password")
