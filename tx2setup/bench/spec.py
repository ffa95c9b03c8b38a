"""What is benchmarked: z2color or a user's TorchScript/ONNX model, its inputs and its fp32 reference."""

import hashlib
import io
import os

import numpy as np
import torch

from . import model as z2
from .errors import BenchUsageError


class ModelSpec(object):
    """A model plus the shapes of its inputs (batch first) and a float64/fp32 reference."""

    def __init__(self, kind, name, input_names, input_shapes, module=None, onnx_path=None, weights_hash=""):
        # type: (str, str, list, list, object, object, str) -> None
        self.kind = kind  # "z2color" | "torchscript" | "onnx"
        self.name = name
        self.input_names = list(input_names)
        self.input_shapes = [tuple(s) for s in input_shapes]
        self.module = module  # fp32 torch module on the CPU (None for ONNX)
        self.onnx_path = onnx_path  # the user's ONNX file (None until exported for others)
        self.weights_hash = weights_hash
        self._ort_ref = None
        self._dtypes = None  # type: object

    @property
    def input_dtypes(self):
        # type: () -> list
        """numpy dtype names of the inputs: an ONNX file's own (e.g. uint8 when the model does its
        preprocessing), float32 for z2color and TorchScript (whose forward has no declared dtype)."""
        if self._dtypes is None:
            self._dtypes = ["float32"] * len(self.input_names)
            if self.kind == "onnx":
                self._dtypes = onnx_input_dtypes(self.onnx_path, self.input_names)
        return list(self._dtypes)

    def torch_dtypes(self):
        # type: () -> list
        return [TORCH_DTYPES.get(d, torch.float32) for d in self.input_dtypes]

    @property
    def batch(self):
        # type: () -> int
        return int(self.input_shapes[0][0])

    @property
    def is_z2color(self):
        # type: () -> bool
        return self.kind == "z2color"

    def random_inputs(self, gen):
        # type: (torch.Generator) -> list
        """Fresh fp32 CPU inputs. For z2color these come from random uint8 camera frames."""
        if self.is_z2color:
            raw = torch.randint(0, 256, (self.batch, z2.RAW_CHANNELS, z2.FRAME_H, z2.FRAME_W), generator=gen)
            x = z2.preprocess(raw.to(torch.uint8))
            return [x, z2.random_meta(self.batch, gen)]
        out = []
        for shape, dtype in zip(self.input_shapes, self.input_dtypes):
            if dtype == "uint8":  # raw pixels: the whole 0-255 range
                out.append(torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8))
            else:
                out.append(torch.randn(shape, generator=gen).to(TORCH_DTYPES.get(dtype, torch.float32)))
        return out

    def reference(self, inputs):
        # type: (list) -> np.ndarray
        """The fp32 model's output computed in float64 on the CPU (ONNX: onnxruntime CPU, fp32)."""
        if self.module is not None:
            with torch.no_grad():
                ref = self.module.double()(*[t.double() for t in inputs])
                self.module.float()
            return first_output(ref).numpy()
        if self._ort_ref is None:
            import onnxruntime as ort

            self._ort_ref = ort.InferenceSession(self.onnx_path, providers=["CPUExecutionProvider"])
        # a sampled pipeline input comes back as float32; the model takes its own dtype (uint8
        # values are whole numbers, so the cast is exact)
        feeds = dict(
            (n, np.asarray(t.numpy(), dtype=d)) for n, t, d in zip(self.input_names, inputs, self.input_dtypes)
        )
        return np.asarray(self._ort_ref.run(None, feeds)[0], dtype=np.float64)


TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "uint8": torch.uint8}
# onnxruntime's NodeArg.type strings -> numpy dtype names, as onnxruntime's own TypeHelper maps
# them (microsoft/onnxruntime, onnxruntime/python/tools/transformers/io_binding_helper.py:
# "tensor(float)": numpy.float32, "tensor(float16)": numpy.float16, "tensor(uint8)": numpy.uint8)
ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


def onnx_input_dtypes(path, names):
    # type: (str, list) -> list
    """The ONNX model's input dtypes for ``names`` (float32 when onnxruntime cannot read it here;
    modelcard.model_inputs reports an unreadable file). Another type is a usage error."""
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception:  # ImportError, or a file modelcard.check_model refuses with one line
        return ["float32"] * len(names)
    types = dict((i.name, i.type) for i in sess.get_inputs())
    out = []
    for name in names:
        t = types.get(name, "tensor(float)")
        if t not in ORT_TYPES:
            raise BenchUsageError(
                "--model %s: input %r is %s; the benchmark feeds float, float16 or uint8"
                % (os.path.basename(path), name, t)
            )
        out.append(ORT_TYPES[t])
    return out


