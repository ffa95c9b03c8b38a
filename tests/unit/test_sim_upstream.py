"""Unit: where `tx2setup sim up` finds the real CPU torch wheel the emulated boards install."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tx2setup.sim import upstream

NAME = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def fake_wheel(path: Path, version: str = "2.13.0+cpu", tag: str = "cp311-cp311-manylinux_2_28_x86_64") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("torch/__init__.py", "")
        zf.writestr(f"torch-{version}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    return path


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No wheel anywhere: an empty home and cache, no /opt/wheels, the installed torch hidden."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    monkeypatch.setenv("TX2SETUP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upstream, "WHEEL_DIRS", (str(tmp_path / "opt-wheels"),))
    monkeypatch.setattr(upstream, "_installed_torch", lambda: "")
    return {}


def test_nothing_found_is_none_and_the_warning_names_the_store(clean_env: dict[str, str], tmp_path: Path) -> None:
    assert upstream.find_torch_wheel(clean_env) is None
    line = upstream.missing_wheel_warning()
    assert "\n" not in line
    assert str(tmp_path / "cache" / "wheels") in line
    assert upstream.FETCH_ENV in line


def test_find_links_dir_and_wheel_store(clean_env: dict[str, str], tmp_path: Path) -> None:
    links = fake_wheel(tmp_path / "links" / NAME)
    assert upstream.find_torch_wheel({"PIP_FIND_LINKS": f"https://example.org/x {links.parent}"}) == links
    stored = fake_wheel(tmp_path / "cache" / "wheels" / NAME)
    assert upstream.find_torch_wheel(clean_env) == stored


def test_wrong_python_or_arch_is_not_taken(clean_env: dict[str, str], tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache" / "wheels" / "torch-2.13.0-cp312-cp312-manylinux_2_28_x86_64.whl")
    fake_wheel(tmp_path / "cache" / "wheels" / "torch-2.13.0-cp311-cp311-manylinux_2_28_aarch64.whl")
    assert upstream.find_torch_wheel(clean_env) is None


def test_sudo_users_pip_http_cache_is_read_by_content(
    clean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip keeps a download as an opaque <hash>.body in http-v2; under sudo it is the invoking user's cache
    alice = tmp_path / "alice"
    body = fake_wheel(alice / ".cache/pip/http-v2/a/b/c/0123abcd.body")
    fake_wheel(alice / ".cache/pip/http-v2/a/b/d/4567.body", tag="cp311-cp311-manylinux_2_28_aarch64")
    monkeypatch.setattr(upstream, "MIN_TORCH_BYTES", 0)
    monkeypatch.setattr(upstream, "_home_of", lambda user: alice if user == "alice" else None)
    assert upstream.find_torch_wheel(clean_env) is None  # not without SUDO_USER
    found = upstream.find_torch_wheel({"SUDO_USER": "alice"})
    assert found == tmp_path / "cache" / "wheels" / NAME  # stored under its wheel name
    assert os.path.samefile(found, body)
    assert upstream.wheel_version(found.name) == "2.13.0"


def test_small_http_cache_files_are_not_opened(
    clean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_wheel(tmp_path / "home/.cache/pip/http-v2/a/x.body")
    opened: list[Path] = []
    monkeypatch.setattr(upstream, "torch_in_http_cache", lambda p: opened.append(p))
    assert upstream.find_torch_wheel(clean_env) is None
    assert opened == []


def test_pip_built_wheels_and_installed_version_wins(
    clean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = fake_wheel(tmp_path / "pipcache/wheels/ab/cd/torch-2.12.0-cp311-cp311-linux_x86_64.whl", "2.12.0")
    newer = fake_wheel(tmp_path / "pipcache/wheels/ef/torch-2.14.0-cp311-cp311-linux_x86_64.whl", "2.14.0")
    env = {"PIP_CACHE_DIR": str(tmp_path / "pipcache")}
    assert upstream.find_torch_wheel(env) == newer
    monkeypatch.setattr(upstream, "_installed_torch", lambda: "2.12.0")
    assert upstream.find_torch_wheel(env) == older


def test_fetch_only_when_asked(clean_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fetch(store: Path, version: str) -> list[Path]:
        calls.append(version)
        return [fake_wheel(store / NAME)]

    monkeypatch.setattr(upstream, "_fetch", fetch)
    monkeypatch.setattr(upstream, "_installed_torch", lambda: "2.13.0+cpu")
    assert upstream.find_torch_wheel({}) is None
    assert calls == []
    assert upstream.find_torch_wheel({upstream.FETCH_ENV: "1"}) == tmp_path / "cache" / "wheels" / NAME
    assert calls == ["2.13.0+cpu"]


def test_sim_up_prints_the_missing_wheel_warning(monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]) -> None:
    """The command shows what Fleet.up collected, on stderr, one line each (no real fleet here)."""
    import tx2setup.sim
    from tx2setup.sim import hostcmd
    from tx2setup.sim.board import SimBoard

    board = SimBoard("tx2-1", 1, "127.0.1.11", "tx2", "4.6.4", "32.7.4", "t186", "1", Path("k"), Path("kh"), Path("d"))

    class FakeFleet:
        def __init__(self) -> None:
            self.matrix = None
            self.layout = SimpleNamespace(fleet=Path("/f"), inventory=Path("/f/inventory.ini"))
            self.warnings: list[str] = []
            self.boot_seconds: dict[str, float] = {}  # Fleet.up fills it; `sim up` prints it per board

        def up(self, specs: object) -> list[SimBoard]:
            self.warnings.append(upstream.missing_wheel_warning())
            return [board]

        def status(self) -> list[object]:
            return []

        def http_running(self) -> bool:
            return True

        def upstream(self) -> SimpleNamespace:
            return SimpleNamespace(port=8470)

    monkeypatch.setattr(tx2setup.sim, "Fleet", FakeFleet)
    monkeypatch.setattr(hostcmd, "require_root", lambda verb="sim": None)
    res = cli("sim", "up")
    assert res.code == 0
    warning = [ln for ln in res.err.splitlines() if ln.startswith("warning: no CPU torch wheel")]
    assert len(warning) == 1
