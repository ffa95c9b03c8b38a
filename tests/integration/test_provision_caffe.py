"""The real BVLC Caffe, built by the caffe role on one emulated board (issue 11).

Runs after test_provision.py (same stage, file order), on the session's TX2 board. The
session's full provisioning run already builds Caffe there (caffe is in the sim boards'
components), so this is no second build: `provision --tags caffe` finds the same build-id
and changes nothing. Run alone, the same call is the one build (about 6 minutes of a
2-core host, docs/benchmarks.md). The build and role times are read from the run's per-board
log (each TASK line carries its start time) and reported as properties of the junit test suite.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tx2setup import cache, provision
from tx2setup.sim import caffe as sim_caffe

pytestmark = pytest.mark.integration

BUILD_TASK = "caffe : Build Caffe, its tools and pycaffe"
TASK_LINE = re.compile(r"^TASK \[(?P<name>[^\]]+)\] (?P<at>\S+)$", re.M)

# A net with fixed weights: y = W x + b with W = 2 everywhere, b = 1 (Caffe's constant filler)
PROTOTXT = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2
    weight_filler { type: "constant" value: 2 } bias_filler { type: "constant" value: 1 } } }
"""
FORWARD = (
    "import sys, numpy, caffe; caffe.set_mode_cpu(); "
    "net = caffe.Net('/tmp/tiny.prototxt', caffe.TEST); "
    "net.blobs['data'].data[...] = numpy.array([[1.0, 2.0, 3.0]]); "
    "print(' '.join('%g' % v for v in net.forward()['ip'].ravel()))"
)


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("caffe-cache")
    old = os.environ.get(cache.CACHE_ENV)
    os.environ[cache.CACHE_ENV] = str(root)
    yield root
    if old is None:
        os.environ.pop(cache.CACHE_ENV, None)
    else:
        os.environ[cache.CACHE_ENV] = old


def task_times(log: str) -> dict[str, float]:
    """Seconds per task (to the next TASK line, the last one to the log's end is left out)."""
    marks = [(m["name"], datetime.fromisoformat(m["at"])) for m in TASK_LINE.finditer(log)]
    return {name: (nxt - at).total_seconds() for (name, at), (_, nxt) in itertools.pairwise(marks)}


@pytest.fixture(scope="module")
def caffe_run(sim_fleet: Any, private_cache: Path) -> provision.ProvisionResult:
    board = sim_fleet.board(module="tx2")
    return provision.run(sim_fleet.inventory, limit=board.name, tags="caffe")


def test_caffe_role_builds_the_real_source(
    sim_fleet: Any, caffe_run: provision.ProvisionResult, record_testsuite_property: Callable[[str, object], None]
) -> None:
    board = sim_fleet.board(module="tx2")
    host = caffe_run.hosts[board.name]
    assert caffe_run.ok, (host.status, host.failed_task, host.message, caffe_run.run_dir)
    times = task_times(Path(host.log).read_text())
    role_s = sum(s for name, s in times.items() if name.startswith("caffe : "))
    record_testsuite_property("caffe_role_s", round(role_s, 1))
    record_testsuite_property("caffe_build_s", round(times.get(BUILD_TASK, 0.0), 1))  # 0: built earlier in the session
    # the source is Debian's orig tarball, pinned in the lock at the .dsc's sha256
    lock = cache.LockFile.load(cache.lock_path_for(sim_fleet.inventory))
    pins = {url: pin.sha256 for url, pin in lock.pins.items() if url.endswith(sim_caffe.FILE_NAME)}
    assert set(pins.values()) == {sim_caffe.SHA256}, pins
    code, out, err = sim_fleet.run(board, "cat /opt/caffe/.tx2setup-build")
    assert code == 0, err
    assert "cpu_only=True" in out and f"source={sim_caffe.SHA256}" in out
    for patch in ("0001-opencv4-bvlc-pr-6693.patch", "0002-cmake-boost-python-component-name.patch"):
        assert patch in out
    assert "protobuf-3.18-SetTotalBytesLimit.patch" in out  # Debian 12's protobuf 3.21


def test_the_built_caffe_is_the_real_one(sim_fleet: Any, caffe_run: provision.ProvisionResult) -> None:
    assert caffe_run.ok
    board = sim_fleet.board(module="tx2")
    code, out, err = sim_fleet.run(board, "bash -lc 'caffe --version'")
    assert code == 0 and out.strip() == "caffe version 1.0.0", out + err
    # linked against Debian 12's OpenCV 4 (the 0001 patch is what lets it compile) and OpenBLAS
    code, out, err = sim_fleet.run(board, "ldd /opt/caffe/lib/libcaffe.so.1.0.0")
    assert code == 0, err
    assert re.search(r"libopencv_core\.so\.4", out) and "libopenblas" in out, out
    # pycaffe runs a forward pass: [1 2 3] . [2 2 2] + 1 = 13 for both outputs
    sim_fleet.run(board, f"cat > /tmp/tiny.prototxt <<'EOF'\n{PROTOTXT}\nEOF")
    code, out, err = sim_fleet.run(board, f'bash -lc "python3 -c \\"{FORWARD}\\""')
    assert code == 0, out + err
    assert out.split() == ["13", "13"], out + err


def test_second_caffe_run_changes_nothing(sim_fleet: Any, caffe_run: provision.ProvisionResult) -> None:
    assert caffe_run.ok
    board = sim_fleet.board(module="tx2")
    again = provision.run(sim_fleet.inventory, limit=board.name, tags="caffe")
    assert again.ok and again.hosts[board.name].changed == 0
    assert BUILD_TASK not in Path(again.hosts[board.name].log).read_text()