def first_output(out):
    # type: (object) -> torch.Tensor
    """Models may return a tuple/list; the benchmark compares the first output."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def parse_shape(text):
    # type: (str) -> tuple
    """``name=1x12x94x168`` (or ``1,12,94,168``) -> (name, shape)."""
    name, sep, dims = text.partition("=")
    if not sep or not name:
        raise BenchUsageError("--input-shape %r: expected NAME=DxDxD (e.g. x=1x3x224x224)" % text)
    try:
        shape = tuple(int(d) for d in dims.replace(",", "x").split("x"))
    except ValueError:
        raise BenchUsageError("--input-shape %r: dimensions must be integers" % text) from None
    if not shape or any(d <= 0 for d in shape):
        raise BenchUsageError("--input-shape %r: dimensions must be positive" % text)
    return name, shape


def _hash_state(module):
    # type: (torch.nn.Module) -> str
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_spec(model, batch=1, seed=0, weights=None, input_shapes=None):
    # type: (str, int, int, object, object) -> ModelSpec
    """z2color (seeded or --weights) or a user's .pt/.ts (TorchScript) / .onnx with --input-shape."""
    if batch < 1:
        raise BenchUsageError("--batch must be >= 1")
    if model == "z2color":
        if input_shapes:
            raise BenchUsageError("--input-shape is only for your own model; z2color's shapes are fixed")
        if weights is not None and not os.path.isfile(str(weights)):
            raise BenchUsageError("--weights %s: no such file" % weights)
        try:
            module = z2.build_z2color(seed=seed, weights=weights)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise BenchUsageError(
                "--weights %s: not a Z2Color state dict (%s)" % (weights, str(exc).splitlines()[0])
            ) from None
        shapes = [
            (batch, z2.RAW_CHANNELS, z2.NET_H, z2.NET_W),
            (batch, z2.META_PLANES, z2.META_H, z2.META_W),
        ]
        return ModelSpec("z2color", "z2color", ["x", "meta"], shapes, module=module, weights_hash=_hash_state(module))
    if weights is not None:
        raise BenchUsageError("--weights is only for z2color; a TorchScript/ONNX file holds its own")
    if not os.path.isfile(model):
        raise BenchUsageError("--model %s: not 'z2color' and no such file" % model)
    if not input_shapes:
        raise BenchUsageError("--model %s: give its inputs with --input-shape NAME=DxD..." % model)
    parsed = [parse_shape(s) for s in input_shapes]
    names = [n for n, _ in parsed]
    shapes = [s for _, s in parsed]
    with open(model, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    if model.endswith(".onnx"):
        return ModelSpec(
            "onnx", os.path.basename(model), names, shapes, onnx_path=os.path.abspath(model), weights_hash=digest
        )
    try:
        module = torch.jit.load(model, map_location="cpu").eval()
    except (RuntimeError, ValueError) as exc:
        raise BenchUsageError("--model %s: not a TorchScript file (%s)" % (model, str(exc).splitlines()[0])) from None
    return ModelSpec("torchscript", os.path.basename(model), names, shapes, module=module, weights_hash=digest)


# torch 1.10 (JetPack 4.6, the TX2) exports up to opset 14 and TensorRT 8.2's parser takes
# up to about 13; Z2Color needs only Conv, Relu, MaxPool, Concat, Reshape and Gemm.
ONNX_OPSET = 13


def export_onnx(spec, path, opset=ONNX_OPSET):
    # type: (ModelSpec, str, int) -> str
    """Export the torch model to ONNX (fixed batch) with the TorchScript-based exporter."""
    if spec.onnx_path is not None and spec.kind == "onnx":
        return spec.onnx_path
    example = [torch.zeros(s) for s in spec.input_shapes]
    kwargs = {"input_names": spec.input_names, "output_names": ["out"], "opset_version": opset}
    import inspect

    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: same graph on torch 1.10 (boards) and 2.x
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(spec.module, tuple(example), buf, **kwargs)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)
    return path
