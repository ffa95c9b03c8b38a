"""apt-cacher-ng for the length of a run: every .deb crosses the upstream link once per fleet.

`tx2setup provision` starts one beside the artifact server; `tx2setup cache serve --apt` runs
one standalone (for plain ansible-playbook and AWX). It is Debian's apt-cacher-ng binary
(https://packages.debian.org/bookworm/apt-cacher-ng) run as the invoking user with its own
configuration, cache and log directories under $TX2SETUP_CACHE/apt-cacher-ng, never the
system service: nothing in /etc or /var is touched, and the cache survives between runs.

Upstream bytes and hits are read from the proxy's own transfer log, never estimated.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tx2setup import lifeline
from tx2setup.cache import cache_root
from tx2setup.errors import EnvironmentProblem

BINARY = "apt-cacher-ng"
# The package's support files (report page templates, mirror lists); acng.conf's SupportDir.
SUPPORT_DIR = "/usr/lib/apt-cacher-ng"
# apt-cacher-ng 3.7.4 (Debian 12) formats its Port as a signed 16-bit number: Port=39142 reached
# getaddrinfo() as the service "-2639" (seen here under gdb, `break getaddrinfo`), and the proxy
# then printed "Error resolving address for binding: Success" and never listened. So the port
# is picked below 32768.
PORT_RANGE = (20000, 32767)
REPORT_PAGE = "acng-report.html"
# Its transfer log, one line per transfer: "time|I|bytes|client|path" for bytes fetched from
# upstream (I, incoming), "O" for bytes served to a client, "E" for an error. Format as written by
# apt-cacher-ng 3.7.4 with VerboseLog: 1 (seen here); the manual's "Log analysis" of the report
# page is computed from the same file (/usr/share/doc/apt-cacher-ng/html/maint.html).
LOG_NAME = "apt-cacher.log"
START_TIMEOUT_S = 15.0
# A suite's release files, by the path apt-cacher-ng files them under (host/path...dists/SUITE/
# FILE, also for http://HTTPS///host/...). POSIX extended regex, as acng.conf's patterns are.
INDEX_PATTERN = r"/dists/[^/]+/(InRelease|Release|Release\.gpg)$"
# How long a cached release file is served before the next client's request fetches it again:
# the freshness acng.conf's FreshIndexMaxAge promises ("more than a couple of minutes" risks
# answers that disagree when the mirror changes mid-run: apt then fails on a hash mismatch
# against the signed InRelease, loudly). Checked every INDEX_SWEEP_S.
INDEX_FRESH_S = 300.0
INDEX_SWEEP_S = 30.0
INDEX_NAMES = ("InRelease", "Release", "Release.gpg")
# Where the proxy keeps its cache, logs and config (default $TX2SETUP_CACHE/apt-cacher-ng).
DIR_ENV = "TX2SETUP_APT_PROXY_DIR"


def default_root() -> Path:
    env = os.environ.get(DIR_ENV)
    return Path(env).expanduser() if env else cache_root() / "apt-cacher-ng"


@dataclass
class ProxyStats:
    """What the proxy's log says about a run: upstream bytes, bytes served, hits and misses.

    A hit is a file served (O) with no matching fetch (I) for it: it came from the cache. A
    miss is a file fetched from upstream. Both counted per transfer, from the proxy's own log.
    """

    fetched_bytes: int = 0
    served_bytes: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0
    hit_paths: list[str] = field(default_factory=list)
    miss_paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "fetched_bytes": self.fetched_bytes,
            "served_bytes": self.served_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
        }


def parse_log(text: str) -> ProxyStats:
    """Tally apt-cacher-ng's transfer log (see LOG_NAME for the line format)."""
    stats = ProxyStats()
    pending: dict[str, int] = {}  # path -> fetches not yet matched by a serve
    for line in text.splitlines():
        parts = line.split("|", 4)
        if len(parts) < 5 or not parts[2].isdigit():
            continue
        kind, size, path = parts[1], int(parts[2]), parts[4].split(" [", 1)[0]
        if kind == "I":
            stats.fetched_bytes += size
            pending[path] = pending.get(path, 0) + 1
        elif kind == "O":
            stats.served_bytes += size
            if pending.get(path, 0) > 0:
                pending[path] -= 1
                stats.misses += 1
                stats.miss_paths.append(path)
            else:
                stats.hits += 1
                stats.hit_paths.append(path)
        elif kind == "E":
            stats.errors += 1
    return stats


