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

from .backend_base import Backend, cache_dir, cuda_reason, onnx_for
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


def precision_reason(trt, precision, gpu_name):
    # type: (object, str, str) -> object
    """Why this GPU cannot run ``precision`` fast (None if it can).

    Without the check TensorRT silently builds fp32 kernels for an fp16/int8 request on a GPU
    without fast paths (the TX2's sm_62 has fast fp16 but no fast int8), and the result would
    be labelled with a precision it does not have.
    """
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    # TensorRT 10 deprecates these properties; where one is missing, assume the fast path exists
    if not getattr(builder, "platform_has_fast_fp16", True):
        return "%s has no fast fp16 (builder.platform_has_fast_fp16 is False)" % gpu_name
    if precision == "int8" and not getattr(builder, "platform_has_fast_int8", True):
        return "%s has no fast int8 (builder.platform_has_fast_int8 is False)" % gpu_name
    return None


def dynamic_inputs(network):
    # type: (object) -> list
    """Names of the network's inputs with a dynamic (-1) dimension."""
    out = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if any(int(d) < 0 for d in tuple(tensor.shape)):
            out.append(tensor.name)
    return out


def assemble_calibration(samples, batch):
    # type: (list, int) -> list
    """Batch-1 samples (lists of tensors, one per input) -> batches of ``batch`` samples.

    The calibrator must feed batches of the engine's batch size; a remainder that does not
    fill a batch is dropped.
    """
    out = []
    for start in range(0, len(samples) - batch + 1, batch):
        group = samples[start : start + batch]
        out.append([torch.cat([s[i] for s in group], 0) for i in range(len(group[0]))])
    return out


class CalibrationFeeder(object):
    """The calibrator's logic without TensorRT: batches in, device pointers out in ``names`` order."""

    def __init__(self, batches, input_names, to_device):
        # type: (list, list, object) -> None
        self._batches = list(batches)
        self._names = list(input_names)
        self._to_device = to_device
        self._held = []  # type: list  # keeps the device copies alive until the next batch
        self.batch_size = int(self._batches[0][0].shape[0]) if self._batches else 1

    def next_pointers(self, names):
        # type: (list) -> object
        if not self._batches:
            return None
        batch = self._batches.pop(0)
        by_name = dict(zip(self._names, batch))
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError("calibration has no input named %s" % ", ".join(missing))
        self._held = [self._to_device(by_name[n]).contiguous() for n in names]
        return [t.data_ptr() for t in self._held]


