"""What the collection's plan action computes (tx2setup/playvars.py), without Ansible:
artifacts routed to the plan's URLs or to tx2setup_cache_url, each with the lock's sha256."""

from __future__ import annotations

from pathlib import Path

import pytest

from tx2setup import cache, playvars
from tx2setup.errors import ChecksumError, InventoryError, UserError

TX2 = {"ansible_host": "10.0.0.1", "jetson_module": "tx2", "jetpack": "4.6.4"}
SHA_A, SHA_B = "a" * 64, "b" * 64


def facts(tmp_path: Path, **hv: object) -> tuple[dict[str, object], list[str]]:
    inv = tmp_path / "lab.ini"
    inv.write_text("")
    return playvars.play_vars(inv, "b1", {**TX2, **hv}, ["tx2"])


def pin(tmp_path: Path, url: str, sha: str) -> cache.LockFile:
    lock = cache.LockFile(tmp_path / cache.LOCK_NAME, {url: cache.Pin(sha, 10, cache.artifact_key(url))})
    lock.save()
    return lock


def test_plan_urls_without_lock_or_cache(tmp_path: Path) -> None:
    f, unpinned = facts(tmp_path)
    plan = f["tx2setup_plan"]
    assert isinstance(plan, dict)
    assert f["plan_zed_sdk_url"] == plan["zed_sdk_url"] and f["plan_zed_sdk_sha256"] is None
    assert f["plan_torch_wheel_url"] == plan["torch_wheel_url"]
    assert unpinned == [plan["zed_sdk_url"]]  # the ZED installer has no sha256 in the matrix


def test_lock_pin_reaches_the_board(tmp_path: Path) -> None:
    zed = str(facts(tmp_path)[0]["plan_zed_sdk_url"])
    pin(tmp_path, zed, SHA_A)
    f, unpinned = facts(tmp_path)
    assert f["plan_zed_sdk_sha256"] == SHA_A and zed not in unpinned


def test_cache_url_serves_pinned_artifacts_by_key(tmp_path: Path) -> None:
    f0 = facts(tmp_path)[0]
    zed = str(f0["plan_zed_sdk_url"])
    with pytest.raises(UserError, match=r"not pinned in .*tx2setup cache sync"):
        facts(tmp_path, tx2setup_cache_url="http://10.0.0.5:8765")
    p = playvars.resolve(tmp_path / "lab.ini", "b1", TX2, ["tx2"])
    lock = cache.LockFile(tmp_path / cache.LOCK_NAME)
    for url, matrix_sha in cache.plan_artifacts([p]).items():  # as `tx2setup cache sync` pins them
        lock.pins[url] = cache.Pin(matrix_sha or SHA_B, 1, cache.artifact_key(url))
    lock.save()
    f, unpinned = facts(tmp_path, tx2setup_cache_url="http://10.0.0.5:8765/")
    assert f["plan_zed_sdk_url"] == f"http://10.0.0.5:8765/{cache.artifact_key(zed)}"
    assert f["plan_zed_sdk_sha256"] == SHA_B and unpinned == []
    assert f["tx2setup_plan"] == f0["tx2setup_plan"]  # the plan itself is never rewritten


def test_lock_that_disagrees_with_the_matrix_names_both_hashes(tmp_path: Path) -> None:
    f0 = facts(tmp_path)[0]
    url, matrix_sha = str(f0["plan_caffe_source_url"]), f0["plan_caffe_sha256"]
    if not matrix_sha:
        pytest.skip("the matrix pins no Caffe sha256")
    pin(tmp_path, url, SHA_A)
    with pytest.raises(ChecksumError) as exc:
        facts(tmp_path)
    assert SHA_A in str(exc.value) and str(matrix_sha) in str(exc.value)


def test_bad_cache_url_and_missing_inventory_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tx2setup_cache_url: 'ftp://x' is not an http"):
        facts(tmp_path, tx2setup_cache_url="ftp://x")
    with pytest.raises(InventoryError, match="inventory_file"):
        playvars.inventory_of({}, "b1")


def test_duplicate_address_names_the_earlier_board() -> None:
    where = ("10.0.0.1", 22)
    assert playvars.duplicate_of("b2", where, {"b1": where, "b3": where}) == "b1"
    assert playvars.duplicate_of("b1", where, {"b2": where}) is None
    assert playvars.address_of({"ansible_host": "Board.Local.", "ansible_port": "2201"}) == ("board.local", 2201)


def test_the_acceptance_role_is_told_where_the_harness_is(tmp_path: Path) -> None:
    """A collection installed from its tarball has no checkout beside its playbooks: the plan
    action names the package's own bench/, which the acceptance role copies to the board."""
    f, _ = facts(tmp_path)
    src = Path(str(f["tx2setup_bench_src"]))
    assert (src / "__main__.py").is_file() and src.parent.name == "tx2setup"
