"""The on-device acceptance benchmark (Z2Color), self-contained.

This package runs on the boards as ``python3 -m tx2setup.bench`` after only this
directory has been copied there, so it must not import anything else from tx2setup and
must stay Python 3.6 syntax (checked with ``vermin -t=3.6-``). Needs numpy and torch
(>= 1.10); tensorrt, onnxruntime, cv2, gi and rich are used when they import.
"""

__all__ = ["SCHEMA_VERSION", "__version__"]

__version__ = "1.0.0"

# Bump when a field of the --json result changes meaning or disappears (docs/bench.md).
SCHEMA_VERSION = 1
