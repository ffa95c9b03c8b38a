"""The fleet's pip wheelhouse (tx2setup/wheelhouse.py): real `pip download` against a local
PEP 503 index stand-in (http.server over simple/<name>/), the cache server's find-links page
and a real `pip install` from it, as a board's pip reads it."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tx2setup import cache, wheelhouse
from tx2setup.errors import ChecksumError, EnvironmentProblem

AARCH64_36 = wheelhouse.Target(python="3.6", platforms=("manylinux2014_aarch64", "manylinux_2_17_aarch64"))
X86_311 = wheelhouse.Target(python="3.11", platforms=("manylinux_2_28_x86_64", "manylinux2014_x86_64"))


def make_wheel(where: Path, name: str, version: str, requires: tuple[str, ...] = (), tag: str = "py3-none-any") -> Path:
    """A minimal valid wheel (PEP 427: dist-info METADATA, WHEEL, RECORD) with one module."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires) + "\nA description, not headers.\nRequires-Dist: no\n"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for n, body in files.items():
            zf.writestr(n, body)
        zf.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n")
    return path


class _Index(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        self.requests.append(self.path)  # the class list: one per test (fixture index)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A PEP 503 index stand-in: http.server's listing of simple/<name>/ is the project page."""
    top = tmp_path / "index"
    (top / "simple").mkdir(parents=True)
    handler = cast("type[_Index]", type("H", (_Index,), {"requests": []}))  # a request list per test
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(top)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield SimpleNamespace(
        url=f"http://127.0.0.1:{srv.server_address[1]}/simple/",
        add=lambda name, version, **kw: make_wheel(top / "simple" / name, name, version, **kw),
        requests=handler.requests,
    )
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def isolated_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's pip configuration (extra indexes, find-links, constraints) stays out."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "1")  # one retry: pip's "Retrying ... NewConnectionError" names the cause
    monkeypatch.setenv("PIP_TIMEOUT", "5")


def test_markers_are_evaluated_for_the_board_python(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "torch",
        "1.10.0",
        requires=(
            "typing-extensions",
            'dataclasses; python_version < "3.7"',
            'nvidia-cublas-cu12==12.1; platform_system == "Linux" and platform_machine == "x86_64"',
            'optree>=0.13.0; extra == "optree"',
            "sympy[dev]>=1.13.3",
        ),
    )
    assert wheelhouse.wheel_requires(wheel, AARCH64_36) == ["typing-extensions", "dataclasses", "sympy[dev]>=1.13.3"]
    assert wheelhouse.wheel_requires(wheel, X86_311) == [
        "typing-extensions",
        "nvidia-cublas-cu12==12.1",
        "sympy[dev]>=1.13.3",
    ]


def test_tags_and_abi() -> None:
    assert (AARCH64_36.tag, AARCH64_36.abi, AARCH64_36.machine) == ("cp36-manylinux2014_aarch64", "cp36m", "aarch64")
    assert (X86_311.tag, X86_311.abi, X86_311.machine) == ("cp311-manylinux_2_28_x86_64", "cp311", "x86_64")


def _plan(**kw: Any) -> SimpleNamespace:
    base = {"components": ("pytorch",), "torch_index_url": None, "emulated": False, "ubuntu": "18.04", "python": "3.6"}
    return SimpleNamespace(**(base | kw))


def test_a_board_needs_the_role_specs_and_torch_requires(tmp_path: Path) -> None:
    """JetPack 4: pip's bootstrap and the numpy pin from roles/pytorch/vars/Ubuntu-18.04.yml,
    torch's Requires-Dist from the cached wheel (markers for Python 3.6)."""
    url = "https://example.com/torch-1.10.0-cp36-cp36m-linux_aarch64.whl"
    store = tmp_path / "artifacts"
    wheel = make_wheel(
        store / "k", "torch", "1.10.0", requires=("typing-extensions", 'dataclasses; python_version < "3.7"')
    )
    lock = cache.LockFile(tmp_path / "lock", {url: cache.Pin(sha256="0" * 64, size=1, key=f"k/{wheel.name}")})
    need = wheelhouse.board_needs(_plan(torch_wheel_url=url), lock, store)
    assert need is not None
    assert need.target == AARCH64_36
    assert need.specs == ["pip==21.3.1", "numpy>=1.19,<1.20", "typing-extensions", "dataclasses"]
    emulated = wheelhouse.board_needs(_plan(emulated=True, torch_wheel_url=None), lock, store)
    assert emulated is not None and emulated.target.tag == "cp311-manylinux_2_28_x86_64" and emulated.specs == []
    assert wheelhouse.board_needs(_plan(torch_index_url="https://index.example/"), lock, store) is None
    assert wheelhouse.board_needs(_plan(components=("ros",)), lock, store) is None


def _links(page: str) -> dict[str, str]:
    return dict(re.findall(r'<a href="([^"#]+)#sha256=([0-9a-f]{64})">', page))


def test_fill_once_then_no_op_then_only_what_is_new(index: SimpleNamespace, tmp_path: Path) -> None:
    a = index.add("alpha", "1.0", requires=("beta>=2",))
    b = index.add("beta", "2.1")
    base = tmp_path / "wh"
    first = wheelhouse.fill(AARCH64_36, ["alpha"], base, index.url)
    assert sorted(first.files) == [a.name, b.name]
    assert first.fetched_bytes == a.stat().st_size + b.stat().st_size
    page = (first.path / "index.html").read_text()
    assert _links(page) == {n: hashlib.sha256((first.path / n).read_bytes()).hexdigest() for n in first.files}

    seen = len(index.requests)
    again = wheelhouse.fill(AARCH64_36, ["alpha"], base, index.url)
    assert again.fetched_bytes == 0 and again.files == first.files
    assert len(index.requests) == seen, "a satisfied wheelhouse asked the index"

    c = index.add("gamma", "3.0")
    more = wheelhouse.fill(AARCH64_36, ["gamma"], base, index.url)
    assert more.fetched_bytes == c.stat().st_size  # alpha and beta were not fetched again
    assert sorted(more.files) == sorted([a.name, b.name, c.name])
    assert sorted(p.name for p in base.iterdir()) == [".lock", AARCH64_36.tag]  # no temporary directory left


def test_a_spec_with_no_wheel_is_one_line_and_changes_nothing(index: SimpleNamespace, tmp_path: Path) -> None:
    index.add("alpha", "1.0")
    make_wheel(tmp_path / "index" / "simple" / "native", "native", "1.0", tag="cp36-cp36m-manylinux2014_x86_64")
    base = tmp_path / "wh"
    before = wheelhouse.fill(AARCH64_36, ["alpha"], base, index.url)
    manifest = (before.path / "wheelhouse.json").read_text()
    with pytest.raises(EnvironmentProblem) as exc:
        wheelhouse.fill(AARCH64_36, ["native>=1"], base, index.url)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "native>=1" in msg and "manylinux2014_aarch64" in msg and "Python 3.6" in msg and "no wheel" in msg
    assert (before.path / "wheelhouse.json").read_text() == manifest
    assert sorted(p.name for p in base.iterdir()) == [".lock", AARCH64_36.tag]


def test_no_network_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/simple/"
    with pytest.raises(EnvironmentProblem) as exc:
        wheelhouse.fill(X86_311, ["sympy>=1.13.3"], tmp_path / "wh", dead)
    msg = str(exc.value)
    assert "sympy>=1.13.3" in msg and "manylinux_2_28_x86_64" in msg and "unreachable" in msg, msg
    assert [p.name for p in (tmp_path / "wh").iterdir()] == [".lock"]


def test_a_changed_wheel_is_refused_on_the_controller(index: SimpleNamespace, tmp_path: Path) -> None:
    index.add("alpha", "1.0")
    filled = wheelhouse.fill(AARCH64_36, ["alpha"], tmp_path / "wh", index.url)
    wheel = filled.path / next(iter(filled.files))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(ChecksumError, match="does not match"):
        wheelhouse.fill(AARCH64_36, ["alpha"], tmp_path / "wh", index.url)


def _pip_install(find_links: str, target: Path, spec: str) -> subprocess.CompletedProcess[str]:
    """What the role runs on a board: pip install --no-index --find-links PAGE."""
    argv = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", find_links, "--no-cache-dir"]
    argv += ["--target", str(target), spec]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def test_served_page_installs_and_a_tampered_wheel_fails_pip(index: SimpleNamespace, tmp_path: Path) -> None:
    """The cache server's /wheelhouse/<tag>/ page: text/html with hash fragments; pip installs
    from it; a wheel changed behind the controller's back fails pip's hash check loudly."""
    index.add("alpha", "1.0", requires=("beta",))
    index.add("beta", "2.1")
    base = tmp_path / "cache" / "wheelhouse"
    filled = wheelhouse.fill(X86_311, ["alpha"], base, index.url)
    (base / f".{X86_311.tag}.tmp-1").mkdir()
    with cache.CacheServer(tmp_path / "cache" / "artifacts", wheelhouse=base) as srv:
        page_url = f"{srv.base_url}/wheelhouse/{X86_311.tag}/"
        with urllib.request.urlopen(page_url) as resp:  # noqa: S310 - the test's own http server
            assert resp.headers["Content-Type"].startswith("text/html")
            assert set(_links(resp.read().decode())) == set(filled.files)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{srv.base_url}/wheelhouse/.{X86_311.tag}.tmp-1/")  # noqa: S310
        ok = _pip_install(page_url, tmp_path / "site", "alpha")
        assert ok.returncode == 0, ok.stderr
        assert (tmp_path / "site" / "alpha" / "__init__.py").is_file() and (tmp_path / "site" / "beta").is_dir()
        assert sorted(r.rsplit("/", 1)[-1] for r in srv.wheel_requests if r.endswith(".whl")) == sorted(filled.files)
        assert srv.wheelhouse_bytes_served >= sum((filled.path / n).stat().st_size for n in filled.files)
        assert srv.bytes_served == 0  # artifacts' count stays the artifacts'

        beta = next(filled.path / n for n in filled.files if n.startswith("beta"))
        beta.write_bytes(beta.read_bytes().replace(b"VERSION", b"VERSIOM"))
        bad = _pip_install(page_url, tmp_path / "site2", "alpha")
    assert bad.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in bad.stderr, bad.stderr


def _jetpack4_inventory(tmp_path: Path, index: SimpleNamespace) -> Path:
    """One JetPack 4.6.4 TX2 with pytorch; its torch wheel (a real zip with METADATA) served
    by the index stand-in's host, so `cache sync` fetches and pins it first."""
    wheel = make_wheel(
        tmp_path / "index" / "files", "torch", "1.10.0", requires=('dataclasses; python_version < "3.7"',)
    )
    url = index.url.replace("/simple/", f"/files/{wheel.name}")
    inv = tmp_path / "inv" / "lab.ini"
    inv.parent.mkdir()
    inv.write_text(
        "[tx2]\nb1 ansible_host=127.0.1.201 jetson_module=tx2 jetpack=4.6.4 components=pytorch "
        f"torch_wheel_url={url} torch_version=1.10.0\n"
    )
    (inv.parent / cache.LOCK_NAME).write_text(
        json.dumps(
            {"version": 1, "artifacts": {url: {"sha256": cache.sha256_file(wheel), "size": wheel.stat().st_size}}}
        )
    )
    return inv


def test_cli_sync_fills_once_and_a_missing_wheel_is_exit_3(
    index: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tx2setup cache sync`: JetPack 4's specs from the role (pip's bootstrap, the numpy pin) and
    torch's Requires-Dist (dataclasses on Python 3.6), fetched once; a spec the index has no
    wheel for is one line and exit 3."""
    from tx2setup import cli

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    inv = _jetpack4_inventory(tmp_path, index)
    index.add("pip", "21.3.1")
    index.add("dataclasses", "0.8")
    assert cli.run(["cache", "sync", "-i", str(inv), "--json"]) == 3  # no numpy 1.19 in the index
    err = [ln for ln in capsys.readouterr().err.splitlines() if not re.match(r"\d{4}-\d\d-\d\dT", ln)]  # no progress
    assert len(err) == 1, err
    assert "numpy<1.20,>=1.19" in err[0], err  # pip's spelling of the role's numpy>=1.19,<1.20
    assert "manylinux2014_aarch64" in err[0] and "Python 3.6" in err[0], err
    assert [p.name for p in wheelhouse.root().iterdir()] == [".lock"]  # nothing half-written

    index.add("numpy", "1.19.5")
    assert cli.run(["cache", "sync", "-i", str(inv), "--json"]) == 0
    (house,) = json.loads(capsys.readouterr().out)["wheelhouse"]
    assert house["tag"] == "cp36-manylinux2014_aarch64" and house["fetched"] > 0
    assert sorted(n.split("-")[0] for n in house["files"]) == ["dataclasses", "numpy", "pip"]
    assert cli.run(["cache", "sync", "-i", str(inv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["wheelhouse"][0]["fetched"] == 0


def test_two_fills_at_once_fetch_once(index: SimpleNamespace, tmp_path: Path) -> None:
    """Two provisions on one controller: they take turns (flock), the second fetches nothing."""
    a = index.add("alpha", "1.0")
    results: list[wheelhouse.Filled] = []

    def run() -> None:
        results.append(wheelhouse.fill(AARCH64_36, ["alpha"], tmp_path / "wh", index.url))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.fetched_bytes for r in results) == [0, a.stat().st_size]
    assert sorted(p.name for p in (tmp_path / "wh").iterdir()) == [".lock", AARCH64_36.tag]


def test_find_links_only_where_this_controller_holds_the_board_wheelhouse(tmp_path: Path) -> None:
    """playvars' plan_pip_find_links: the page on the cache server when the wheelhouse for the
    board's tag is here; "" otherwise (the role installs as without one)."""
    board = _plan(emulated=True)
    base = tmp_path / "wh"
    assert wheelhouse.find_links_url(board, "http://10.0.0.5:8470", base) == ""
    (base / X86_311.tag).mkdir(parents=True)
    (base / X86_311.tag / wheelhouse.INDEX).write_text(wheelhouse.index_page(X86_311.tag, {}))
    url = f"http://10.0.0.5:8470/wheelhouse/{X86_311.tag}/"
    assert wheelhouse.find_links_url(board, "http://10.0.0.5:8470/", base) == url
    assert wheelhouse.find_links_url(_plan(), "http://10.0.0.5:8470", base) == ""  # a JetPack 4 board: cp36 tag
    assert wheelhouse.find_links_url(_plan(emulated=True, torch_index_url="https://x/"), "http://h", base) == ""
