from __future__ import annotations

import numpy as np
import pytest

from tx2setup.bench.stats import RunPolicy, percentile, run_timed, summarize


@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(q):
    values = sorted(np.random.default_rng(0).exponential(size=137).tolist())
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_summary_numbers():
    lat = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = summarize(lat, wall_s=0.5)
    assert s["median_ms"] == 3.0
    assert s["mean_ms"] == 4.0
    assert s["min_ms"] == 1.0 and s["max_ms"] == 10.0
    assert s["p90_ms"] == pytest.approx(7.6)
    assert s["fps"] == pytest.approx(10.0)  # 5 iterations over 0.5 s of wall time
    assert summarize(lat)["fps"] == pytest.approx(250.0)  # no wall time: 1000 / mean


def test_instability_warning():
    steady = summarize([1.0] * 99 + [1.05])
    assert not steady["unstable"]
    spiky = summarize([1.0] * 95 + [5.0] * 5)
    assert spiky["unstable"] and "p99" in spiky["unstable_reasons"][0]


class FakeClock:
    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def test_run_needs_both_min_iterations_and_min_duration():
    # each clock read advances 1 ms: a step is ~2 reads; duration dominates here
    lat, wall, warm = run_timed(lambda: 0.5, RunPolicy(0.01, 10, 0.2), clock=FakeClock(0.001))
    assert warm >= 1
    assert len(lat) >= 10 and wall >= 0.2
    assert len(lat) < 110  # stopped soon after both were met
    # iterations dominate
    lat, wall, _ = run_timed(lambda: None, RunPolicy(0.0, 50, 0.001), clock=FakeClock(0.001))
    assert len(lat) == 50
    assert lat[0] == pytest.approx(1.0)  # host clock used when the step returns None


def test_bad_policy_is_rejected():
    with pytest.raises(ValueError):
        RunPolicy(min_iters=0)
