"""Helpers shared by the flash tests (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

from tx2setup.flash import session

REPO = Path(__file__).resolve().parents[2]
STANDIN_BSP = REPO / "tests" / "standin_bsp" / "Linux_for_Tegra"
SYSFS = REPO / "tests" / "fixtures" / "sysfs"
HOST_FAKES = REPO / "tests" / "flash" / "host_fakes"


def sysfs(name: str) -> Path:
    return SYSFS / name


def set_bsp_version(bsp: Path, l4t: str) -> None:
    branch, major, minor = l4t.split(".")
    (bsp / "nv_tegra" / "bsp_version").write_text(f"BSP_BRANCH={branch}\nBSP_MAJOR={major}\nBSP_MINOR={minor}\n")


def processes_with(token: str) -> list[int]:
    """PIDs whose environment holds TX2SETUP_TEST_TOKEN=<token> (set by the `token` fixture)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"TX2SETUP_TEST_TOKEN={token}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def hooks(**kw: object) -> session.Hooks:
    """Hooks for a root shell with plenty of disk and no prompts, unless told otherwise."""
    base: dict[str, object] = {
        "is_root": lambda: True,
        "disk_free": lambda _p: 1 << 50,
        "provision_available": lambda: True,
        "wait_poll_s": 0.05,
    }
    base.update(kw)
    return session.Hooks(**base)  # type: ignore[arg-type]


TX2_PAIR = """\
[tx2]
car-tx2-01 ansible_host=127.0.0.1 usb_port=1-2.1
car-tx2-02 ansible_host=127.0.0.2 usb_port=1-2.2

[tx2:vars]
jetson_module=tx2
jetpack=4.6.4
flash_user=nvidia
flash_password=s3cret-pass
"""