def free_port(bind: str) -> int:
    """A port in PORT_RANGE nobody listens on at `bind` now (the proxy binds it a moment later)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    start = PORT_RANGE[0] + os.getpid() % 1000 * 10  # spread parallel runs over the range
    for offset in range(PORT_RANGE[1] - PORT_RANGE[0]):
        port = PORT_RANGE[0] + (start - PORT_RANGE[0] + offset) % (PORT_RANGE[1] - PORT_RANGE[0])
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((bind, port))
            except OSError:
                continue
            return port
    raise EnvironmentProblem(f"no free port for apt-cacher-ng on {bind} in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def config_text(root: Path, bind: str, port: int, ca_file: Path | None = None) -> str:
    """acng.conf for one proxy; every key from /etc/apt-cacher-ng/acng.conf's documentation.
    `ca_file`: one more CA the proxy trusts for https:// upstreams (acng.conf CAfile), e.g. an
    internal mirror's; the system's CApath stays trusted."""
    lines = [
        "# Written by tx2setup (tx2setup/aptproxy.py) for its own apt-cacher-ng; not the system service.",
        f"CacheDir: {root / 'cache'}",
        f"LogDir: {root / 'log'}",
        f"SupportDir: {SUPPORT_DIR}",
        f"Port: {port}",
        f"BindAddress: {bind}",
        f"SocketPath: {root / 'run' / 'socket'}",
        f"PidFile: {root / 'run' / 'pid'}",
        "ForeGround: 1",
        f"ReportPage: {REPORT_PAGE}",
        # one log line per transfer, written at once: the run's statistics read it at the end
        "UnbufferLogs: 1",
        "VerboseLog: 1",
        # No Remap- lines: the package's backends send Debian requests to ftp.debian.org, not
        # to the mirror the boards name; without them each URL is fetched from its own host.
        # HTTPS repositories: clients ask for http://HTTPS///host/path and the proxy fetches
        # https://host/path and caches it (manual, section 8.2, "tell-me-what-you-need method":
        # /usr/share/doc/apt-cacher-ng/html/howtos.html#ssluse). No CONNECT tunnel is allowed
        # (PassThroughPattern matches nothing), so nothing passes uncached.
        "PassThroughPattern: ^$",
        # A suite's release files (InRelease, Release, Release.gpg) are served from the cache
        # without asking upstream: the boards of one run share one fetch of them, and
        # expire_indexes() deletes them after INDEX_FRESH_S so the next fetch is fresh. Why not
        # FreshIndexMaxAge (the documented knob): apt-cacher-ng 3.7.4 never holds a finished
        # volatile file for it. src/acregistry.cc computes its expiry as
        # `time_t(maxtempdelay) + m_nTimeDlStarted ? m_nTimeDlStarted : now`, which C++ parses
        # as `(maxtempdelay + started) ? started : now`, i.e. the download's start, always past
        # (3.7.4, 3.7.5 and the repository's head: github.com/shramov/apt-cacher-ng, an import of
        # the upstream tarballs). So every client's InRelease revalidates upstream, by a
        # range probe guarded by If-Range: Last-Modified (src/dlcon.cc, "the probe trick"); a
        # mirror that sends no Last-Modified (this dev host's) gets a full refetch per board:
        # 241,880 B a board, measured. SPfilePattern outranks VfilePattern (acng.conf,
        # "Pigeonholing files"), so these files count as static data.
        f"SPfilePatternEx: {INDEX_PATTERN}",
        # HTTPS/// fetches from port 443, which the default AllowUserPorts (80) refuses with
        # "403 Configuration error (confusing proxy mode) or prohibited port" (seen here)
        "AllowUserPorts: 80 443",
    ]
    if ca_file is not None:
        lines.append(f"CAfile: {ca_file}")
    return "\n".join(lines) + "\n"


def expire_indexes(cache_dir: Path, max_age: float = INDEX_FRESH_S, now: float | None = None) -> int:
    """Delete cached release files (INDEX_NAMES directly under a dists/SUITE directory) and their
    .head files written more than `max_age` seconds ago; the count deleted.

    The next client's request for one fetches it again. ctime as well as mtime: a cache that
    stamps a file with the server's Last-Modified leaves ctime at the write."""
    now = time.time() if now is None else now
    gone = 0
    for top, dirs, _files in os.walk(cache_dir):
        if Path(top).name != "dists":
            dirs[:] = [d for d in dirs if d not in ("pool", "by-hash")]  # nothing to expire down there
            continue
        dirs[:] = []
        for suite in Path(top).iterdir():
            for name in INDEX_NAMES if suite.is_dir() else ():
                path = suite / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if max(st.st_mtime, st.st_ctime) < now - max_age:
                    for victim in (path, path.with_name(name + ".head")):
                        victim.unlink(missing_ok=True)
                    gone += 1
    return gone


