"""The default user: re-runnable on one rootfs (defect 5 of issue 11), and the host's qemu."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flash_helpers import HOST_FAKES, TX2_PAIR, hooks, set_bsp_version, sysfs

from tx2setup.errors import EnvironmentProblem, UserError
from tx2setup.flash import rootfs_user, session
from tx2setup.flash.session import FlashOptions

CREATE = ["./tools/l4t_create_default_user.sh", "-u", "nvidia", "--accept-license"]


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch, calls: Path) -> None:
    monkeypatch.setenv("STANDIN_SYSFS", str(sysfs("two-tx2")))


@pytest.fixture
def opts(tmp_path: Path, bsp: Path, write_inventory: Callable[..., Path]) -> Callable[..., FlashOptions]:
    def make(inventory: str = TX2_PAIR, **kw: object) -> FlashOptions:
        base: dict[str, object] = {
            "inventory": write_inventory(inventory),
            "sysfs_root": sysfs("two-tx2"),
            "bsp": bsp,
            "log_dir": tmp_path / "logs",
            "accept_license": True,
            "wait": False,
            "timeout_s": 30.0,
            "one_by_one": True,
        }
        base.update(kw)
        return FlashOptions(**base)  # type: ignore[arg-type]

    return make


def _script(bsp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CREATE, *args], cwd=bsp, capture_output=True, text=True, check=False)


def _matches(hashed: str, password: str) -> bool:
    """Whether a crypt(3) hash is of `password` (openssl recomputes it with the hash's own salt)."""
    _, scheme, salt, _ = hashed.split("$")
    out = subprocess.run(
        ["openssl", "passwd", f"-{scheme}", "-salt", salt, "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() == hashed


def _shadow_hash(bsp: Path, user: str = "nvidia") -> str:
    lines = [ln for ln in (bsp / "rootfs/etc/shadow").read_text().splitlines() if ln.startswith(f"{user}:")]
    assert len(lines) == 1, lines
    return lines[0].split(":")[1]


def test_the_standin_fails_a_second_run_on_r32_like_the_real_script(bsp: Path) -> None:
    """R32.7.2's script: `set -e` and a bare useradd, so run 2 stops at "user already exists" (exit 9)."""
    assert _script(bsp, "-p", "one").returncode == 0
    again = _script(bsp, "-p", "two")
    assert again.returncode == 9 and "useradd: user 'nvidia' already exists" in again.stderr
    assert _matches(_shadow_hash(bsp), "one")


def test_the_standin_keeps_the_old_password_on_a_second_run_on_r36(bsp: Path) -> None:
    """R36.2.0's script: `useradd ... || true` when the home exists: exit 0, and the first password stays."""
    set_bsp_version(bsp, "36.4.3")
    assert _script(bsp, "-p", "one").returncode == 0
    assert _script(bsp, "-p", "two").returncode == 0
    assert _matches(_shadow_hash(bsp), "one")
    assert "weston-launch:x:999:nvidia" in (bsp / "rootfs/etc/group").read_text()


def _flash(opts: Callable[..., FlashOptions], inventory: str = TX2_PAIR, **kw: object) -> session.Summary:
    return session.execute(session.prepare(opts(inventory, **kw), hooks()), hooks())


def test_one_by_one_flash_of_two_tx2_on_r32_creates_the_user_for_each(
    opts: Callable[..., FlashOptions], bsp: Path, calls: Path, tmp_path: Path
) -> None:
    summary = _flash(opts)
    assert [(r.board, r.status, r.detail) for r in summary.results] == [
        ("car-tx2-01", "flashed", ""),
        ("car-tx2-02", "flashed", ""),
    ]
    tools = [ln.split(" ", 1)[0] for ln in calls.read_text().splitlines()]
    assert tools.count("l4t_create_default_user.sh") == 2 and tools.count("flash.sh") == 2
    rootfs = bsp / "rootfs"
    # the rootfs board 2 was flashed with: one user, one group, one membership, its own hostname only
    assert [ln.split(":")[0] for ln in (rootfs / "etc/passwd").read_text().splitlines()].count("nvidia") == 1
    group = (rootfs / "etc/group").read_text()
    assert group.count("\nnvidia:x:1000:") == 1 and "sudo:x:27:nvidia\n" in group
    assert [ln for ln in (rootfs / "etc/hosts").read_text().splitlines() if ln.startswith("127.0.1.1")] == [
        "127.0.1.1 car-tx2-02"
    ]
    hashed = _shadow_hash(bsp)
    assert hashed.startswith("$6$") and _matches(hashed, "s3cret-pass")  # the inventory's, not the made-up one

    # a later run on the same (cached) rootfs, with another password: it takes effect
    calls.unlink()
    summary = _flash(opts, TX2_PAIR.replace("s3cret-pass", "n3w-pass"), log_dir=tmp_path / "logs2")
    assert summary.ok, [r.detail for r in summary.results]
    assert _matches(_shadow_hash(bsp), "n3w-pass")


def test_a_user_created_by_hand_before_tx2setup_is_replaced(opts: Callable[..., FlashOptions], bsp: Path) -> None:
    """A BSP whose user someone created with the script already (the R32 re-run case, first time)."""
    assert _script(bsp, "-p", "by-hand").returncode == 0
    summary = _flash(opts, TX2_PAIR.replace("car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2", ""))
    assert summary.ok, [r.detail for r in summary.results]
    assert _matches(_shadow_hash(bsp), "s3cret-pass")


def test_a_system_account_name_is_refused(opts: Callable[..., FlashOptions], bsp: Path) -> None:
    with pytest.raises(UserError, match=r"flash_user: 'daemon' is a system account of the rootfs"):
        rootfs_user.clear_user(bsp / "rootfs", "daemon")
    summary = _flash(opts, TX2_PAIR.replace("flash_user=nvidia", "flash_user=daemon"))
    assert [r.status for r in summary.results] == ["failed", "failed"]
    assert "is a system account" in summary.results[0].detail
    assert "daemon:x:1:1:" in (bsp / "rootfs/etc/passwd").read_text()  # untouched


def test_clear_user_takes_out_exactly_what_useradd_put_in(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/bash\nnvidia:x:1000:1000::/home/nvidia:/bin/bash\n")
    (etc / "shadow").write_text("root:*:1:0:99999:7:::\nnvidia:$1$x$y:19000:0:99999:7:::\n")
    (etc / "group").write_text("sudo:x:27:ann,nvidia\nvideo:x:44:nvidia\nnvidia:x:1000:\nann:x:1001:\n")
    (etc / "gshadow").write_text("sudo:*::ann,nvidia\nnvidia:!::\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.1.1 car-tx2-01\n")
    (etc / "shadow").chmod(0o640)
    assert rootfs_user.clear_user(tmp_path, "nvidia") is True
    assert (etc / "passwd").read_text() == "root:x:0:0::/root:/bin/bash\n"
    assert (etc / "shadow").read_text() == "root:*:1:0:99999:7:::\n"
    assert (etc / "shadow").stat().st_mode & 0o777 == 0o640
    assert (etc / "group").read_text() == "sudo:x:27:ann\nvideo:x:44:\nann:x:1001:\n"
    assert (etc / "gshadow").read_text() == "sudo:*::ann\n"
    assert (etc / "hosts").read_text() == "127.0.0.1 localhost\n"
    assert rootfs_user.clear_user(tmp_path, "nvidia") is False


# -- qemu-aarch64-static on the host ----------------------------------------------------------


def test_missing_qemu_is_refused_before_anything_runs(
    opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a qemu-aarch64-static on PATH does not count: the script tests /usr/bin/qemu-aarch64-static itself
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "qemu-aarch64-static").write_text("")
    monkeypatch.setenv("PATH", f"{on_path}:/usr/bin:/bin")
    absent = tmp_path / "usr-bin" / "qemu-aarch64-static"
    with pytest.raises(EnvironmentProblem) as exc:
        session.prepare(opts(), hooks(qemu_aarch64=absent))
    assert exc.value.exit_code == 3 and "\n" not in exc.value.message
    assert exc.value.message.startswith(f"{absent} not found: l4t_create_default_user.sh runs useradd")
    assert "install the Debian package qemu-user-static" in exc.value.message
    assert not calls.exists() and not (tmp_path / "logs").exists()


def test_missing_binfmt_entry_is_refused(opts: Callable[..., FlashOptions], calls: Path, tmp_path: Path) -> None:
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    (binfmt / "status").write_text("enabled\n")
    entry = (HOST_FAKES / "binfmt_misc" / "qemu-aarch64").read_text()
    (binfmt / "qemu-aarch64").write_text(entry.replace("enabled", "disabled", 1))
    with pytest.raises(EnvironmentProblem, match=r"no enabled aarch64 entry in .*binfmt_misc") as exc:
        session.prepare(opts(), hooks(binfmt_dir=binfmt))
    assert exc.value.exit_code == 3
    (binfmt / "any-name").write_text(entry)  # matched by its magic, whatever it is called
    session.prepare(opts(), hooks(binfmt_dir=binfmt))
    assert not calls.exists()


def test_missing_qemu_through_the_cli_is_one_line_exit_3(  # type: ignore[no-untyped-def]
    cli, write_inventory: Callable[..., Path], bsp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs_user, "QEMU_AARCH64", tmp_path / "absent" / "qemu-aarch64-static")
    inv = write_inventory(TX2_PAIR)
    res = cli("flash", "-i", str(inv), "--sysfs-root", str(sysfs("two-tx2")), "--bsp", str(bsp), "--accept-license")
    assert res.code == 3, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "qemu-aarch64-static not found" in lines[0] and "qemu-user-static" in lines[0]
