"""Artifact cache: large files fetched once to the control host, pinned, served to boards.

- Fetched once: every artifact (torch wheel, ZED installer, Caffe tarball) lands in
  `<cache root>/artifacts/<key>/<file name>`; the cache root is ~/.cache/tx2setup unless
  TX2SETUP_CACHE says otherwise.
- Pinned: its sha256 goes into a lock file next to the inventory (`tx2setup.lock`, JSON,
  meant to be committed). The first fetch pins; every later fetch, every cached copy and
  every board download is checked against the pin. A mismatch raises ChecksumError with
  both hashes and changes nothing.
- Served: `CacheServer` is a small threaded HTTP server for the artifacts directory only
  (no listings, no partial downloads, Range support so a board's download can resume).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tx2setup.errors import ChecksumError, EnvironmentProblem, UserError

CACHE_ENV = "TX2SETUP_CACHE"
LOCK_NAME = "tx2setup.lock"
LOCK_VERSION = 1
CHUNK = 1 << 20
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._+-]")


def cache_root() -> Path:
    """The root of everything tx2setup builds or downloads on the control host."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tx2setup"


def lock_path_for(inventory: str | Path) -> Path:
    """The lock file that belongs to an inventory: next to it (inside it, for a directory)."""
    p = Path(inventory)
    return (p if p.is_dir() else p.parent) / LOCK_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def unverified_plain_http(url: str) -> bool:
    """True for an http:// URL whose host is not this machine's loopback: what comes over it
    can be changed on the way, and boards run it as root (the ZED installer, wheels, the
    Caffe source), so it needs a sha256 pin. Loopback (127.0.0.0/8, ::1, `localhost`,
    RFC 6761 section 6.3) never leaves the machine that asks."""
    import ipaddress

    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() != "http":
        return False
    host = (parsed.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def plain_http_refused(url: str, where: str) -> UserError:
    return UserError(
        f"{url}: a plain-http download that boards run as root, with no sha256 pinned ({where}): "
        "use an https URL, or pin its sha256 in the lock file"
    )


def artifact_key(url: str) -> str:
    """A stable, URL-safe relative path for an artifact: '<12 hex of the URL hash>/<file name>'.

    The hash keeps two artifacts with the same file name apart (e.g. ZED installers, whose
    URLs all end in /jetsons); the file name keeps the path readable and gives pip the
    wheel name it insists on.
    """
    parsed = urllib.parse.urlsplit(url)
    name = _SAFE_FILE.sub("_", urllib.parse.unquote(parsed.path.rstrip("/").rsplit("/", 1)[-1])) or "artifact"
    if name.startswith("."):
        name = "_" + name[1:]
    return f"{hashlib.sha256(url.encode()).hexdigest()[:12]}/{name}"


@dataclass(frozen=True)
class Pin:
    sha256: str
    size: int
    key: str


@dataclass(frozen=True)
class Artifact:
    """A verified file in the cache."""

    url: str
    key: str
    path: Path
    sha256: str
    size: int
    fetched_bytes: int  # bytes that crossed the upstream link for this call (0 when cached)


class LockFile:
    """`tx2setup.lock`: url -> pinned sha256, size and cache key. Written atomically."""

    def __init__(self, path: Path, pins: dict[str, Pin] | None = None) -> None:
        self.path = path
        self.pins: dict[str, Pin] = dict(pins or {})

    @classmethod
    def load(cls, path: str | Path) -> LockFile:
        p = Path(path)
        if not p.exists():
            return cls(p)
        try:
            raw: Any = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
            raise UserError(f"{p}: not a tx2setup lock file ({exc}); move it away to start a new one") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("artifacts"), dict):
            raise UserError(f"{p}: not a tx2setup lock file (no 'artifacts' mapping)")
        pins: dict[str, Pin] = {}
        for url, entry in raw["artifacts"].items():
            sha = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(sha, str) or not SHA256_RE.match(sha):
                raise UserError(f"{p}: artifacts.{url}: sha256 must be 64 lowercase hex digits")
            pins[url] = Pin(sha256=sha, size=int(entry.get("size", -1)), key=str(entry.get("key") or artifact_key(url)))
        return cls(p, pins)

    def save(self) -> None:
        body = {
            "_comment": "tx2setup artifact pins: commit this file; `tx2setup cache verify` re-checks the cache",
            "version": LOCK_VERSION,
            "artifacts": {
                url: {"sha256": pin.sha256, "size": pin.size, "key": pin.key} for url, pin in sorted(self.pins.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)


class ArtifactCache:
    """Fetch-once, verify-always storage of large artifacts on the control host."""

    def __init__(self, lock: LockFile, root: Path | None = None, timeout: float = 60.0) -> None:
        self.lock = lock
        self.dir = (root or cache_root()) / "artifacts"
        self.timeout = timeout
        self.fetched_bytes = 0

    def path_of(self, url: str) -> Path:
        pin = self.lock.pins.get(url)
        return self.dir / (pin.key if pin else artifact_key(url))

    def _mismatch(self, what: str, url: str, expected: str, actual: str) -> ChecksumError:
        return ChecksumError(
            f"{what} {url}: sha256 {actual} does not match the pinned {expected} ({self.lock.path}); nothing was used"
        )

    def fetch(self, url: str, expected_sha256: str | None = None) -> Artifact:
        """Return the verified cached copy of `url`, downloading it first if needed.

        `expected_sha256` (e.g. from the matrix) must agree with the lock when both exist.
        """
        pin = self.lock.pins.get(url)
        if expected_sha256 and pin and pin.sha256 != expected_sha256:
            raise self._mismatch("matrix pin for", url, pin.sha256, expected_sha256)
        want = pin.sha256 if pin else (expected_sha256 or None)
        if want is None and unverified_plain_http(url):
            raise plain_http_refused(url, str(self.lock.path))
        path = self.path_of(url)
        fetched = 0
        if path.exists():
            actual = sha256_file(path)
            if want and actual != want:
                raise ChecksumError(
                    f"cached {path}: sha256 {actual} does not match the pinned {want} for {url} "
                    f"({self.lock.path}); delete the file to fetch it again"
                )
        else:
            actual, fetched = self._download(url, path, want)
        if pin is None:
            self.lock.pins[url] = Pin(sha256=actual, size=path.stat().st_size, key=artifact_key(url))
            self.lock.save()
        return Artifact(
            url=url,
            key=self.lock.pins[url].key,
            path=path,
            sha256=actual,
            size=path.stat().st_size,
            fetched_bytes=fetched,
        )

    def _download(self, url: str, path: Path, want: str | None) -> tuple[str, int]:
        """Stream `url` into `path` through a .part file; resume a .part left by an interrupted run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": "tx2setup-cache"})  # noqa: S310 - http(s) only, checked below
        if not url.startswith(("http://", "https://")):
            raise UserError(f"artifact URL {url!r} is not http(s)")
        if have:
            req.add_header("Range", f"bytes={have}-")
        fetched = 0
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                mode = "ab" if have and resp.status == 206 else "wb"
                expected = resp.headers.get("Content-Length")
                with part.open(mode) as fh:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        fh.write(block)
                        fetched += len(block)
                # http.client returns a short body without an error when the server goes away
                # mid-transfer (HTTPResponse.readinto): a truncated file must not be pinned
                if expected is not None and expected.isdigit() and fetched != int(expected):
                    raise OSError(f"the server closed the connection after {fetched} of {expected} bytes")
        except (urllib.error.URLError, OSError) as exc:
            self.fetched_bytes += fetched
            reason = getattr(exc, "reason", exc)
            raise EnvironmentProblem(f"cannot fetch {url}: {reason}") from None
        self.fetched_bytes += fetched
        actual = sha256_file(part)
        if want and actual != want:
            part.unlink()
            raise self._mismatch("download of", url, want, actual)
        part.replace(path)
        return actual, fetched

    def verify(self) -> list[tuple[str, str]]:
        """Re-hash every pinned artifact present in the cache: [(url, problem)] for each bad one."""
        problems = []
        for url, pin in sorted(self.lock.pins.items()):
            path = self.dir / pin.key
            if not path.exists():
                problems.append((url, "missing from the cache"))
                continue
            actual = sha256_file(path)
            if actual != pin.sha256:
                problems.append((url, f"sha256 {actual} does not match the pinned {pin.sha256}"))
        return problems

    def entries(self) -> Iterator[tuple[str, Pin, bool]]:
        for url, pin in sorted(self.lock.pins.items()):
            yield url, pin, (self.dir / pin.key).exists()


def plan_artifacts(plans: Iterable[Any]) -> dict[str, str | None]:
    """The artifact URLs a set of BoardPlans needs: {url: sha256 from the matrix or None}.

    A torch the board installs from an index (`torch_index_url`, JetPack 6) is not one: its
    file URL in the matrix is unverified and the pytorch role never downloads it (see
    `index_installs`)."""
    out: dict[str, str | None] = {}
    for p in plans:
        comps = set(p.components)
        if "pytorch" in comps and p.torch_wheel_url and not p.torch_index_url:
            out.setdefault(p.torch_wheel_url, p.torch_sha256)
        if "zed_sdk" in comps and p.zed_sdk_url:
            out.setdefault(p.zed_sdk_url, None)
        if "caffe" in comps and p.caffe_source_url:
            out.setdefault(p.caffe_source_url, p.caffe_sha256)
    return out


def index_installs(plans: Iterable[Any]) -> dict[str, str]:
    """What boards pip-install from an index themselves, so the cache does not hold it:
    {"torch==VERSION": index URL}."""
    out: dict[str, str] = {}
    for p in plans:
        index = p.torch_index_url
        if "pytorch" in set(p.components) and index and p.torch_version:
            out.setdefault(f"torch=={p.torch_version}", index)
    return out


WHEELHOUSE_PREFIX = "wheelhouse"  # URL prefix and directory name: tx2setup/wheelhouse.py DIR_NAME
WHEELHOUSE_INDEX = "index.html"
MAX_URL_PATH = 1024  # longer than any cache key (tool/version/file name) will ever be


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of regular files under the server's root, with single-range requests."""

    server: _Server
    protocol_version = "HTTP/1.1"
    # A client that stops sending or reading is dropped after this many seconds, so slow or
    # stalled clients cannot hold the server's threads (socketserver.StreamRequestHandler.timeout).
    timeout = 30.0
    # Answer a garbled request line with a status line too (http.server's default is HTTP/0.9:
    # a bare error page with no status a client could read).
    default_request_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return  # boards' downloads are counted, not logged to the terminal

    def _resolve(self) -> Path | None:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        if not rel or "\0" in rel or len(rel) > MAX_URL_PATH:
            return None  # a NUL or a path longer than any cache key: no such file
        root = self.server.root
        # /wheelhouse/<tag>/ is the wheelhouse (artifact keys start with 12 hex digits, so the
        # two never meet); its directory URL is the find-links page pip reads
        top, _, rest = rel.partition("/")
        if top == WHEELHOUSE_PREFIX and self.server.wheelhouse is not None:
            root, rel = self.server.wheelhouse, rest
            if rel.endswith("/") and rel.count("/") == 1:
                rel += WHEELHOUSE_INDEX
        if not rel or any(part.startswith(".") for part in rel.split("/")):
            return None  # a wheelhouse being filled (.<tag>.tmp-PID) is not served
        try:
            target = (root / rel).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                return None
        except (OSError, ValueError):  # ENAMETOOLONG, ELOOP, ...: not a file we serve
            return None
        # partial downloads are never served, whatever name reached them (a link, a dir)
        if target.name.endswith((".part", ".tmp")):
            return None
        return target

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _read_only(self) -> None:
        self.send_response(405, "the tx2setup cache is read-only")
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _read_only

    def _serve(self, body: bool) -> None:
        target = self._resolve()
        if target is None:
            self.send_error(404, "not in the tx2setup cache")
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if m is None or (m.group(1) == "" and m.group(2) == ""):
                self.send_error(416, "unsupported range")
                return
            if m.group(1) == "":
                start = max(0, size - int(m.group(2)))
            else:
                start = int(m.group(1))
                if m.group(2):
                    end = min(end, int(m.group(2)))
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        # pip reads a find-links URL as a page only when it is text/html (pip's collector.py,
        # _ensure_api_response: "Skipping page ... because ... Content-Type")
        html = target.name == WHEELHOUSE_INDEX
        self.send_header("Content-Type", "text/html; charset=utf-8" if html else "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        wheel = self.server.note(target)
        sent = 0
        with target.open("rb") as fh:
            fh.seek(start)
            while sent < length:
                block = fh.read(min(CHUNK, length - sent))
                if not block:
                    break
                # Counted before the write: a client can hold the last byte before write()
                # returns here, and a count made afterwards raced whoever read bytes_served
                # right after its download (seen in CI: 9807 of 10489 bytes counted).
                self.server.count(len(block), wheel)
                try:
                    self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    self.server.count(-len(block), wheel)
                    break
                sent += len(block)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # listen() backlog: socketserver's default of 5 makes a burst of boards starting their
    # downloads at once wait for SYN retries (1 s, 3 s, 7 s, ...); 256 takes a lab's burst.
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], root: Path, wheelhouse: Path | None = None) -> None:
        super().__init__(addr, _Handler)
        self.root = root.resolve()
        self.wheelhouse = wheelhouse.resolve() if wheelhouse is not None else None
        self.bytes_served = 0
        self.wheel_bytes_served = 0
        self.wheel_requests: list[str] = []  # <tag>/<file> of each wheelhouse GET, in order
        self._lock = threading.Lock()

    def count(self, n: int, wheel: bool = False) -> None:
        with self._lock:
            if wheel:
                self.wheel_bytes_served += n
            else:
                self.bytes_served += n

    def note(self, target: Path) -> bool:
        """Log a wheelhouse request (the run record's proof of where a board's wheels came
        from); True when `target` is in the wheelhouse."""
        if self.wheelhouse is None or not target.is_relative_to(self.wheelhouse):
            return False
        with self._lock:
            self.wheel_requests.append(target.relative_to(self.wheelhouse).as_posix())
        return True


class CacheServer:
    """Serve a cache's artifacts directory over HTTP for the duration of a `with` block."""

    def __init__(self, root: Path, bind: str = "127.0.0.1", port: int = 0, wheelhouse: Path | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        if wheelhouse is not None:
            wheelhouse.mkdir(parents=True, exist_ok=True)
        try:
            self._server = _Server((bind, port), root, wheelhouse)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot serve the artifact cache on {bind}:{port}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="tx2setup-cache", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def bytes_served(self) -> int:
        return self._server.bytes_served

    @property
    def wheel_requests(self) -> list[str]:
        """`<tag>/<file>` of each wheelhouse file sent (the index page included), in order."""
        return list(self._server.wheel_requests)

    @property
    def wheelhouse_bytes_served(self) -> int:
        """Bytes sent from the wheelhouse (pages and wheels); not in bytes_served."""
        return self._server.wheel_bytes_served

    def url_for(self, key: str) -> str:
        return f"{self.base_url}/{urllib.parse.quote(key, safe='/+')}"

    def start(self) -> CacheServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CacheServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