class AptProxy:
    """apt-cacher-ng on `bind`:`port` (a free one if 0) for the duration of a `with` block."""

    def __init__(
        self, bind: str = "127.0.0.1", port: int = 0, root: Path | None = None, ca_file: Path | None = None
    ) -> None:
        self.bind = bind
        self.ca_file = ca_file
        self.root = root or default_root()
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._lock: IO[str] | None = None
        self.died_at: float | None = None
        self._sweeping = threading.Event()  # set: the index sweeper stops
        self._sweeper: threading.Thread | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "log" / LOG_NAME

    def url_for(self, address: str) -> str:
        """The proxy URL as a board that reaches this host at `address` writes it."""
        shown = f"[{address}]" if ":" in address else address
        return f"http://{shown}:{self.port}"

    @property
    def url(self) -> str:
        return self.url_for(self.bind)

    def start(self) -> AptProxy:
        binary = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/sbin:/sbin")
        if binary is None:
            raise EnvironmentProblem(
                "apt-cacher-ng is not installed (apt-get install apt-cacher-ng, or scripts/setup.sh); "
                "or run without the apt proxy (--no-apt-proxy)"
            )
        self._take_root()
        for sub in ("cache", "log", "run", "conf"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.bind)
        (self.root / "conf" / "acng.conf").write_text(
            config_text(self.root, self.bind, self.port, self.ca_file), encoding="utf-8"
        )
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        out = (self.root / "log" / "stdout.log").open("ab")
        # its own session: a Ctrl-C meant for tx2setup does not kill it before the run ends
        self._proc = subprocess.Popen(
            [binary, "-c", str(self.root / "conf")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lifeline.die_with_parent(),  # a kill -9 of tx2setup leaves no proxy behind
        )
        out.close()
        self._wait_listening()
        self._start_sweeper()
        return self

    def _start_sweeper(self) -> None:
        """Release files from an earlier run go now; the run's own after INDEX_FRESH_S."""
        expire_indexes(self.root / "cache")
        self._sweeping.clear()

        def sweep() -> None:
            while not self._sweeping.wait(INDEX_SWEEP_S):  # a periodic timer, not a synchronisation
                expire_indexes(self.root / "cache")

        self._sweeper = threading.Thread(target=sweep, name="apt-proxy-index-expiry", daemon=True)
        self._sweeper.start()

    def _take_root(self) -> None:
        """One apt-cacher-ng per cache directory: a second run at the same time (another user of
        this host, a standalone `cache serve --apt`) gets a directory of its own."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = (self.root / "in-use.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self.root = self.root.with_name(f"{self.root.name}-{os.getpid()}")
            self._take_root()

    def _wait_listening(self) -> None:
        """Poll until the proxy accepts connections, or it exits, or START_TIMEOUT_S passes."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                break
            try:
                socket.create_connection((self.bind, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)  # polling a child's readiness, with a deadline
        tail = (self.root / "log" / "stdout.log").read_text(encoding="utf-8", errors="replace").strip()
        self.stop()
        last = tail.splitlines()[-1] if tail else "no output"
        raise EnvironmentProblem(f"apt-cacher-ng did not start on {self.bind}:{self.port}: {last}")

    def alive(self) -> bool:
        """Whether the proxy still runs; the first time it is found dead, the time is noted."""
        if self._proc is None or self._proc.poll() is not None:
            if self.died_at is None and self._proc is not None:
                self.died_at = time.time()
            return False
        return True

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stats(self) -> ProxyStats:
        """This proxy's transfers since start() (the log file is shared with earlier runs)."""
        if not self.log_path.exists():
            return ProxyStats()
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_offset)
            return parse_log(fh.read().decode("utf-8", errors="replace"))

    def stop(self) -> None:
        self._sweeping.set()
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM closes its logs and stops it (apt-cacher-ng(8))
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._lock is not None:
            self._lock.close()  # releases the directory
            self._lock = None

    def __enter__(self) -> AptProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_for_run(bind: str, warnings: list[str]) -> AptProxy | None:
    """The run's proxy on `bind`, started; None when apt-cacher-ng is not installed or does not
    start: the run goes on with the boards' apt going direct, and `warnings` says so."""
    try:
        return AptProxy(bind=bind).start()
    except EnvironmentProblem as exc:
        warnings.append(f"no apt proxy this run, boards fetch packages directly: {exc}")
        return None


def finish_run(proxy: AptProxy | None, warnings: list[str]) -> dict[str, object] | None:
    """Stop the run's proxy; its statistics for the run record, and a warning if it died mid-run
    (the boards' apt then fell back to direct: roles/jetson_base/templates/apt-proxy-detect.j2)."""
    if proxy is None:
        return None
    if not proxy.alive():
        when = time.strftime("%H:%M:%S", time.localtime(proxy.died_at or time.time()))
        warnings.append(
            f"the apt proxy (apt-cacher-ng, pid {proxy.pid}) died before the run ended (noticed {when}); "
            "boards' apt fell back to the direct sources after that"
        )
    proxy.stop()
    return {"url": proxy.url, "pid": proxy.pid} | proxy.stats().to_dict()
