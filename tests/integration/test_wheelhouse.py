"""The fleet's pip wheelhouse on emulated boards: torch's declared dependencies come from the
controller's wheelhouse (fetched from PyPI once for the run, served to both boards by the
cache server, whose request log says so), a re-run changes nothing and fetches nothing, and a
wheel changed behind the controller's back fails the board's pip loudly.

Real `pip download` from the package index (PyPI here and in CI), real Ansible over SSH on two
fresh emulated boards, `--tags pytorch` only (the role works on a fresh board).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import fresh_pair
from tx2setup import cache, provision, wheelhouse
from tx2setup.sim import SimBoard

pytestmark = pytest.mark.integration

TAG = "cp311-manylinux_2_28_x86_64"  # roles/pytorch/vars/Debian-12.yml: Python 3.11, first platform tag
SITE = "/usr/local/lib/python3.11/dist-packages"  # where Debian's pip installs as root (not apt's dist-packages)


@pytest.fixture(scope="module")
def two_boards(sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[SimBoard], Path]]:
    # the wheelhouse starts empty, so the run's fetch is the fleet's only one
    yield from fresh_pair(sim_fleet, tmp_path_factory, "whl")


def _bad(result: provision.ProvisionResult) -> dict[str, Any]:
    return {h.name: (h.status, h.failed_task, h.message) for h in result.hosts.values()}


def _installed(sim_fleet: Any, board: SimBoard) -> dict[str, str]:
    """name -> version of every dist pip put under /usr/local (its .dist-info directories)."""
    rc, out, err = sim_fleet.run(board, f"ls {SITE}")
    assert rc == 0, err
    return dict(n[: -len(".dist-info")].rsplit("-", 1) for n in out.split() if n.endswith(".dist-info"))


def test_boards_install_from_the_wheelhouse_fetched_once(two_boards: tuple[Any, list[SimBoard], Path]) -> None:
    sim_fleet, boards, inventory = two_boards
    result = provision.run(inventory, tags="pytorch", forks=1, use_apt_proxy=False)
    assert result.ok, _bad(result)
    record = json.loads(Path(result.record).read_text())
    stats = record["wheelhouse"]
    house = wheelhouse.root() / TAG
    manifest = json.loads((house / wheelhouse.MANIFEST).read_text())
    files = manifest["files"]
    assert stats["tags"] == [TAG]
    assert stats["fetched_bytes"] == sum(f["size"] for f in files.values()) > 0, "fetched once, for the fleet"
    assert "sympy>=1.13.3" in manifest["specs"], "torch's Requires-Dist, read from the cached wheel"
    # the server's request log: every wheel a board installed, once per board
    wheels = Counter(r.split("/", 1)[1] for r in stats["requests"] if r.endswith(".whl"))
    assert wheels and set(wheels) <= set(files) and set(wheels.values()) == {2}, wheels
    assert stats["served_bytes"] >= 2 * sum(files[n]["size"] for n in wheels)
    for board in boards:
        installed = _installed(sim_fleet, board)
        for name in wheels:  # e.g. sympy-1.14.0-py3-none-any.whl -> sympy 1.14.0
            dist, version = name.split("-")[:2]
            assert installed.get(dist) == version, (board.name, dist, installed)
        # no copy from the control host's Python: typing_extensions came from the wheelhouse
        assert "typing_extensions" in installed, installed


def test_a_rerun_changes_nothing_and_fetches_nothing(two_boards: tuple[Any, list[SimBoard], Path]) -> None:
    _, boards, inventory = two_boards
    result = provision.run(inventory, tags="pytorch", forks=2, use_apt_proxy=False)
    assert result.ok, _bad(result)
    record = json.loads(Path(result.record).read_text())
    # changed=0 from the runner's stats (HostResult.changed), per board
    assert {b.name: result.hosts[b.name].changed for b in boards} == {b.name: 0 for b in boards}, record["stats"]
    assert record["wheelhouse"]["fetched_bytes"] == 0
    assert record["wheelhouse"]["requests"] == [], "a provisioned board asked the wheelhouse"


def test_a_tampered_wheel_fails_the_board_pip(two_boards: tuple[Any, list[SimBoard], Path]) -> None:
    """After the controller verified it: the board's pip checks the page's #sha256= and refuses."""
    sim_fleet, boards, _ = two_boards
    house = wheelhouse.root() / TAG
    name = next(n for n in json.loads((house / wheelhouse.MANIFEST).read_text())["files"] if n.startswith("fsspec-"))
    wheel = house / name
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    board = boards[0]
    with cache.CacheServer(cache.cache_root() / "artifacts", wheelhouse=wheelhouse.root()) as srv:
        page = f"{srv.base_url}/wheelhouse/{TAG}/"
        rc, out, err = sim_fleet.run(
            board,
            f"pip3 install --break-system-packages --no-index --find-links {page} --no-cache-dir "
            f"--force-reinstall --no-deps fsspec",
        )
    assert rc != 0, out
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in out + err, out + err
