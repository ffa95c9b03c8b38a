"""Root-run downloads (issue 13): what a board runs as root (the ZED installer, the torch
wheel, the Caffe source) comes over https or with a pinned sha256. A plain-http URL with no
pin is refused, both in the controller's cache (`provision`, `cache sync`) and in the
play's plan action (plain ansible-playbook); loopback URLs (the emulated fleet's stand-in
upstream, http://127.0.0.1:PORT) never leave the machine and stay allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tx2setup import cache, fleet, plan, playvars
from tx2setup.errors import UserError

HOST = "b1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4 components=zed_sdk"


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://example.com/ZED_SDK.run", True),
        ("HTTP://10.0.0.5:8000/torch.whl", True),
        ("http://[fe80::1]/caffe.tar.gz", True),
        ("http://127.0.0.1:8470/caffe.tar.gz", False),
        ("http://127.3.2.1/x", False),
        ("http://[::1]:80/x", False),
        ("http://localhost/x", False),
        ("https://example.com/ZED_SDK.run", False),
    ],
)
def test_which_urls_need_a_pin(url: str, refused: bool) -> None:
    assert cache.unverified_plain_http(url) is refused


def test_the_cache_refuses_an_unpinned_plain_http_download_before_connecting(tmp_path: Path) -> None:
    store = cache.ArtifactCache(cache.LockFile.load(tmp_path / "tx2setup.lock"), root=tmp_path / "c")
    with pytest.raises(UserError, match=r"plain-http download .* no sha256 pinned"):
        store.fetch("http://tx2setup-test.invalid/ZED_SDK_Tegra.run")
    assert not list((tmp_path / "c").rglob("*.part")), "a download was started"
    assert not (tmp_path / "tx2setup.lock").exists()


def _zed_plan(tmp_path: Path, url: str) -> plan.BoardPlan:
    inv = tmp_path / "lab.ini"
    inv.write_text(f"[jetsons]\n{HOST} zed_sdk_version=3.8 zed_sdk_url={url}\n")
    return plan.resolve(fleet.load(inv))[0]


def test_the_plan_action_refuses_an_unpinned_plain_http_url(tmp_path: Path) -> None:
    lock = cache.LockFile.load(tmp_path / "tx2setup.lock")
    with pytest.raises(UserError, match=r"b1: zed_sdk_url"):
        playvars.artifact_vars(_zed_plan(tmp_path, "http://example.com/ZED_SDK.run"), lock, None)
    # https without a pin: fetched, with the warning that `cache sync` pins it
    _, unpinned = playvars.artifact_vars(_zed_plan(tmp_path, "https://example.com/ZED_SDK.run"), lock, None)
    assert unpinned == ["https://example.com/ZED_SDK.run"]
    # plain http with a pin: the board's get_url checks the sha256
    url = "http://example.com/ZED_SDK.run"
    lock.pins[url] = cache.Pin(sha256="a" * 64, size=1, key=cache.artifact_key(url))
    out, unpinned = playvars.artifact_vars(_zed_plan(tmp_path, url), lock, None)
    assert out["plan_zed_sdk_sha256"] == "a" * 64 and unpinned == []


def test_cache_sync_of_an_unpinned_plain_http_url_is_one_line_exit_2(
    cli: Callable[..., object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    inv = tmp_path / "lab.ini"
    inv.write_text(f"[jetsons]\n{HOST} zed_sdk_version=3.8 zed_sdk_url=http://tx2setup-test.invalid/ZED.run\n")
    res = cli("cache", "sync", "-i", str(inv))
    assert res.code == 2, res.err  # type: ignore[attr-defined]
    lines = res.err.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "plain-http" in lines[0] and "Traceback" not in lines[0], lines
