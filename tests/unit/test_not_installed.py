"""The one "already installed?" test of the roles' apt tasks (plugins/filter/packages.py,
tx2setup.jetson.not_installed) over jetson_base's board facts (issue 15)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))  # tx2setup.fact has no .py suffix
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


PACKAGES = load("tx2setup_filter_packages", ROOT / "plugins" / "filter" / "packages.py")
FACT_SCRIPT = load("tx2setup_fact", ROOT / "roles" / "jetson_base" / "files" / "tx2setup.fact")
# as tx2setup.fact writes it: every package as "name" and "name=version"
INSTALLED = "zstd zstd=1.5.4+dfsg2-5 libcudnn8 libcudnn8=8.2.1.32-1+cuda10.2 udev udev=252.31-1"
FACTS = {"tx2setup": {"installed": INSTALLED}}


def test_names_match_whole_words_only() -> None:
    assert PACKAGES.not_installed(["zstd", "udev", "zst", "libusb-1.0-0"], FACTS) == ["zst", "libusb-1.0-0"]


def test_pinned_specs_match_a_version_prefix() -> None:
    """jetpack's "name=PREFIX*" (apt's glob): 8.2.1 is there, 8.2.2 and cuDNN 9 are not."""
    specs = ["libcudnn8=8.2.1*", "libcudnn8=8.2.2*", "libcudnn9-cuda-12=9.3*"]
    assert PACKAGES.not_installed(specs, FACTS) == ["libcudnn8=8.2.2*", "libcudnn9-cuda-12=9.3*"]


@pytest.mark.parametrize("local", [None, {}, {"tx2setup": {}}])
def test_without_jetson_base_facts_everything_is_missing(local: object) -> None:
    assert PACKAGES.not_installed(["zstd", "udev=252*"], local) == ["zstd", "udev=252*"]


@pytest.mark.parametrize("local", [{"tx2setup": "zstd"}, {"tx2setup": {"installed": ["zstd"]}}])
def test_facts_of_another_shape_fail_with_one_line(local: object) -> None:
    with pytest.raises(AnsibleFilterError, match="re-run jetson_base"):
        PACKAGES.not_installed(["zstd"], local)


def test_the_facts_script_output_is_what_the_filter_reads(tmp_path: Path) -> None:
    """tx2setup.fact's own reading of a dpkg status file feeds the filter unchanged."""
    status = tmp_path / "status"
    status.write_text(
        "Package: zstd\nStatus: install ok installed\nVersion: 1.5.4+dfsg2-5\n\n"
        "Package: udev\nStatus: deinstall ok config-files\nVersion: 252.31-1\n"
    )
    installed = " ".join(FACT_SCRIPT.installed_packages(str(status)))
    local = {"tx2setup": {"installed": installed}}
    assert PACKAGES.not_installed(["zstd", "zstd=1.5*", "udev"], local) == ["udev"]
