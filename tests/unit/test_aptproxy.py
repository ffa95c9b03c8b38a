"""tx2setup.aptproxy: the log tally, the port range, the config, and a real apt-cacher-ng that
starts on a free port, serves its report page and stops (no upstream traffic)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import ClassVar

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


def test_release_files_older_than_the_freshness_window_are_expired(tmp_path: Path) -> None:
    suite = tmp_path / "deb.debian.org/debian/dists/bookworm"
    (suite / "main/binary-amd64").mkdir(parents=True)
    for name in ("InRelease", "InRelease.head", "Release", "main/binary-amd64/Packages.xz"):
        (suite / name).write_text("x")
    pool = tmp_path / "deb.debian.org/debian/pool/main/h/hello"
    pool.mkdir(parents=True)
    (pool / "hello_2.10-3_amd64.deb").write_text("x")
    assert aptproxy.expire_indexes(tmp_path, max_age=300) == 0, "just written: still fresh"
    later = time.time() + 301
    assert aptproxy.expire_indexes(tmp_path, max_age=300, now=later) == 2
    assert sorted(p.name for p in suite.iterdir()) == ["main"], "InRelease, its .head and Release gone"
    assert (suite / "main/binary-amd64/Packages.xz").exists() and (pool / "hello_2.10-3_amd64.deb").exists()


class _CountingMirror(http.server.SimpleHTTPRequestHandler):
    """A stand-in upstream serving the test's directory; counts the requests that reach it."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(
    shutil.which(aptproxy.BINARY, path="/usr/sbin:/usr/bin") is None, reason="apt-cacher-ng not installed"
)
def test_clients_share_one_upstream_fetch_of_an_inrelease(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _CountingMirror.seen.clear()
    mirror = tmp_path / "mirror"
    (mirror / "debian/dists/bookworm").mkdir(parents=True)
    (mirror / "debian/dists/bookworm/InRelease").write_text("signed release\n" * 100)
    server = http.server.ThreadingHTTPServer(
        # below 32768: apt-cacher-ng 3.7.4 mangles higher ports (aptproxy.PORT_RANGE)
        ("127.0.0.1", aptproxy.free_port("127.0.0.1")),
        functools.partial(_CountingMirror, directory=str(mirror)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    # the stand-in listens on a high port, which acng refuses unless allowed (acng.conf AllowUserPorts)
    real = aptproxy.config_text
    monkeypatch.setattr(
        aptproxy, "config_text", lambda *a: real(*a).replace("AllowUserPorts: 80 443", "AllowUserPorts: 0")
    )
    url = f"http://127.0.0.1:{port}/debian/dists/bookworm/InRelease"
    proxy = aptproxy.AptProxy(root=tmp_path / "acng").start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    try:
        bodies = [opener.open(url, timeout=10).read() for _ in range(3)]  # three boards' apt-get update
        assert bodies[0] == bodies[2] == (mirror / "debian/dists/bookworm/InRelease").read_bytes()
        assert _CountingMirror.seen == ["/debian/dists/bookworm/InRelease"], "one upstream request for three clients"
        assert aptproxy.expire_indexes(proxy.root / "cache", now=time.time() + aptproxy.INDEX_FRESH_S + 1) == 1
        opener.open(url, timeout=10).read()
        assert len(_CountingMirror.seen) == 2, "after the freshness window the next client fetches it again"
    finally:
        proxy.stop()
        server.shutdown()
