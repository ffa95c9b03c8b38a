"""What every backend shares: the Backend interface, the cache directory, CUDA detection and the
ONNX export cache. backends.py (torch, onnxruntime) and trt.py (TensorRT) both build on it, so
neither imports the other at module level and there is no import cycle (issue 15).
"""

import os

import torch

from .spec import ONNX_OPSET, export_onnx


def cache_dir():
    # type: () -> str
    """Engines and exported ONNX live outside the repo: $TX2SETUP_CACHE or ~/.cache/tx2setup, /bench."""
    root = os.environ.get("TX2SETUP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tx2setup")
    path = os.path.join(root, "bench")
    os.makedirs(path, exist_ok=True)
    return path


def torch_major():
    # type: () -> int
    return int(torch.__version__.split(".")[0])


def cuda_reason():
    # type: () -> object
    """None when CUDA can be used, else why not."""
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            return "torch %s is a CPU-only build" % torch.__version__
        return "no CUDA device visible to torch"
    return None


class Backend(object):
    name = ""
    precision = "fp32"
    device = "cpu"
    uses_graph = False
    description = ""
    failed = None  # type: object  # why prepare() failed, for the report
    foreign_stream = False  # runs on its own CUDA stream: inputs must be complete before run()

    def __init__(self):
        # type: () -> None
        self.inputs = []  # type: list
        self.spec = None

    def check(self, spec):
        # type: (object) -> None
        """Raise BackendUnavailable(reason) if this backend cannot run ``spec`` here."""

    def prepare(self, spec):
        # type: (object) -> None
        raise NotImplementedError

    def run(self):
        # type: () -> torch.Tensor
        raise NotImplementedError

    @property
    def is_cuda(self):
        # type: () -> bool
        return self.device == "cuda"

    def info(self):
        # type: () -> dict
        return {"backend": self.name, "precision": self.precision, "device": self.device, "graph": self.uses_graph}


def onnx_for(spec):
    # type: (object) -> str
    """The model exported to ONNX once per weights hash, batch and opset, in the cache."""
    name = "%s-%s-b%d-op%d.onnx" % (spec.name, spec.weights_hash[:16], spec.batch, ONNX_OPSET)
    path = os.path.join(cache_dir(), name)
    if not os.path.isfile(path):
        export_onnx(spec, path)
    return path
