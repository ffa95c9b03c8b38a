"""The collection tx2setup.jetson and its execution environment (issue 12): one copy of the
roles (the checkout's collection path links to them), the version agrees with the package,
an AWX project sync installs it from collections/requirements.yml, and `ansible-builder
create` writes a build context that installs the collection, the tx2setup wheel and
ansible-core 2.16."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

import tx2setup

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def galaxy_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible-home"), **extra}


def test_galaxy_version_is_the_package_version() -> None:
    meta = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"]) == ("tx2setup", "jetson")
    assert meta["version"] == tx2setup.__version__


def test_checkout_collection_links_to_the_one_copy_of_the_content() -> None:
    """collections/ansible_collections/tx2setup/jetson is links, never a second copy."""
    coll = ROOT / "collections" / "ansible_collections" / "tx2setup" / "jetson"
    for entry in coll.iterdir():
        assert entry.is_symlink(), entry
        assert entry.resolve() == (ROOT / entry.name).resolve()
    assert {e.name for e in coll.iterdir()} >= {"plugins", "roles", "playbooks", "galaxy.yml"}


@pytest.fixture(scope="module")
def collection_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("galaxy")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        env=galaxy_env(out),
    )
    (tarball,) = out.glob("tx2setup-jetson-*.tar.gz")
    return tarball


def test_built_collection_holds_the_ansible_content_only(collection_tarball: Path) -> None:
    with tarfile.open(collection_tarball) as tf:
        names = set(tf.getnames())
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"MANIFEST.json", "FILES.json", "docs", "meta", "playbooks", "plugins", "roles", "tests"}, tops
    # tests/ carries ansible-test's sanity ignore file only (no test code, no fixtures)
    assert {n for n in names if n.startswith("tests/")} == {"tests/sanity", "tests/sanity/ignore-2.16.txt"}
    assert {"plugins/action/plan.py", "playbooks/site.yml", "meta/runtime.yml", "docs/ansible.md"} <= names
    roles = {n.split("/")[1] for n in names if n.startswith("roles/") and n.count("/") >= 2}
    assert roles == {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()}


def test_awx_project_sync_installs_the_collection(tmp_path: Path) -> None:
    """As AWX's project_update.yml runs it: from the project root, its own collections path."""
    dest = tmp_path / "requirements_collections"
    proc = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml", "-p", str(dest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=galaxy_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(dest)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = dest / "ansible_collections" / "tx2setup" / "jetson"
    assert (installed / "plugins" / "action" / "plan.py").read_text() == (ROOT / "plugins/action/plan.py").read_text()
    assert (installed / "playbooks" / "site.yml").is_file()
    assert not (installed / "tx2setup").exists() and not (installed / "tests" / "unit").exists()


@pytest.mark.skipif(shutil.which("ansible-builder", path=str(BIN)) is None, reason="ansible-builder not installed")
def test_ansible_builder_create_writes_the_context(tmp_path: Path, collection_tarball: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    shutil.copy(collection_tarball, dist)
    # the wheel as `pip wheel` names it (its content is test_packaging.py's concern)
    wheel = dist / f"tx2setup-{tx2setup.__version__}-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    proc = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ctx = tmp_path / "context"
    (spec,) = [p for p in (ctx / "Containerfile", ctx / "Dockerfile") if p.exists()]
    text = spec.read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core>=2.16,<2.17 ansible-runner>=2.3"' in text
    assert 'PYCMD="/usr/bin/python3.11"' in text
    assert "pip install --no-cache-dir /tmp/tx2setup-wheels/*.whl" in text
    assert "ansible-galaxy collection install -p /usr/share/ansible/collections /tmp/tx2setup-collections/" in text
    assert (ctx / "_build" / "wheels" / wheel.name).is_file()
    assert (ctx / "_build" / "collections" / collection_tarball.name).read_bytes() == collection_tarball.read_bytes()
