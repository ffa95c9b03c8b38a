"""tx2setup/bench runs on a board where only that directory was copied, under Python 3.6 syntax."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tx2setup" / "bench"


@pytest.mark.parametrize("with_init", [True, False])
def test_python_m_runs_from_a_copy_of_the_directory(tmp_path, with_init):
    dest = tmp_path / "board"
    shutil.copytree(BENCH, dest / "tx2setup" / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    if with_init:
        (dest / "tx2setup" / "__init__.py").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "tx2setup.bench", "--list-backends"],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "TX2SETUP_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "cpu-fp32" in proc.stdout and "available" in proc.stdout


def test_bench_never_imports_the_rest_of_tx2setup():
    for path in BENCH.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(tx2setup\S*)", path.read_text(), re.M)
        assert imports == [], path  # relative imports only


def test_vermin_python36():
    vermin = shutil.which("vermin") or str(Path(sys.executable).parent / "vermin")
    if not Path(vermin).exists():
        pytest.skip("vermin not installed")
    proc = subprocess.run(
        [vermin, "-q", "--no-tips", "--violations", "-t=3.6-", str(BENCH)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tx2setup_bench_verb_passes_arguments_through():
    proc = subprocess.run(
        [sys.executable, "-m", "tx2setup", "bench", "--backends", "bogus"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "unknown bogus" in proc.stderr
