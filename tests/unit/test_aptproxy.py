"""tx2setup.aptproxy: the log tally, the port range, the config, and a real apt-cacher-ng that
starts on a free port, serves its report page and stops (no upstream traffic)."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from tx2setup import aptproxy
from tx2setup.errors import EnvironmentProblem

# Lines as apt-cacher-ng 3.7.4 (Debian 12) wrote them here for two proxied fetches of one .deb,
# one HTTPS CONNECT it refused, and a 503 from an unreachable backend (VerboseLog: 1).
REAL_LOG = """\
1796527464|I|53344|127.0.0.1|deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb
1796527464|O|53313|127.0.0.1|deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb
1796527464|O|53313|127.0.0.1|deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb
1796527508|E|832|127.0.0.1| [HTTP error, code: 200]
1796527456|E|628|127.0.0.1|debrep/pool/main/h/hello/hello_2.10-3_amd64.deb [HTTP error, code: 503]
"""


def test_the_log_tally_counts_one_miss_and_one_hit() -> None:
    st = aptproxy.parse_log(REAL_LOG)
    assert (st.fetched_bytes, st.served_bytes) == (53344, 2 * 53313)
    assert (st.misses, st.hits, st.errors) == (1, 1, 2)
    assert st.hit_paths == ["deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"]


def test_a_file_served_with_no_fetch_in_this_run_is_a_hit() -> None:
    st = aptproxy.parse_log(REAL_LOG.splitlines()[1] + "\n")
    assert (st.hits, st.misses, st.fetched_bytes) == (1, 0, 0)


def test_free_ports_stay_below_32768() -> None:
    port = aptproxy.free_port("127.0.0.1")
    assert aptproxy.PORT_RANGE[0] <= port <= 32767


def test_the_config_allows_no_uncached_tunnel(tmp_path: Path) -> None:
    text = aptproxy.config_text(tmp_path, "127.0.0.1", 23142)
    assert "PassThroughPattern: ^$" in text and "Port: 23142" in text and f"CacheDir: {tmp_path / 'cache'}" in text
    assert "Remap-" not in text


def test_a_missing_binary_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aptproxy, "BINARY", "apt-cacher-ng-not-here")
    with pytest.raises(EnvironmentProblem, match="apt-cacher-ng is not installed"):
        aptproxy.AptProxy(root=tmp_path).start()
    warnings: list[str] = []
    assert aptproxy.start_for_run("127.0.0.1", warnings) is None
    assert "no apt proxy this run" in warnings[0]


@pytest.mark.skipif(
    shutil.which(aptproxy.BINARY, path="/usr/sbin:/usr/bin") is None, reason="apt-cacher-ng not installed"
)
def test_a_real_proxy_starts_reports_and_notices_its_death(tmp_path: Path) -> None:
    proxy = aptproxy.AptProxy(root=tmp_path).start()
    try:
        page = urllib.request.urlopen(f"{proxy.url}/{aptproxy.REPORT_PAGE}", timeout=10).read().decode()  # noqa: S310
        assert "Apt-Cacher NG" in page
        assert proxy.alive()
        assert proxy._proc is not None
        proxy._proc.kill()  # dies mid-run
        proxy._proc.wait()
        warnings: list[str] = []
        stats = aptproxy.finish_run(proxy, warnings)
        assert stats is not None and stats["fetched_bytes"] == 0
        assert "died before the run ended" in warnings[0]
    finally:
        proxy.stop()
