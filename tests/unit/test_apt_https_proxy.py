"""HTTPS repositories through the run's apt-cacher-ng: the jetpack role's source lines in the
proxy's http://HTTPS/// form (plugins/filter/apt_sources.py), and a real apt-cacher-ng that
fetches such a URL from a local TLS stand-in (a CA made by the test, trusted by the proxy through
acng.conf CAfile) and serves the second request from its cache.

Not exercised here: apt on a board reading the rewritten lines (the emulated boards' NVIDIA
stand-in is plain http on loopback, which apt reaches directly)."""

from __future__ import annotations

import datetime
import functools
import http.server
import importlib.util
import ipaddress
import shutil
import ssl
import threading
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.test_aptproxy import _CountingMirror
from tx2setup import aptproxy
from tx2setup import matrix as mx

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("apt_sources", ROOT / "plugins" / "filter" / "apt_sources.py")
assert _spec is not None and _spec.loader is not None
apt_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apt_sources)
apt_via_proxy = apt_sources.apt_via_proxy


def test_nvidias_https_lines_take_the_proxys_form() -> None:
    lines = mx.load().release(jetpack="4.6.4").apt_lines("t186")
    # matrix.apt_lines: https://repo.download.nvidia.com/jetson/{common,t186} r32.7 main
    assert apt_via_proxy(lines) == [
        "deb http://HTTPS///repo.download.nvidia.com/jetson/common r32.7 main",
        "deb http://HTTPS///repo.download.nvidia.com/jetson/t186 r32.7 main",
    ]


def test_options_comments_and_http_sources_are_kept() -> None:
    lines = [
        "# a comment naming https://example.org",
        "deb [signed-by=/k.gpg arch=arm64] https://example.org/repo stable main",
        "deb-src https://example.org/repo stable main",
        "deb http://127.0.0.1:8080/jetson/common r32.7 main",
    ]
    assert apt_via_proxy(lines) == [
        lines[0],
        "deb [signed-by=/k.gpg arch=arm64] http://HTTPS///example.org/repo stable main",
        "deb-src http://HTTPS///example.org/repo stable main",
        lines[3],
    ]


def _ca_and_server_cert(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tx2setup test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.mark.skipif(
    shutil.which(aptproxy.BINARY, path="/usr/sbin:/usr/bin") is None, reason="apt-cacher-ng not installed"
)
def test_the_proxy_fetches_an_https_repository_once_and_caches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _CountingMirror.seen.clear()
    ca, cert, key = _ca_and_server_cert(tmp_path)
    mirror = tmp_path / "mirror"
    (mirror / "jetson/common/dists/r32.7").mkdir(parents=True)
    (mirror / "jetson/common/dists/r32.7/InRelease").write_text("signed release\n" * 50)
    (mirror / "jetson/common/pool").mkdir()
    (mirror / "jetson/common/pool/nvidia-l4t-core_32.7.4_arm64.deb").write_bytes(b"\x00deb" * 1000)
    # below 32768: apt-cacher-ng 3.7.4 mangles higher ports (aptproxy.PORT_RANGE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", aptproxy.free_port("127.0.0.1")), functools.partial(_CountingMirror, directory=str(mirror))
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    real = aptproxy.config_text
    # the stand-in's port is not 443, which acng refuses unless allowed (acng.conf AllowUserPorts)
    monkeypatch.setattr(
        aptproxy, "config_text", lambda *a: real(*a).replace("AllowUserPorts: 80 443", "AllowUserPorts: 0")
    )
    proxy = aptproxy.AptProxy(root=tmp_path / "acng", ca_file=ca).start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    base = f"http://HTTPS///127.0.0.1:{port}/jetson/common"
    try:
        for _ in range(2):  # two boards
            assert opener.open(f"{base}/dists/r32.7/InRelease", timeout=10).read().startswith(b"signed release")
            deb = opener.open(f"{base}/pool/nvidia-l4t-core_32.7.4_arm64.deb", timeout=10).read()
            assert deb == b"\x00deb" * 1000
        assert sorted(_CountingMirror.seen) == [
            "/jetson/common/dists/r32.7/InRelease",
            "/jetson/common/pool/nvidia-l4t-core_32.7.4_arm64.deb",
        ], "each file crossed the TLS upstream once"
        stats = proxy.stats()
        assert (stats.misses, stats.hits) == (2, 2)
    finally:
        proxy.stop()
        server.shutdown()
