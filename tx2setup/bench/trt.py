"""TensorRT fp32/fp16/int8 through an ONNX export and TensorRT's builder.

Written against TensorRT's documented Python API (8.0 - 10.x): OnnxParser,
IBuilderConfig (memory pool limit / flags / INT8 calibrator), build_serialized_network,
Runtime.deserialize_cuda_engine, and execute_async_v3 with tensor addresses (>= 8.5) or
execute_async_v2 with a bindings list (older, JetPack 4.6 ships 8.2). Device memory is
torch CUDA tensors, so no pycuda is needed. Engines are cached in the bench cache keyed by
ONNX hash, TensorRT version, GPU name, precision and batch. TensorRT exists on no machine
of this project's CI or GPU lease, so this module has not been executed there (docs/bench.md).
"""

import hashlib
import os
import re

import torch

from .backends import Backend, cache_dir, cuda_reason, onnx_for
from .errors import BackendUnavailable


def _trt():
    # type: () -> object
    try:
        import tensorrt

        return tensorrt
    except ImportError:
        return None


def engine_path(onnx_path, trt_version, gpu_name, precision, batch):
    # type: (str, str, str, str, int) -> str
    """The cache file for one engine: everything that makes an engine unusable elsewhere is in the key."""
    with open(onnx_path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:16]
    gpu = re.sub(r"[^A-Za-z0-9]+", "_", gpu_name).strip("_") or "gpu"
    name = "%s-trt%s-%s-%s-b%d.engine" % (digest, trt_version, gpu, precision, batch)
    return os.path.join(cache_dir(), name)


class TensorRTBackend(Backend):
    def __init__(self, precision):
        # type: (str) -> None
        super(TensorRTBackend, self).__init__()
        self.name = "trt-" + precision
        self.precision = precision
        self.device = "cuda"
        self.description = "TensorRT %s engine built from the ONNX export" % precision
        self.calib_inputs = []  # type: list  # lists of fp32 CPU tensors (sample frames), for int8
        self._context = None
        self._out = None
        self._bindings = None
        self.engine_file = None

    def check(self, spec):
        # type: (object) -> None
        trt = _trt()
        if trt is None:
            raise BackendUnavailable("TensorRT Python bindings (import tensorrt) not installed")
        reason = cuda_reason()
        if reason:
            raise BackendUnavailable(reason)
        if spec.module is None and spec.onnx_path is None:
            raise BackendUnavailable("no ONNX model")
        if self.precision == "int8" and spec.kind != "z2color" and not self.calib_inputs:
            raise BackendUnavailable("int8 needs calibration frames; only z2color has them")

    def prepare(self, spec):
        # type: (object) -> None
        trt = _trt()
        self.spec = spec
        onnx_path = spec.onnx_path if spec.kind == "onnx" else onnx_for(spec)
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine_file = engine_path(
            onnx_path, trt.__version__, torch.cuda.get_device_name(), self.precision, spec.batch
        )
        if os.path.isfile(self.engine_file):
            with open(self.engine_file, "rb") as fh:
                serialized = fh.read()
        else:
            serialized = self._build(trt, logger, onnx_path)
            tmp = self.engine_file + ".tmp"
            with open(tmp, "wb") as fh:
                fh.write(serialized)
            os.replace(tmp, self.engine_file)
        runtime = trt.Runtime(logger)
        self._engine = runtime.deserialize_cuda_engine(serialized)
        if self._engine is None:
            raise BackendUnavailable("TensorRT could not deserialize %s" % self.engine_file)
        self._context = self._engine.create_execution_context()
        self.inputs = [torch.zeros(s, device="cuda") for s in spec.input_shapes]
        self._bind(trt)
        self.run()
        torch.cuda.synchronize()

    def _build(self, trt, logger, onnx_path):
        # type: (object, object, str) -> bytes
        builder = trt.Builder(logger)
        flags = 0
        if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and int(trt.__version__.split(".")[0]) < 10:
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        with open(onnx_path, "rb") as fh:
            if not parser.parse(fh.read()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise BackendUnavailable("TensorRT could not parse the ONNX export: " + errors)
        config = builder.create_builder_config()
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        else:
            config.max_workspace_size = 1 << 30
        if self.precision in ("fp16", "int8") and builder.platform_has_fast_fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        if self.precision == "int8":
            if not builder.platform_has_fast_int8:
                raise BackendUnavailable("this GPU has no fast INT8")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = _make_calibrator(trt, self.calib_inputs, self.engine_file + ".calib")
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendUnavailable("TensorRT failed to build the %s engine" % self.precision)
        return bytes(serialized)

    def _bind(self, trt):
        # type: (object) -> None
        engine = self._engine
        if hasattr(engine, "num_io_tensors"):  # TensorRT >= 8.5
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            self._out = torch.empty(tuple(engine.get_tensor_shape(outputs[0])), device="cuda")
            for name, tensor in zip(self.spec.input_names, self.inputs):
                self._context.set_tensor_address(name, tensor.data_ptr())
            self._context.set_tensor_address(outputs[0], self._out.data_ptr())
            for extra in outputs[1:]:  # unused outputs still need memory
                t = torch.empty(tuple(engine.get_tensor_shape(extra)), device="cuda")
                self._context.set_tensor_address(extra, t.data_ptr())
                self.inputs.append(t)
            return
        bindings = [0] * engine.num_bindings
        for name, tensor in zip(self.spec.input_names, self.inputs):
            bindings[engine.get_binding_index(name)] = tensor.data_ptr()
        for i in range(engine.num_bindings):
            if not engine.binding_is_input(i):
                t = torch.empty(tuple(engine.get_binding_shape(i)), device="cuda")
                if self._out is None:
                    self._out = t
                bindings[i] = t.data_ptr()
        self._bindings = bindings

    def run(self):
        # type: () -> torch.Tensor
        stream = torch.cuda.current_stream().cuda_stream
        if self._bindings is None:
            self._context.execute_async_v3(stream)
        else:
            self._context.execute_async_v2(self._bindings, stream)
        return self._out


def _make_calibrator(trt, batches, cache_file):
    # type: (object, list, str) -> object
    """An IInt8EntropyCalibrator2 feeding ``batches`` (lists of fp32 CPU tensors) from the GPU."""

    class FrameCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            # type: () -> None
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = list(batches)
            self._device = None  # type: object

        def get_batch_size(self):
            # type: () -> int
            return int(self._batches[0][0].shape[0]) if self._batches else 1

        def get_batch(self, names):
            # type: (list) -> object
            if not self._batches:
                return None
            self._device = [t.cuda().contiguous() for t in self._batches.pop(0)]
            return [t.data_ptr() for t in self._device]

        def read_calibration_cache(self):
            # type: () -> object
            if os.path.isfile(cache_file):
                with open(cache_file, "rb") as fh:
                    return fh.read()
            return None

        def write_calibration_cache(self, cache):
            # type: (object) -> None
            with open(cache_file, "wb") as fh:
                fh.write(bytes(cache))

    return FrameCalibrator()
