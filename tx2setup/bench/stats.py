"""Latency statistics and the measurement loop (trtexec / MLPerf SingleStream style).

Warm-up is time based; the timed run goes on until both a minimum iteration count and
a minimum duration are met. Latencies are in milliseconds.
"""

import math
import time

# The run is called unstable when the slowest 1% are this much slower than the median, or
# the spread between p90 and the median is this large a fraction of the median.
UNSTABLE_P99_OVER_MEDIAN = 2.0
UNSTABLE_P90_SPREAD = 0.25


def percentile(sorted_values, q):
    # type: (list, float) -> float
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo]) + (float(sorted_values[hi]) - float(sorted_values[lo])) * frac


def summarize(latencies_ms, wall_s=None):
    # type: (list, object) -> dict
    """median/mean/p90/p99/min/max in ms, FPS, and an instability verdict.

    FPS is iterations over host wall time when ``wall_s`` is given (throughput, as trtexec
    reports it), else 1000 / mean latency.
    """
    values = sorted(float(v) for v in latencies_ms)
    n = len(values)
    if n == 0:
        raise ValueError("no latencies to summarise")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    median = percentile(values, 50)
    p90 = percentile(values, 90)
    p99 = percentile(values, 99)
    fps = (n / wall_s) if wall_s else (1000.0 / mean if mean > 0 else float("inf"))
    reasons = []
    if median > 0 and p99 > UNSTABLE_P99_OVER_MEDIAN * median:
        reasons.append("p99 is %.1fx the median" % (p99 / median))
    if median > 0 and (p90 - median) > UNSTABLE_P90_SPREAD * median:
        reasons.append("p90 is %.0f%% above the median" % (100.0 * (p90 - median) / median))
    return {
        "iterations": n,
        "wall_s": wall_s,
        "median_ms": median,
        "mean_ms": mean,
        "stdev_ms": math.sqrt(var),
        "p90_ms": p90,
        "p99_ms": p99,
        "min_ms": values[0],
        "max_ms": values[-1],
        "fps": fps,
        "unstable": bool(reasons),
        "unstable_reasons": reasons,
    }


class RunPolicy(object):
    """How long to warm up and to measure."""

    def __init__(self, warmup_s=0.5, min_iters=100, min_duration_s=3.0, max_iters=10000000):
        # type: (float, int, float, int) -> None
        if warmup_s < 0 or min_iters < 1 or min_duration_s < 0:
            raise ValueError("warm-up and duration must be >= 0 and min iterations >= 1")
        self.warmup_s = warmup_s
        self.min_iters = min_iters
        self.min_duration_s = min_duration_s
        self.max_iters = max_iters

    def as_dict(self):
        # type: () -> dict
        return {"warmup_s": self.warmup_s, "min_iters": self.min_iters, "min_duration_s": self.min_duration_s}


def run_timed(step, policy, clock=time.perf_counter):
    # type: (object, RunPolicy, object) -> tuple
    """Warm up for ``policy.warmup_s``, then call ``step()`` until min iters AND min duration.

    ``step()`` does one synchronised iteration and returns its latency in ms, or None to
    have the host clock (around the call) used. Returns (latencies_ms, wall_s, warmup_iters).
    """
    warm_iters = 0
    start = clock()
    while clock() - start < policy.warmup_s or warm_iters == 0:
        step()
        warm_iters += 1
    latencies = []
    start = clock()
    now = start
    while len(latencies) < policy.max_iters and (
        len(latencies) < policy.min_iters or now - start < policy.min_duration_s
    ):
        t0 = clock()
        measured = step()
        now = clock()
        latencies.append(measured if measured is not None else (now - t0) * 1000.0)
    return latencies, now - start, warm_iters