class TensorRTBackend(Backend):
    def __init__(self, precision):
        # type: (str) -> None
        super(TensorRTBackend, self).__init__()
        self.name = "trt-" + precision
        self.precision = precision
        self.device = "cuda"
        self.description = "TensorRT %s engine built from the ONNX export" % precision
        self.calib_inputs = []  # type: list  # batch-1 samples (lists of fp32 CPU tensors), for int8
        self._context = None
        self._out = None
        self._bindings = None
        self._extra = []  # type: list  # memory of outputs the benchmark does not read
        self._stream = None  # type: object
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
        if spec.input_dtypes != ["float32"] * len(spec.input_names):
            # the bindings below allocate float32 buffers; other input types are not wired up
            raise BackendUnavailable(
                "%s inputs: the TensorRT bindings here feed float32 only" % "/".join(sorted(set(spec.input_dtypes)))
            )
        if self.precision == "int8" and spec.kind != "z2color" and not self.calib_inputs:
            raise BackendUnavailable("int8 needs calibration frames; only z2color has them")
        if self.precision in ("fp16", "int8"):
            reason = precision_reason(trt, self.precision, torch.cuda.get_device_name())
            if reason:
                raise BackendUnavailable(reason)

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
        self._stream = torch.cuda.Stream()
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
        dynamic = dynamic_inputs(network)
        if dynamic:
            # a user's ONNX model with dynamic dims: one profile fixed at the declared shapes
            shapes = dict(zip(self.spec.input_names, self.spec.input_shapes))
            profile = builder.create_optimization_profile()
            for name in dynamic:
                if name not in shapes:
                    raise BackendUnavailable("input %s has dynamic dims; declare it with --input-shape" % name)
                profile.set_shape(name, shapes[name], shapes[name], shapes[name])
            config.add_optimization_profile(profile)
            if self.precision == "int8" and hasattr(config, "set_calibration_profile"):
                config.set_calibration_profile(profile)
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
        else:
            config.max_workspace_size = 1 << 30
        reason = precision_reason(trt, self.precision, torch.cuda.get_device_name())
        if self.precision != "fp32" and reason:
            raise BackendUnavailable(reason)  # check() already said so; never build fp32 under its label
        if self.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if self.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            batches = assemble_calibration(self.calib_inputs, self.spec.batch)
            if not batches:
                raise BackendUnavailable("int8: fewer calibration frames than one batch of %d" % self.spec.batch)
            feeder = CalibrationFeeder(batches, self.spec.input_names, lambda t: t.cuda())
            config.int8_calibrator = _make_calibrator(trt, feeder, self.engine_file + ".calib")
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendUnavailable("TensorRT failed to build the %s engine" % self.precision)
        return bytes(serialized)

    def _bind(self, trt):
        # type: (object) -> None
        engine = self._engine
        ctx = self._context
        if hasattr(engine, "num_io_tensors"):  # TensorRT >= 8.5
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
            for name, tensor in zip(self.spec.input_names, self.inputs):
                # dynamic dims (a profile was built) need the actual shape before outputs resolve
                if any(int(d) < 0 for d in tuple(engine.get_tensor_shape(name))):
                    ctx.set_input_shape(name, tuple(tensor.shape))
                ctx.set_tensor_address(name, tensor.data_ptr())
            self._out = torch.empty(tuple(ctx.get_tensor_shape(outputs[0])), device="cuda")
            ctx.set_tensor_address(outputs[0], self._out.data_ptr())
            for extra in outputs[1:]:  # unused outputs still need memory
                t = torch.empty(tuple(ctx.get_tensor_shape(extra)), device="cuda")
                ctx.set_tensor_address(extra, t.data_ptr())
                self._extra.append(t)
            return
        bindings = [0] * engine.num_bindings
        for name, tensor in zip(self.spec.input_names, self.inputs):
            index = engine.get_binding_index(name)
            if any(int(d) < 0 for d in tuple(engine.get_binding_shape(index))):
                ctx.set_binding_shape(index, tuple(tensor.shape))
            bindings[index] = tensor.data_ptr()
        for i in range(engine.num_bindings):
            if not engine.binding_is_input(i):
                t = torch.empty(tuple(ctx.get_binding_shape(i)), device="cuda")
                if self._out is None:
                    self._out = t
                else:
                    self._extra.append(t)
                bindings[i] = t.data_ptr()
        self._bindings = bindings

    def run(self):
        # type: () -> torch.Tensor
        # TensorRT on its own stream (not the legacy default stream, which synchronises with
        # every other stream), ordered after and before the caller's stream by events.
        caller = torch.cuda.current_stream()
        self._stream.wait_stream(caller)
        handle = self._stream.cuda_stream
        if self._bindings is None:
            self._context.execute_async_v3(handle)
        else:
            self._context.execute_async_v2(self._bindings, handle)
        caller.wait_stream(self._stream)
        return self._out


def _make_calibrator(trt, feeder, cache_file):
    # type: (object, CalibrationFeeder, str) -> object
    """An IInt8EntropyCalibrator2 feeding the ``feeder``'s batches from the GPU."""

    class FrameCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            # type: () -> None
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            # type: () -> int
            return feeder.batch_size

        def get_batch(self, names):
            # type: (list) -> object
            return feeder.next_pointers(list(names))

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
