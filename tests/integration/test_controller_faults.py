"""Controller-side faults (issue 13), on `tx2setup cache sync` (the artifact download every
provision starts with): the upstream server dying mid-download, SIGINT and SIGKILL while
bytes are flowing (timed by the server: when it has sent the first block), the cache disk
full (a 1 MiB tmpfs as TX2SETUP_CACHE) and a corrupted lock file. Each gives its documented
exit code and one line, the lock file and the cache keep what was committed, and a plain
re-run converges. No boards: the upstream is a local HTTP server of this test."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
BODY = os.urandom(4 * 1024 * 1024)
SHA = hashlib.sha256(BODY).hexdigest()
BLOCK = 64 * 1024


@dataclass
class Upstream:
    """Serves BODY at /ZED_SDK.run. `die` closes the connection after the first block;
    `hold` waits for `release` after it. `served` is set once a block has gone out."""

    die: bool = False
    hold: bool = False
    served: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    ranges: list[str] = field(default_factory=list)


def _handler(up: Upstream) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            start = 0
            rng = self.headers.get("Range")
            if rng:
                up.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(BODY) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
            self.end_headers()
            self.wfile.write(BODY[start : start + BLOCK])
            self.wfile.flush()
            up.served.set()
            if up.die:
                self.close_connection = True
                self.connection.shutdown(2)  # the server "dies": no more bytes, connection gone
                return
            if up.hold:
                up.release.wait(60)
            with contextlib.suppress(OSError):  # the client was killed meanwhile
                self.wfile.write(BODY[start + BLOCK :])

    return Handler


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    up = Upstream()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(up))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield up, f"http://127.0.0.1:{server.server_address[1]}/ZED_SDK.run"
    up.release.set()
    server.shutdown()
    server.server_close()


def _lab(tmp_path: Path, url: str) -> Path:
    inv = tmp_path / "lab" / "lab.ini"
    inv.parent.mkdir(exist_ok=True)
    inv.write_text(
        "[jetsons]\nb1 ansible_host=10.0.0.1 jetson_module=tx2 jetpack=4.6.4 components=zed_sdk "
        f"zed_sdk_version=3.8 zed_sdk_url={url}\n"
    )
    return inv


def _sync(inv: Path, cache_dir: Path, wait: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "TX2SETUP_CACHE": str(cache_dir)}
    proc = subprocess.Popen(
        [str(BIN / "tx2setup"), "cache", "sync", "-i", str(inv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait:
        proc.wait(timeout=300)
    return proc


def _errors(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stderr is not None
    text = proc.stderr.read()
    assert "Traceback" not in text, text
    return [ln for ln in text.splitlines() if ln.startswith("error")]


def _converges(inv: Path, cache_dir: Path) -> None:
    proc = _sync(inv, cache_dir)
    assert proc.returncode == 0, _errors(proc)
    lock = (inv.parent / "tx2setup.lock").read_text()
    assert SHA in lock
    stored = [p for p in (cache_dir / "artifacts").rglob("*") if p.is_file() and not p.name.endswith(".part")]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in stored] == [SHA]


def test_the_server_dying_mid_download(tmp_path: Path, upstream: tuple[Upstream, str]) -> None:
    up, url = upstream
    inv = _lab(tmp_path, url)
    up.die = True
    proc = _sync(inv, tmp_path / "cache")
    errors = _errors(proc)
    assert proc.returncode == 3 and len(errors) == 1 and url in errors[0], errors
    assert not (inv.parent / "tx2setup.lock").exists()  # nothing pinned from a partial file
    up.die = False
    _converges(inv, tmp_path / "cache")
    assert up.ranges == [f"bytes={BLOCK}-"]  # the re-run resumed the .part


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_signal_while_bytes_flow(tmp_path: Path, upstream: tuple[Upstream, str], sig: signal.Signals) -> None:
    up, url = upstream
    inv = _lab(tmp_path, url)
    up.hold = True
    proc = _sync(inv, tmp_path / "cache", wait=False)
    assert up.served.wait(120), "the download did not start"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    up.release.set()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert _errors(proc) == [] or len(_errors(proc)) <= 1
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (inv.parent / "tx2setup.lock").exists()
    up.hold = False
    _converges(inv, tmp_path / "cache")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a tmpfs cache disk needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tx2-cache-full", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_the_cache_disk_full(tmp_path: Path, upstream: tuple[Upstream, str], small_disk: Path) -> None:
    _, url = upstream
    inv = _lab(tmp_path, url)
    proc = _sync(inv, small_disk)
    errors = _errors(proc)
    assert proc.returncode == 3 and len(errors) == 1, errors
    assert "No space left" in errors[0] or "ENOSPC" in errors[0] or "space" in errors[0], errors
    assert not (inv.parent / "tx2setup.lock").exists()
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)  # space freed
    _converges(inv, small_disk)


def test_a_corrupted_lock_file(tmp_path: Path, upstream: tuple[Upstream, str]) -> None:
    _, url = upstream
    inv = _lab(tmp_path, url)
    lock = inv.parent / "tx2setup.lock"
    garbage = b'{"version": 1, "pins": {"http://x/y": {"sha256": \x00\xff'
    lock.write_bytes(garbage)
    proc = _sync(inv, tmp_path / "cache")
    errors = _errors(proc)
    assert proc.returncode == 2 and len(errors) == 1 and str(lock) in errors[0], errors
    assert lock.read_bytes() == garbage  # left for the user to look at, not overwritten
    lock.unlink()  # what the one line tells the user to do
    _converges(inv, tmp_path / "cache")
