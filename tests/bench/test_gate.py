"""The correctness gate (issue 17): measured per-backend tolerances that a 1 % weight error fails,
and end-to-end checks of sampled frames through the whole run, not only the last one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tx2setup.bench import cli
from tx2setup.bench.backends import BACKEND_TOLERANCES, TorchBackend, tolerance_for
from tx2setup.bench.correctness import check_backend
from tx2setup.bench.pipeline import _Runner, run_end_to_end
from tx2setup.bench.report import load_json
from tx2setup.bench.sources import SyntheticZed
from tx2setup.bench.spec import load_spec
from tx2setup.bench.stats import RunPolicy

from .conftest import FAST


def test_measured_tolerances_are_five_times_the_worst_observed():
    for name, (tol, worst, where) in BACKEND_TOLERANCES.items():
        assert tol == pytest.approx(5.0 * worst, rel=0.05), name
        assert where, name  # the measurement is named next to the number
    # a 1 % error of ip2's weights moves Z2Color's output by about 5e-3 (measured below):
    # every measured tolerance must fail it
    assert max(t for t, _, _ in BACKEND_TOLERANCES.values()) < 4e-3


def test_user_models_keep_the_per_precision_bound():
    fp16 = TorchBackend("cuda-fp16-graph", precision="fp16")
    assert tolerance_for(fp16) == BACKEND_TOLERANCES["cuda-fp16-graph"][0]
    user = load_spec("z2color")
    user.kind = "torchscript"  # never measured: the loose per-precision bound
    assert tolerance_for(fp16, user) == 2e-2


def _cpu_fp16(spec):
    """fp16 arithmetic on the CPU: the same rounding of weights and activations as a GPU fp16 backend."""
    b = TorchBackend("cpu-fp16-emulated", device="cpu", precision="fp16")
    b.prepare(spec)
    return b


@pytest.mark.parametrize("perturb", ["ip2_x1.01", "all_1pct_noise"])
def test_a_one_percent_weight_error_fails_an_fp16_backend(perturb):
    spec = load_spec("z2color", seed=3)
    tol = tolerance_for(TorchBackend("cuda-fp16-graph", precision="fp16"))
    b = _cpu_fp16(spec)
    ok = check_backend(b, spec, seed=21, tolerance=tol)
    assert ok["correct"], ok  # unperturbed fp16 passes the gate
    with torch.no_grad():
        gen = torch.Generator().manual_seed(5)
        for name, p in b.module.named_parameters():
            if perturb == "ip2_x1.01" and name == "ip2.weight":
                p.mul_(1.01)
            elif perturb == "all_1pct_noise":
                p.mul_(1.0 + 0.01 * torch.randn(p.shape, generator=gen).to(p.dtype))
    bad = check_backend(b, spec, seed=21, tolerance=tol)
    assert not bad["correct"], bad
    assert bad["max_rel_error"] > 1.5 * tol  # not a coin toss at the edge


def test_sampled_frames_spread_over_the_run():
    due = [i for i in range(1, 40000) if _Runner.sample_due(i)]
    assert due[:4] == [1, 2, 4, 8] and 2048 in due
    assert [d for d in due if d > 2048] == [8192, 16384, 24576, 32768]


class OneBadFrame(TorchBackend):
    """Correct except on the 4th run of its end-to-end loop (a fault mid-run: the last frame is right)."""

    def __init__(self):
        super().__init__("cpu-fp32", device="cpu")
        self.calls = -(10**9)  # armed by the end-to-end loop only

    def run(self):
        self.calls += 1
        out = super().run()
        return out * 1.05 if self.calls == 4 else out


def test_a_fault_in_a_sampled_frame_mid_run_fails_the_pipeline_check(tmp_path, monkeypatch):
    # the CPU loop's 4th run is frame 4, a sampled one; the run goes on for 56 more frames,
    # the last ones all correct: a check of the last frame alone passed this backend
    from tx2setup.bench import pipeline

    real = pipeline.run_end_to_end

    def armed(backend, *a, **k):
        backend.calls = 0
        return real(backend, *a, **k)

    monkeypatch.setattr(pipeline, "run_end_to_end", armed)
    monkeypatch.setattr(cli, "all_backends", lambda mode: [OneBadFrame()])
    out = tmp_path / "r.json"
    argv = ["--backends", "cpu-fp32", "--json", str(out), "--min-iters", "60", *FAST[4:]]
    assert cli.main(["--warmup", "0", "--min-duration", "0", *argv]) == 1
    r = load_json(str(out))["results"][0]
    assert not r["correct"] and "optimized pipeline" in r["pipeline_error"]
    opt = r["end_to_end_pipelines"]["optimized"]
    assert opt["checked_frames"] >= 7  # 1, 2, 4, ..., 64 and the last
    assert opt["rel_error"] == pytest.approx(0.05, rel=1e-2)


def test_every_probe_is_a_copy_of_its_frames():
    spec = load_spec("z2color")
    b = TorchBackend("cpu-fp32", device="cpu")
    b.prepare(spec)
    res = run_end_to_end(b, SyntheticZed(seed=1), "optimized", RunPolicy(0.0, 20, 0.0))
    probes = res["probes"]
    assert len(probes) >= 5
    firsts = [p[1] for p in probes]
    # distinct frames, not views of one recycled buffer
    assert any(not np.array_equal(firsts[0], f) for f in firsts[1:])
    assert all(f.base is None or f.base.base is None for f in firsts)
