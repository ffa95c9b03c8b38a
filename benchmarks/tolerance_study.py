"""Each backend's error distribution against the float64 reference: the measurement behind the
per-backend tolerances in tx2setup/bench/backends.py (BACKEND_TOLERANCES = 5x the worst).

For every available backend: ``--weight-seeds`` seeded Z2Color weight sets x ``--draws`` fresh
random inputs each (random uint8 ZED frames, preprocessed; random metadata planes), the
relative error ||out - ref|| / ||ref|| of each draw. Then, as the gate's negative control,
the same backend with its weights off by 1 %: ip2's weights scaled by 1.01, and every weight
times (1 + 0.01 N(0, 1)); both must come out far above the tolerance.

Torch backends are prepared once (graphs captured, torch.compile run once); each new weight
set is copied into the prepared module in place, so the captured graph reads it. onnxruntime
is prepared per weight set (the weights are in the exported file). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from tx2setup.bench.backends import BACKEND_TOLERANCES, TorchBackend, all_backends, detect, tolerance_for
from tx2setup.bench.correctness import rel_error
from tx2setup.bench.spec import load_spec

DEFAULT_BACKENDS = (
    "cpu-fp32,cuda-fp32,cuda-fp16,cuda-fp16-cl,cuda-fp32-graph,cuda-fp16-graph,compile-fp16-graph,ort-cpu"
)


def _load_weights(backend: Any, spec: Any) -> None:
    """The new weights into the prepared backend (in place for torch: graphs read by address)."""
    if isinstance(backend, TorchBackend):
        with torch.no_grad():
            for dst, src in zip(backend.module.parameters(), spec.module.parameters(), strict=True):
                dst.copy_(src)
    else:
        backend.prepare(spec)


def _errors(backend: Any, spec: Any, gen: torch.Generator, draws: int) -> list[float]:
    errs = []
    for _ in range(draws):
        inputs = spec.random_inputs(gen)
        ref = spec.reference(inputs)
        for buf, x in zip(backend.inputs, inputs, strict=False):
            buf.copy_(x)
        out = backend.run()
        if backend.is_cuda:
            torch.cuda.synchronize()
        errs.append(rel_error(out.detach().float().cpu().numpy(), ref))
    return errs


def _perturbed(backend: Any, spec: Any, gen: torch.Generator, draws: int) -> dict[str, float]:
    """Worst error with ip2 x 1.01, and with every weight x (1 + 0.01 N(0,1)); weights restored after."""
    if not isinstance(backend, TorchBackend):
        return {}
    out = {}
    params = dict(backend.module.named_parameters())
    saved = {k: v.detach().clone() for k, v in params.items()}
    noise_gen = torch.Generator().manual_seed(99)
    for label in ("ip2_x1.01", "all_1pct_noise"):
        with torch.no_grad():
            for k, v in params.items():
                if label == "ip2_x1.01" and k == "ip2.weight":
                    v.mul_(1.01)
                elif label == "all_1pct_noise":
                    n = torch.randn(v.shape, generator=noise_gen).to(v.device, v.dtype)
                    v.mul_(1.0 + 0.01 * n)
        out[label] = max(_errors(backend, spec, gen, draws))
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(saved[k])
    return out


def study(names: str, weight_seeds: int, draws: int) -> dict[str, Any]:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    specs = [load_spec("z2color", 1, ws) for ws in range(weight_seeds)]
    wanted = set(names.split(","))
    found = detect([b for b in all_backends() if b.name in wanted], specs[0])
    rows: dict[str, Any] = {}
    for backend, reason in found:
        if reason is not None:
            rows[backend.name] = {"unavailable": reason}
            continue
        t0 = time.perf_counter()
        errs: list[float] = []
        gen = torch.Generator().manual_seed(2026)
        try:
            backend.prepare(specs[0])
            for spec in specs:
                _load_weights(backend, spec)
                errs += _errors(backend, spec, gen, draws)
            perturbed = _perturbed(backend, specs[-1], gen, 2)
        except Exception as exc:  # reported; the other backends still run
            rows[backend.name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        worst = max(errs)
        rows[backend.name] = {
            "precision": backend.precision,
            "draws": len(errs),
            "errors": errs,
            "worst": worst,
            "median": statistics.median(errs),
            "five_x_worst": 5.0 * worst,
            "tolerance_in_code": tolerance_for(backend),
            "code_entry": BACKEND_TOLERANCES.get(backend.name),
            "perturbed_worst": perturbed,
            "seconds": time.perf_counter() - t0,
        }
        backend.inputs = []
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default=DEFAULT_BACKENDS)
    p.add_argument("--weight-seeds", type=int, default=5)
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = study(a.backends, a.weight_seeds, a.draws)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu only"
    print(f"tolerance study on {device}: {a.weight_seeds} weight seeds x {a.draws} draws per backend")
    print(
        f"{'backend':20} {'n':>3} {'median':>9} {'worst':>9} {'5x worst':>9} {'in code':>9} "
        f"{'ip2x1.01':>9} {'1% noise':>9}"
    )
    for name, r in rows.items():
        if "worst" not in r:
            print(f"{name:20} {r.get('unavailable') or r.get('error')}")
            continue
        pert = r["perturbed_worst"]
        print(
            f"{name:20} {r['draws']:>3} {r['median']:9.2e} {r['worst']:9.2e} {r['five_x_worst']:9.2e} "
            f"{r['tolerance_in_code']:9.2e} {pert.get('ip2_x1.01', float('nan')):9.2e} "
            f"{pert.get('all_1pct_noise', float('nan')):9.2e}"
        )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"device": device, "torch": torch.__version__, "backends": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
