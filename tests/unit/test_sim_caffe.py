"""Unit: the real Caffe source the sim serves (fetched once, pinned) and the role's patch set."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tx2setup.errors import ChecksumError, EnvironmentProblem
from tx2setup.sim import caffe, inventory

ROLE = Path(__file__).resolve().parents[2] / "roles" / "caffe"
PAYLOAD = b"caffe source tree" * 4096


class _Origin(http.server.ThreadingHTTPServer):
    hits: int


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Origin

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.server.hits += 1
        if not self.path.endswith(caffe.FILE_NAME):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)


@pytest.fixture
def origin() -> Iterator[_Origin]:
    server = _Origin(("127.0.0.1", 0), _Handler)
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: _Origin, name: str = caffe.FILE_NAME) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/debian/pool/main/c/caffe/{name}"


def test_pin_is_the_one_debian_publishes() -> None:
    # caffe_1.0.0+git20180821.99bd997-8.dsc: Checksums-Sha256 and size of the orig tarball
    assert f"http://deb.debian.org/debian/pool/main/c/caffe/{caffe.FILE_NAME}" == caffe.URL
    assert caffe.SHA256 == "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
    assert caffe.SIZE == 8518844
    assert f"caffe/{caffe.FILE_NAME}" == inventory.CAFFE_TARBALL


def test_fetched_once_then_reused(origin: _Origin, tmp_path: Path) -> None:
    pin = hashlib.sha256(PAYLOAD).hexdigest()
    first = caffe.fetch(tmp_path / "store", url_of(origin), pin)
    assert first.read_bytes() == PAYLOAD and origin.hits == 1
    again = caffe.fetch(tmp_path / "store", url_of(origin), pin)
    assert again == first and origin.hits == 1  # the cached copy, checked against the pin


def test_damaged_cached_copy_is_fetched_again(origin: _Origin, tmp_path: Path) -> None:
    pin = hashlib.sha256(PAYLOAD).hexdigest()
    path = caffe.fetch(tmp_path, url_of(origin), pin)
    path.write_bytes(b"truncated")
    assert caffe.fetch(tmp_path, url_of(origin), pin).read_bytes() == PAYLOAD
    assert origin.hits == 2


def test_wrong_bytes_are_refused_and_not_kept(origin: _Origin, tmp_path: Path) -> None:
    with pytest.raises(ChecksumError) as exc:
        caffe.fetch(tmp_path, url_of(origin), "0" * 64)
    assert "0" * 64 in str(exc.value) and hashlib.sha256(PAYLOAD).hexdigest() in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_source_is_one_line_naming_the_way_out(origin: _Origin, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        caffe.fetch(tmp_path, url_of(origin, "nothing-here.tar.gz"))
    msg = str(exc.value)
    assert "\n" not in msg and caffe.URL_ENV in msg and str(tmp_path) in msg
    assert list(tmp_path.iterdir()) == []


def test_build_links_the_pinned_file_and_drops_the_stand_in(
    origin: _Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caffe, "SHA256", hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setenv(caffe.URL_ENV, url_of(origin))
    dest = tmp_path / "upstream" / "caffe"
    dest.mkdir(parents=True)
    (dest / "caffe-1.0.tar.gz").write_bytes(b"old stand-in")
    caffe.build(dest, tmp_path / "sources")
    assert [p.name for p in dest.iterdir()] == [caffe.FILE_NAME]
    assert (dest / caffe.FILE_NAME).samefile(tmp_path / "sources" / caffe.FILE_NAME)


def _patch_targets(patch: Path) -> list[str]:
    return re.findall(r"^\+\+\+ b/(\S+)", patch.read_text(), flags=re.M)


def test_every_patch_the_role_names_is_a_role_file_with_its_source() -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    names = [*defaults["caffe_patches"], "protobuf-3.18-SetTotalBytesLimit.patch"]
    assert "protobuf-3.18-SetTotalBytesLimit.patch" in defaults["caffe_patch_set"]
    for name in names:
        patch = ROLE / "files" / "patches" / name
        head = patch.read_text().split("\n---", 1)[0]
        assert re.search(r"^(Source|Author):", head, flags=re.M), f"{name}: no provenance header"
        assert "BSD-2-Clause" in head, f"{name}: no licence line"
        assert _patch_targets(patch), f"{name}: no file patched"
    assert "src/caffe/util/io.cpp" in _patch_targets(ROLE / "files/patches/0001-opencv4-bvlc-pr-6693.patch")


def test_protobuf_patch_only_where_protobuf_dropped_the_two_argument_call() -> None:
    # protobuf >= 3.18 has no two-argument SetTotalBytesLimit (protocolbuffers/protobuf#8794);
    # Debian 12 has 3.21.12, Ubuntu 18.04/20.04/22.04 have 3.0.0/3.6.1/3.12.4
    want = {"Debian-12": True, "Ubuntu-18.04": False, "Ubuntu-20.04": False, "Ubuntu-22.04": False}
    for name, one_arg in want.items():
        data = yaml.safe_load((ROLE / "vars" / f"{name}.yml").read_text())
        assert data["caffe_protobuf_one_arg_limit"] is one_arg, name
        assert "patch" in data["caffe_build_packages"], name
