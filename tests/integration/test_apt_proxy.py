"""The boards' apt through the run's apt-cacher-ng: the second board's packages come from the
cache (the proxy's own transfer log says so), the setting is gone from the boards after the
run, and a proxy that does not answer makes apt go direct instead of failing the install.

Real apt-cacher-ng, real Debian packages from the host's mirror, real Ansible over SSH on two
fresh emulated boards. Skips when apt-cacher-ng is not installed (scripts/setup.sh installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import fresh_pair
from tx2setup import aptproxy, cache, provision
from tx2setup.provision import HostProgress
from tx2setup.sim import SimBoard

pytestmark = pytest.mark.integration

# Small Debian packages no emulated board has (https://packages.debian.org/bookworm/hello,
# https://packages.debian.org/bookworm/sl), so the install task fetches them.
PACKAGE = "hello"
OTHER_PACKAGE = "sl"
# https://packages.debian.org/bookworm/figlet: small, depends on libc6 only
THIRD_PACKAGE = "figlet"
PROXY_CONF = "/etc/apt/apt.conf.d/01tx2setup-proxy"
DETECT = "/usr/local/sbin/tx2setup-apt-proxy-detect"
FALLBACK_LOG = "/var/tmp/tx2setup-apt-proxy.log"


@pytest.fixture(scope="module")
def boards_and_cache(
    sim_fleet: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[SimBoard], Path]]:
    if shutil.which(aptproxy.BINARY, path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        pytest.skip("apt-cacher-ng is not installed (scripts/setup.sh installs it)")
    # the proxy starts empty, so the first board's fetch is a miss
    yield from fresh_pair(sim_fleet, tmp_path_factory, "aptp")


def on_board(sim_fleet: Any, board: SimBoard) -> Callable[[str], tuple[int, str]]:
    def run(command: str) -> tuple[int, str]:
        rc, out, err = sim_fleet.run(board, command)
        return rc, out + err

    return run


def test_second_board_gets_its_packages_from_the_cache(boards_and_cache: tuple[Any, list[SimBoard], Path]) -> None:
    sim_fleet, boards, inventory = boards_and_cache
    # forks 1: board 1 runs each task before board 2 does, so board 2's download comes second
    result = provision.run(
        inventory, tags="jetson_base", forks=1, extravars={"jetson_base_packages": [PACKAGE]}, use_cache=False
    )
    assert result.ok, {h.name: (h.status, h.failed_task, h.message) for h in result.hosts.values()}
    record = json.loads(Path(result.record).read_text())
    stats = record["apt_proxy"]
    assert stats is not None, record["warnings"]
    assert record["warnings"] == []
    # the proxy's own log, read back independently of the run record
    log = aptproxy.parse_log((Path(os.environ[cache.CACHE_ENV]) / "apt-cacher-ng/log/apt-cacher.log").read_text())
    deb = [p for p in log.miss_paths + log.hit_paths if f"/{PACKAGE}_" in p and p.endswith(".deb")]
    assert deb, f"no {PACKAGE} .deb went through the proxy: {log.miss_paths + log.hit_paths}"
    assert log.miss_paths.count(deb[0]) == 1, "fetched upstream once, for board 1"
    assert log.hit_paths.count(deb[0]) == 1, "served from the cache to board 2"
    assert stats["hits"] >= 1 and stats["fetched_bytes"] > 0
    for board in boards:
        run = on_board(sim_fleet, board)
        assert run(f"dpkg-query -W -f='${{Status}}' {PACKAGE}")[1].strip() == "install ok installed"
        # the run's proxy setting is gone once the run ended
        _, out = run(f"test -e {PROXY_CONF} || test -e {DETECT}; echo $?")
        assert out.strip().endswith("1"), f"{board.name} kept the proxy setting: {out}"


def test_a_proxy_that_does_not_answer_sends_apt_direct(boards_and_cache: tuple[Any, list[SimBoard], Path]) -> None:
    sim_fleet, boards, inventory = boards_and_cache
    with socket.socket() as s:  # a port nobody listens on: the proxy is "dead" from the start
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    board = boards[0]
    result = provision.run(
        inventory,
        limit=board.name,
        tags="jetson_base",
        use_cache=False,
        use_apt_proxy=False,
        extravars={
            "jetson_base_packages": [PACKAGE, OTHER_PACKAGE],
            "tx2setup_apt_proxy_url": f"http://127.0.0.1:{dead}",
        },
    )
    assert result.ok, {h.name: (h.status, h.failed_task, h.message) for h in result.hosts.values()}
    run = on_board(sim_fleet, board)
    assert run(f"dpkg-query -W -f='${{Status}}' {OTHER_PACKAGE}")[1].strip() == "install ok installed"
    rc, out = run(f"cat {FALLBACK_LOG}")
    assert rc == 0 and "DIRECT for" in out and str(dead) in out, out


def test_a_proxy_that_dies_mid_run_is_a_warning_and_apt_goes_direct(
    boards_and_cache: tuple[Any, list[SimBoard], Path],
) -> None:
    sim_fleet, boards, inventory = boards_and_cache
    pid_file = Path(os.environ[cache.CACHE_ENV]) / "apt-cacher-ng" / "run" / "pid"  # acng.conf PidFile
    killed: list[int] = []

    def kill_when_board_1_installs(hosts: Mapping[str, HostProgress]) -> None:
        # forks 1: board 2 runs the install task only after board 1's, so after this kill
        if not killed and hosts[boards[0].name].task == "Install the base packages":
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    for board in boards:
        on_board(sim_fleet, board)(f"rm -f {FALLBACK_LOG}")
    result = provision.run(
        inventory,
        tags="jetson_base",
        forks=1,
        use_cache=False,
        extravars={"jetson_base_packages": [THIRD_PACKAGE]},
        progress=kill_when_board_1_installs,
    )
    assert killed, "the install task never started"
    assert result.ok, {h.name: (h.status, h.failed_task, h.message) for h in result.hosts.values()}
    record = json.loads(Path(result.record).read_text())
    assert any("died before the run ended" in w for w in record["warnings"]), record["warnings"]
    run = on_board(sim_fleet, boards[1])
    assert run(f"dpkg-query -W -f='${{Status}}' {THIRD_PACKAGE}")[1].strip() == "install ok installed"
    rc, out = run(f"cat {FALLBACK_LOG}")
    assert rc == 0 and "DIRECT for" in out, f"board 2's apt did not log its fallback: {out}"
    # and nothing of the run's proxy stayed on the boards
    _, out = run(f"test -e {PROXY_CONF} || test -e {DETECT}; echo $?")
    assert out.strip().endswith("1"), out
