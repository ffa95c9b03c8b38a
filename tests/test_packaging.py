"""The wheel carries the Ansible content, so an installed tx2setup provisions without a
checkout: every role and playbook file is in it, and the installed package finds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy of the project's files: a build in the checkout leaves build/ there
    src = out / "src"
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"], check=True, capture_output=True, text=True
    )
    for rel in listed.stdout.splitlines():
        origin, dest = ROOT / rel, src / rel
        if not origin.exists() and not origin.is_symlink():
            continue  # deleted in the working tree
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, dest, follow_symlinks=False)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src), "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("tx2setup-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def tracked(*dirs: str) -> set[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", *dirs], check=True, capture_output=True, text=True)
    return {line for line in listed.stdout.splitlines() if line}


def test_wheel_carries_every_role_and_playbook_file(unpacked_wheel: Path) -> None:
    content = unpacked_wheel / "tx2setup" / "ansible"
    shipped = {str(p.relative_to(content)) for p in content.rglob("*") if p.is_file()}
    assert tracked("roles", "playbooks", "ansible.cfg") <= shipped, tracked("roles", "playbooks") - shipped


def test_installed_package_finds_its_playbooks_and_harness(unpacked_wheel: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    env.pop("TX2SETUP_PLAYBOOK_DIR", None)
    probe = (
        "import json, tx2setup, tx2setup.provision as p; print(json.dumps([tx2setup.__file__, str(p.project_root())]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    module_file, root = json.loads(out.stdout)
    assert module_file.startswith(str(unpacked_wheel)), module_file
    assert root == str(unpacked_wheel / "tx2setup" / "ansible")
    # the acceptance role's default points at the package's own harness in this layout
    playbook = Path(root) / "playbooks" / "probe-bench-src.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars_files: [../roles/acceptance/defaults/main.yml]\n"
        "  tasks:\n    - ansible.builtin.copy:\n"
        "        {content: '{{ acceptance_bench_src }}', dest: '{{ out }}', mode: '0644'}\n"
    )
    out_file = tmp_path / "bench_src.txt"
    subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-e", f"out={out_file}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    src = Path(out_file.read_text().strip()).resolve()
    assert src == (unpacked_wheel / "tx2setup" / "bench").resolve()
    assert (src / "__main__.py").is_file()


def test_wheel_carries_the_top_level_templates(unpacked_wheel: Path, tmp_path: Path) -> None:
    """templates/ (the card's top-level folder) ships as tx2setup/templates, and the
    installed package renders its report from there."""
    content = unpacked_wheel / "tx2setup" / "templates"
    shipped = {f"templates/{p.relative_to(content)}" for p in content.rglob("*") if p.is_file()}
    assert tracked("templates") and tracked("templates") <= shipped, tracked("templates") - shipped
    env = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    probe = "import tx2setup.report as r; print(r.__file__); print(r.render_html([], [], {}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    module_file, page = out.stdout.split("\n", 1)
    assert module_file.startswith(str(unpacked_wheel)), module_file
    assert "<html" in page and "tx2setup verify report" in page
