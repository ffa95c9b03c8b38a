"""GPU paths (CUDA graphs, the optimized pipeline): run where CUDA is, skip cleanly elsewhere."""

from __future__ import annotations

import pytest
import torch

from tx2setup.bench import cli
from tx2setup.bench.report import load_json

from .conftest import FAST

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch sees no GPU here)"),
]


def test_graph_backends_both_pipelines_are_correct(tmp_path):
    out = tmp_path / "r.json"
    backends = "cuda-fp32,cuda-fp16,cuda-fp16-graph"
    assert cli.main(["--backends", backends, "--pipeline", "both", "--json", str(out), *FAST]) == 0
    doc = load_json(str(out))
    for r in doc["results"]:
        assert r["correct"], r
        assert r["inference"]["timing"] == "cuda events"
        opt = r["end_to_end_pipelines"]["optimized"]
        assert opt["rel_error"] <= r["tolerance"]
        assert opt["stages"]["h2d"] > 0 and opt["stages"]["inference"] > 0
