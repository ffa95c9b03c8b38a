"""roles/jetson_base/files/tx2setup.fact: the board's package facts the roles skip apt by."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "jetson_base" / "files" / "tx2setup.fact"

STATUS = """\
Package: cuda-toolkit-10-2
Status: install ok installed
Version: 10.2.460-1

Package: tensorrt
Status: deinstall ok config-files
Version: 8.2.1.9-1+cuda10.2

Package: libcudnn8
Status: hold ok installed
Architecture: arm64
Version: 8.2.1.32-1+cuda10.2

Package: python3-rospy
Status: install ok half-configured
Version: 1.15.15+ds-2

Package: nvidia-l4t-core
Status: install ok installed
Version: 32.7.4-20230608212426"""  # no blank line at the end, as dpkg may leave it


def load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("tx2setup_fact", str(SCRIPT))
    spec = importlib.util.spec_from_loader("tx2setup_fact", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_installed_packages_only_counts_installed_ones(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(STATUS)
    got = load().installed_packages(str(status))
    assert got == [
        "cuda-toolkit-10-2",
        "cuda-toolkit-10-2=10.2.460-1",
        "libcudnn8",
        "libcudnn8=8.2.1.32-1+cuda10.2",
        "nvidia-l4t-core",
        "nvidia-l4t-core=32.7.4-20230608212426",
    ]  # tensorrt (removed) and python3-rospy (half-configured) must still be installed by apt


def test_script_prints_one_json_object_of_strings() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    facts = json.loads(out)
    assert set(facts) == {"installed", "apt_lists_mtime", "systemd_units"}
    assert isinstance(facts["installed"], str) and isinstance(facts["apt_lists_mtime"], int)
    assert "dpkg" in facts["installed"].split()  # this host's own dpkg database
