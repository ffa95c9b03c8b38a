"""Every backend against the fp32 model (evaluated in float64) on fresh random inputs."""

import math

import numpy as np
import torch

from . import model as z2
from .backends import tolerance_for


def rel_error(out, ref):
    # type: (np.ndarray, np.ndarray) -> float
    """||out - ref|| / ||ref||; inf for a shape mismatch or any NaN/inf (in the output or the reference).

    Never NaN: ``max(worst, nan)`` keeps ``worst``, so a NaN here would pass a backend.
    """
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape or not np.all(np.isfinite(out)) or not np.all(np.isfinite(ref)):
        return float("inf")
    denom = float(np.linalg.norm(ref))
    err = float(np.linalg.norm(out - ref))
    return err / denom if denom > 0 else err


def _sync(backend):
    # type: (object) -> None
    if backend.is_cuda:
        torch.cuda.synchronize()


def check_backend(backend, spec, seed, trials=3, tolerance=None):
    # type: (object, object, int, int, object) -> dict
    """Fill the backend's inputs with ``trials`` fresh draws and compare each output with the reference.

    The inputs of the last draw stay in the backend's buffers, so the timing that follows
    never runs on zeros.
    """
    tol = tolerance_for(backend, spec) if tolerance is None else tolerance
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(trials):
        inputs = spec.random_inputs(gen)
        ref = spec.reference(inputs)
        for buf, x in zip(backend.inputs, inputs):
            buf.copy_(x)
        out = backend.run()
        _sync(backend)
        got = out.detach().float().cpu().numpy()
        err = rel_error(got, ref)
        worst = max(worst, err)
    return {
        "max_rel_error": worst if math.isfinite(worst) else None,
        "tolerance": tol,
        "trials": trials,
        "seed": seed,
        "correct": bool(math.isfinite(worst) and worst <= tol),
    }


def check_pipeline(spec, probes, meta_mode="direct"):
    # type: (object, object, str) -> object
    """Recompute the pipeline's sampled frames on the CPU from their raw frames.

    ``probes``: a list of (previous pair, current pair, host output), one per sampled frame
    (pipeline.py samples frames through the whole run, not only the last). Returns
    (worst relative error, frames checked), or None when there is nothing to check.
    """
    if not probes or spec.module is None:
        return None
    if isinstance(probes, tuple):  # one probe
        probes = [probes]
    worst = 0.0
    meta = z2.metadata(1, meta_mode)
    for prev, cur, out in probes:
        raw = z2.stack_hwc(torch.from_numpy(np.asarray(prev)), torch.from_numpy(np.asarray(cur)))
        ref = spec.reference([z2.preprocess(raw), meta])
        worst = max(worst, rel_error(out, ref))
    return worst, len(probes)
