"""CUDA-graph capture that a garbage collection cannot spoil."""

import contextlib
import gc

import torch


@contextlib.contextmanager
def capturing(graph, stream=None):
    # type: (torch.cuda.CUDAGraph, object) -> object
    """``torch.cuda.graph(graph, stream=stream)`` with the garbage collector off during capture.

    Recent torch no longer collects garbage before a capture (only with
    ``torch.compiler.config.force_cudagraph_gc``). A CUDAGraph of an earlier run left in a
    reference cycle can then be collected in the middle of this capture: its reset is not
    allowed while a stream captures, and it invalidates the capture (seen on an H200 in the
    third in-process repeat of benchmarks/gpu_bench.py: CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH,
    then cudaErrorStreamCaptureInvalidated). So: collect first, then keep the collector off
    until the capture ends.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if stream is None:
            with torch.cuda.graph(graph):
                yield
        else:
            with torch.cuda.graph(graph, stream=stream):
                yield
    finally:
        if was_enabled:
            gc.enable()
