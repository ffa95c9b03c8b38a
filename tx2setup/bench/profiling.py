"""--profile: a chrome/perfetto trace through torch.profiler with named module and stage ranges."""

import torch

from .pipeline import run_end_to_end
from .stats import RunPolicy


def _module_ranges(module, prefix):
    # type: (torch.nn.Module, str) -> list
    """Forward hooks opening/closing a record_function range per named submodule."""
    handles = []
    for name, sub in module.named_children():
        label = "%s.%s" % (prefix, name)
        stack = []  # type: list

        def pre(_m, _inp, label=label, stack=stack):
            # type: (object, object, str, list) -> None
            rf = torch.autograd.profiler.record_function(label)
            rf.__enter__()
            stack.append(rf)

        def post(_m, _inp, _out, stack=stack):
            # type: (object, object, object, list) -> None
            stack.pop().__exit__(None, None, None)

        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))
    return handles


def write_profile(path, backend, eager_backend, source, pipeline, frames=20):
    # type: (str, object, object, object, str, int) -> None
    """Trace ``frames`` end-to-end steps of ``backend`` and a few eager forwards of the model.

    Graph replays hide the modules, so the module ranges come from ``eager_backend`` (the same
    device, not a graph) when one is given.
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if backend.is_cuda:
        activities.append(ProfilerActivity.CUDA)
    policy = RunPolicy(warmup_s=0.0, min_iters=frames, min_duration_s=0.0)
    handles = []
    module = getattr(eager_backend, "module", None) if eager_backend is not None else None
    if module is not None:
        handles = _module_ranges(module, "z2color" if hasattr(module, "conv1") else "model")
    try:
        with profile(activities=activities) as prof:
            with torch.autograd.profiler.record_function("bench.end_to_end." + pipeline):
                run_end_to_end(backend, source, pipeline, policy, profile=True)
            if eager_backend is not None:
                with torch.autograd.profiler.record_function("bench.inference.eager"):
                    for _ in range(3):
                        eager_backend.run()
                    if eager_backend.is_cuda:
                        torch.cuda.synchronize()
        prof.export_chrome_trace(path)
    finally:
        for h in handles:
            h.remove()
