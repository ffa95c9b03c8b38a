"""The artifact server (tx2setup.cache.CacheServer) against hostile and careless clients.

Every request here must get a clean 4xx (or be served correctly); nothing outside the
cache root and no partial download is ever served; the server keeps serving afterwards.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tx2setup import cache
from tx2setup.cache import CacheServer

SECRET = b"outside the cache root"
PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CacheServer]:
    root = tmp_path / "artifacts"
    (root / "zed").mkdir(parents=True)
    (root / "zed" / "ok.run").write_bytes(PAYLOAD)
    (root / "zed" / "half.run.part").write_bytes(b"partial")
    (root / "zed" / "half.run.tmp").write_bytes(b"partial")
    (tmp_path / "secret").write_bytes(SECRET)
    (root / "escape").symlink_to(tmp_path / "secret")
    (root / "innocent").symlink_to(root / "zed" / "half.run.part")
    (root / "dirlink").symlink_to(tmp_path)
    with CacheServer(root) as srv:
        yield srv


def raw(srv: CacheServer, request: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client-side cleaning) and read the whole answer."""
    host, port = srv.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), answer[:100]
    return int(answer.split(b" ", 2)[1])


def get(srv: CacheServer, path: str, extra: str = "") -> bytes:
    return raw(srv, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode())


TRAVERSALS = [
    "/../secret",
    "/..%2fsecret",
    "/%2e%2e/secret",
    "/%2e%2e%2fsecret",
    "/%2E%2E%2Fsecret",
    "/zed/../../secret",
    "/zed/%2e%2e/%2e%2e/secret",
    "//..//secret",
    "/./../secret",
    "/%252e%252e/secret",
    "/..%5csecret",
    "/..\\secret",
    "/escape",
    "/dirlink/secret",
    "/zed/..%00/secret",
    "http://x/../secret",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(server: CacheServer, path: str) -> None:
    answer = get(server, path)
    assert 400 <= status_of(answer) < 500
    assert SECRET not in answer


@pytest.mark.parametrize("path", ["/zed/half.run.part", "/zed/half.run.tmp", "/innocent", "/zed/half.run%2epart"])
def test_partial_downloads_are_never_served(server: CacheServer, path: str) -> None:
    answer = get(server, path)
    assert status_of(answer) == 404 and b"partial" not in answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /zed/ok.run HTTP/9.9\r\n\r\n",
        b"GET /zed/ok\x00.run HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /zed/ok.run%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /" + b"a/" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # longer than a request line may be
        b"GET /" + b"d/" * 2000 + b"x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /" + b"%2e%2e/" * 3000 + b"secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /" + b"n" * 5000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # NAME_MAX is 255
        b"DELETE /zed/ok.run HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /zed/ok.run HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",  # more headers than http.server takes
    ],
)
def test_malformed_requests_get_a_clean_4xx(server: CacheServer, request_bytes: bytes) -> None:
    code = status_of(raw(server, request_bytes))
    assert 400 <= code < 500 or code == 505, code
    assert status_of(get(server, "/zed/ok.run")) == 200  # and the server still serves


@pytest.mark.parametrize("rng", ["bytes=0-1,4-5", "bytes=abc", "bytes=-", "bytes=99999-", "bytes=9-3", "items=0-1"])
def test_multi_and_malformed_ranges_get_416(server: CacheServer, rng: str) -> None:
    answer = get(server, "/zed/ok.run", f"Range: {rng}\r\n")
    assert status_of(answer) == 416


def test_single_range_is_served_exactly(server: CacheServer) -> None:
    answer = get(server, "/zed/ok.run", "Range: bytes=10-19\r\n")
    assert status_of(answer) == 206 and answer.endswith(PAYLOAD[10:20])


def test_slow_client_is_dropped(server: CacheServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache._Handler, "timeout", 1.0)
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(b"GET /zed/ok.run HTTP/1.1\r\nHost:")  # and then nothing more
        # the server's timeout ends it: recv returns b"" (closed) long before our 15 s
        assert sock.recv(100) in (b"",) or sock.recv(100) == b""
    assert status_of(get(server, "/zed/ok.run")) == 200


def test_200_concurrent_requests_are_all_served(server: CacheServer) -> None:
    def fetch(_: int) -> bytes:
        with urllib.request.urlopen(server.url_for("zed/ok.run"), timeout=60) as resp:  # noqa: S310 - loopback
            return bytes(resp.read())

    with ThreadPoolExecutor(max_workers=200) as pool:
        bodies = list(pool.map(fetch, range(200)))
    assert all(b == PAYLOAD for b in bodies)
    assert server.bytes_served >= 200 * len(PAYLOAD)


def test_binds_loopback_unless_told(tmp_path: Path) -> None:
    with CacheServer(tmp_path) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:")
        assert srv._server.server_address[0] == "127.0.0.1"


def test_missing_file_is_404_not_a_listing(server: CacheServer) -> None:
    assert status_of(get(server, "/")) == 404
    assert status_of(get(server, "/zed/")) == 404
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url_for("zed/nope"), timeout=10)  # noqa: S310 - loopback
    assert err.value.code == 404
