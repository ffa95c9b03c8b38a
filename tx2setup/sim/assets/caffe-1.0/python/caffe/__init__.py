"""STAND-IN (tx2setup sim) for pycaffe: the package reports the version Caffe was built as.

As with the real pycaffe, it imports only after `make pycaffe` (which writes _caffe).
"""

from ._caffe import __version__, cuda_arch  # type: ignore[import-not-found]  # noqa: F401
