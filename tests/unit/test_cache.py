"""The artifact cache against real HTTP servers on localhost (no boards needed)."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tx2setup import cache, cli
from tx2setup.errors import ChecksumError, EnvironmentProblem


@dataclass
class Upstream:
    """A plain HTTP server standing in for download.nvidia.com & co; counts bytes sent."""

    root: Path
    base: str
    sent: list[int] = field(default_factory=list)

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.base}/{name}"

    @property
    def bytes_sent(self) -> int:
        return sum(self.sent)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "upstream"
    root.mkdir()
    sent: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, format: str, *args: Any) -> None:
            return

        def copyfile(self, source: Any, outputfile: Any) -> None:
            data = source.read()
            # counted before the write: the client may have read it all (and the test
            # asserted) before this thread runs again
            sent.append(len(data))
            outputfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield Upstream(root, f"http://127.0.0.1:{srv.server_address[1]}", sent)
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> cache.ArtifactCache:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    return cache.ArtifactCache(cache.LockFile.load(tmp_path / "inv" / cache.LOCK_NAME))


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value


def test_first_fetch_pins_and_later_fetches_do_not_touch_upstream(
    upstream: Upstream, store: cache.ArtifactCache
) -> None:
    url = upstream.put("torch-2.13.0-cp311-cp311-linux_x86_64.whl", PAYLOAD)
    art = store.fetch(url)
    assert art.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert art.fetched_bytes == len(PAYLOAD)
    assert art.path.read_bytes() == PAYLOAD
    assert art.path.name == "torch-2.13.0-cp311-cp311-linux_x86_64.whl"  # pip needs the wheel name
    lock = json.loads(store.lock.path.read_text())
    assert lock["artifacts"][url]["sha256"] == art.sha256
    assert lock["artifacts"][url]["size"] == len(PAYLOAD)

    again = cache.ArtifactCache(cache.LockFile.load(store.lock.path)).fetch(url)
    assert again.fetched_bytes == 0
    assert again.sha256 == art.sha256
    assert upstream.bytes_sent == len(PAYLOAD)  # crossed the upstream link once


def test_corrupted_cached_file_is_refused_with_both_hashes(upstream: Upstream, store: cache.ArtifactCache) -> None:
    url = upstream.put("caffe-1.0.tar.gz", PAYLOAD)
    art = store.fetch(url)
    art.path.write_bytes(PAYLOAD[:-1] + b"X")
    bad = hashlib.sha256(PAYLOAD[:-1] + b"X").hexdigest()
    with pytest.raises(ChecksumError) as exc:
        cache.ArtifactCache(cache.LockFile.load(store.lock.path)).fetch(url)
    msg = str(exc.value)
    assert art.sha256 in msg and bad in msg and "\n" not in msg
    assert exc.value.exit_code == 5
    assert store.verify() == [(url, f"sha256 {bad} does not match the pinned {art.sha256}")]


def test_upstream_that_changed_is_refused_and_nothing_is_kept(upstream: Upstream, store: cache.ArtifactCache) -> None:
    url = upstream.put("ZED_SDK.run", PAYLOAD)
    pinned = store.fetch(url).sha256
    store.path_of(url).unlink()
    upstream.put("ZED_SDK.run", b"a different installer")
    with pytest.raises(ChecksumError, match=pinned):
        store.fetch(url)
    assert not store.path_of(url).exists()
    assert not list(store.path_of(url).parent.glob("*.part"))
    assert store.lock.pins[url].sha256 == pinned  # the pin is never moved by a fetch


def test_matrix_sha_is_checked_on_first_fetch(upstream: Upstream, store: cache.ArtifactCache) -> None:
    url = upstream.put("w.whl", PAYLOAD)
    with pytest.raises(ChecksumError):
        store.fetch(url, expected_sha256="0" * 64)
    assert url not in store.lock.pins
    art = store.fetch(url, expected_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert store.lock.pins[url].sha256 == art.sha256


def test_interrupted_download_resumes_with_range(upstream: Upstream, store: cache.ArtifactCache) -> None:
    url = upstream.put("big.whl", PAYLOAD)
    part = store.path_of(url).with_name("big.whl.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    # SimpleHTTPRequestHandler ignores Range (answers 200): the cache must then start over
    art = store.fetch(url)
    assert art.path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_resume_against_a_range_server(tmp_path: Path, store: cache.ArtifactCache) -> None:
    src = tmp_path / "src"
    (src / "k").mkdir(parents=True)
    (src / "k" / "w.whl").write_bytes(PAYLOAD)
    with cache.CacheServer(src) as up:
        url = up.url_for("k/w.whl")
        part = store.path_of(url).with_name("w.whl.part")
        part.parent.mkdir(parents=True)
        part.write_bytes(PAYLOAD[:300000])
        art = store.fetch(url)
        assert art.fetched_bytes == len(PAYLOAD) - 300000
        assert art.path.read_bytes() == PAYLOAD


def test_unreachable_upstream_is_an_environment_problem(store: cache.ArtifactCache) -> None:
    with pytest.raises(EnvironmentProblem, match=re.escape("cannot fetch http://127.0.0.1:9/x.whl")):
        store.fetch("http://127.0.0.1:9/x.whl")


def _get(
    server: cache.CacheServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_server_serves_files_with_ranges(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "abc").mkdir(parents=True)
    (root / "abc" / "f.bin").write_bytes(PAYLOAD)
    with cache.CacheServer(root) as srv:
        status, hdrs, body = _get(srv, "/abc/f.bin")
        assert (status, body) == (200, PAYLOAD)
        assert hdrs["accept-ranges"] == "bytes"
        status, hdrs, body = _get(srv, "/abc/f.bin", {"Range": "bytes=10-19"})
        assert (status, body, hdrs["content-range"]) == (206, PAYLOAD[10:20], f"bytes 10-19/{len(PAYLOAD)}")
        status, _, body = _get(srv, "/abc/f.bin", {"Range": "bytes=1048000-"})
        assert (status, body) == (206, PAYLOAD[1048000:])
        status, _, body = _get(srv, "/abc/f.bin", {"Range": "bytes=-5"})
        assert (status, body) == (206, PAYLOAD[-5:])
        status, hdrs, _ = _get(srv, "/abc/f.bin", {"Range": f"bytes={len(PAYLOAD)}-"})
        assert status == 416 and hdrs["content-range"] == f"bytes */{len(PAYLOAD)}"
        assert srv.bytes_served == len(PAYLOAD) + 10 + (len(PAYLOAD) - 1048000) + 5


def test_server_serves_only_the_cache_dir(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "k").mkdir(parents=True)
    (root / "k" / "w.whl.part").write_bytes(b"half")
    (tmp_path / "secret").write_text("no")
    with cache.CacheServer(root) as srv:
        assert _get(srv, "/k/w.whl.part")[0] == 404
        assert _get(srv, "/../secret")[0] == 404
        assert _get(srv, "/%2e%2e/secret")[0] == 404
        assert _get(srv, "/k/")[0] == 404  # no listings
        assert _get(srv, "/")[0] == 404


def test_lock_file_with_a_bad_pin_names_the_entry(tmp_path: Path) -> None:
    p = tmp_path / cache.LOCK_NAME
    p.write_text(json.dumps({"version": 1, "artifacts": {"http://x/y.whl": {"sha256": "abc"}}}))
    with pytest.raises(Exception, match=r"artifacts\.http://x/y.whl: sha256"):
        cache.LockFile.load(p)


def test_artifact_keys_are_distinct_and_safe() -> None:
    a = cache.artifact_key("https://download.stereolabs.com/zedsdk/3.8/l4t32.7/jetsons")
    b = cache.artifact_key("https://download.stereolabs.com/zedsdk/4.0/l4t35.4/jetsons")
    assert a != b and a.endswith("/jetsons")
    assert "/" not in cache.artifact_key("http://h/..%2f..%2fetc%2fpasswd").split("/", 1)[1]


def _inventory(tmp_path: Path, upstream: Upstream) -> Path:
    wheel = upstream.put("torch-2.13.0-cp36-cp36m-linux_aarch64.whl", PAYLOAD)  # a TX2 on JetPack 4.6.4: Python 3.6
    tarball = upstream.put("caffe-1.0.tar.gz", b"caffe source" * 1000)
    inv = tmp_path / "inv" / "lab.ini"
    inv.parent.mkdir(exist_ok=True)
    inv.write_text(
        "[tx2]\n"
        f"b1 ansible_host=127.0.1.201 jetson_module=tx2 jetpack=4.6.4 components=pytorch,caffe "
        f"torch_wheel_url={wheel} torch_version=2.13.0 caffe_source_url={tarball}\n"
        f"b2 ansible_host=127.0.1.202 jetson_module=tx2 jetpack=4.6.4 components=pytorch "
        f"torch_wheel_url={wheel} torch_version=2.13.0\n"
    )
    return inv


def test_cli_sync_list_verify(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    inv = _inventory(tmp_path, upstream)
    # --no-wheels: this torch "wheel" is PAYLOAD, no METADATA to read (test_wheelhouse.py has the wheels)
    assert cli.run(["cache", "sync", "-i", str(inv), "--json", "--no-wheels"]) == 0
    synced = json.loads(capsys.readouterr().out)
    assert len(synced["artifacts"]) == 2  # the shared wheel once
    assert upstream.bytes_sent == len(PAYLOAD) + 12000
    assert cli.run(["cache", "sync", "-i", str(inv), "--json", "--no-wheels"]) == 0
    assert all(a["fetched"] == 0 for a in json.loads(capsys.readouterr().out)["artifacts"])
    assert cli.run(["cache", "list", "-i", str(inv), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {e["cached"] for e in listed} == {True}
    assert cli.run(["cache", "verify", "-i", str(inv)]) == 0
    capsys.readouterr()
    Path(listed[0]["path"]).write_bytes(b"tampered")
    assert cli.run(["cache", "verify", "-i", str(inv)]) == 5
    err = capsys.readouterr().err
    assert "does not match the pinned" in err and listed[0]["sha256"] in err


def test_torch_from_an_index_is_not_fetched_but_listed(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """JetPack 6: the board pip-installs torch from the matrix's index, so the cache must not
    try the matrix's unverified file URL; sync names the index instead."""
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    inv = _inventory(tmp_path, upstream)
    inv.write_text(
        inv.read_text() + "[orin]\nb3 ansible_host=127.0.1.203 jetson_module=agx-orin jetpack=6.2 components=pytorch\n"
    )
    from tx2setup import fleet, plan

    plans = {p.name: p for p in plan.resolve(fleet.load(inv))}
    jp6 = plans["b3"]
    assert jp6.torch_wheel_url and jp6.torch_index_url  # the plan keeps both; the cache takes neither
    assert jp6.torch_wheel_url not in cache.plan_artifacts(plans.values())
    assert cache.index_installs(plans.values()) == {"torch==2.5.0": "https://pypi.jetson-ai-lab.io/jp6/cu126"}
    assert cli.run(["cache", "sync", "-i", str(inv), "--json", "--no-wheels"]) == 0
    synced = json.loads(capsys.readouterr().out)
    assert all("jetson-ai-lab" not in a["url"] for a in synced["artifacts"]) and len(synced["artifacts"]) == 2
    assert synced["from_index"] == [
        {"requirement": "torch==2.5.0", "index_url": "https://pypi.jetson-ai-lab.io/jp6/cu126"}
    ]
    monkeypatch.setenv("COLUMNS", "400")  # the table's cells unwrapped
    assert cli.run(["cache", "sync", "-i", str(inv), "--no-wheels"]) == 0
    out = capsys.readouterr().out
    assert "https://pypi.jetson-ai-lab.io/jp6/cu126 (torch==2.5.0)" in out
    assert "not cached: boards install from the index" in out


def test_an_overridden_wheel_url_is_cached_on_jetpack_6(tmp_path: Path, upstream: Upstream) -> None:
    """torch_wheel_url in the inventory drops the index: the wheel goes through the cache."""
    wheel = upstream.put("torch-2.5.0-cp310-cp310-linux_aarch64.whl", PAYLOAD)
    inv = tmp_path / "lab.ini"
    inv.write_text(
        "[orin]\nb3 ansible_host=127.0.1.203 jetson_module=agx-orin jetpack=6.2 components=pytorch "
        f"torch_version=2.5.0 torch_wheel_url={wheel}\n"
    )
    from tx2setup import fleet, plan

    plans = plan.resolve(fleet.load(inv))
    assert cache.plan_artifacts(plans) == {wheel: None}
    assert cache.index_installs(plans) == {}
