"""A user model's contract: what its input wants and what its output means (docs/bench.md).

Given by flags (``--input-shape`` plus ``--output``) or by a YAML model card
(``--model-card F.yaml``)::

    input:
      name: images          # the model's input (ONNX input name / TorchScript argument)
      size: [320, 320]      # height, width
      layout: NCHW          # or NHWC
      dtype: float32        # float32 | float16 | uint8
      channel_order: rgb    # or bgr
      scale: 0.00392156862745098   # pixel * scale, then (x - mean) / std
      mean: [0.0, 0.0, 0.0]
      std: [1.0, 1.0, 1.0]
      resize: letterbox     # or plain
    output:
      kind: yolo            # none | argmax | topk:K | yolo
      conf_threshold: 0.25
      iou_threshold: 0.45
      labels: [person, car]

The checks here turn a bad shape, name, card or model into one line naming the flag or file
(BenchUsageError, exit 2) before any backend runs.
"""

import os

import numpy as np
import torch

from .errors import BenchUsageError

LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8")
ORDERS = ("rgb", "bgr")
RESIZES = ("plain", "letterbox")
# YOLOv5's defaults: conf_thres=0.25, iou_thres=0.45 (ultralytics/yolov5 detect.py, utils/general.py
# non_max_suppression); its letterbox pads with grey 114 (utils/augmentations.py letterbox)
YOLO_CONF, YOLO_IOU, LETTERBOX_PAD = 0.25, 0.45, 114


class ModelCard(object):
    """The input and output contract of one single-image model."""

    def __init__(self, name="x", height=224, width=224, **kw):
        # type: (str, int, int, **object) -> None
        self.name = name
        self.height = int(height)
        self.width = int(width)
        self.layout = str(kw.get("layout", "NCHW")).upper()
        self.dtype = str(kw.get("dtype", "float32"))
        self.channel_order = str(kw.get("channel_order", "rgb")).lower()
        self.scale = float(kw.get("scale", 1.0 / 255.0))  # type: ignore[arg-type]
        self.mean = [float(v) for v in kw.get("mean", [0.0, 0.0, 0.0])]  # type: ignore[attr-defined]
        self.std = [float(v) for v in kw.get("std", [1.0, 1.0, 1.0])]  # type: ignore[attr-defined]
        self.resize = str(kw.get("resize", "plain"))
        self.output = str(kw.get("output", "none"))
        self.conf_threshold = float(kw.get("conf_threshold", YOLO_CONF))  # type: ignore[arg-type]
        self.iou_threshold = float(kw.get("iou_threshold", YOLO_IOU))  # type: ignore[arg-type]
        self.labels = [str(v) for v in kw.get("labels", [])]  # type: ignore[attr-defined]
        self.path = kw.get("path")
        self.video_runs = 0  # --write-video: the next run's file number (userpipeline.video_path)

    @property
    def topk(self):
        # type: () -> int
        """K of ``topk:K``; 1 for argmax, 0 otherwise."""
        if self.output == "argmax":
            return 1
        if self.output.startswith("topk:"):
            return int(self.output[5:])
        return 0

    def shape(self, batch=1):
        # type: (int) -> tuple
        if self.layout == "NHWC":
            return (batch, self.height, self.width, 3)
        return (batch, 3, self.height, self.width)

    def torch_dtype(self):
        # type: () -> torch.dtype
        return {"float32": torch.float32, "float16": torch.float16, "uint8": torch.uint8}[self.dtype]

    def label(self, index):
        # type: (int) -> str
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    def validate(self, where):
        # type: (str) -> None
        """Each field in its range, or one line naming ``where`` (the card file or the flag)."""
        checks = [
            ("layout", self.layout, self.layout in LAYOUTS, "one of " + "/".join(LAYOUTS)),
            ("dtype", self.dtype, self.dtype in DTYPES, "one of " + "/".join(DTYPES)),
            ("channel_order", self.channel_order, self.channel_order in ORDERS, "rgb or bgr"),
            ("resize", self.resize, self.resize in RESIZES, "plain or letterbox"),
            ("size", (self.height, self.width), self.height > 0 and self.width > 0, "positive"),
            ("mean", self.mean, len(self.mean) == 3, "3 numbers"),
            ("std", self.std, len(self.std) == 3 and all(s != 0 for s in self.std), "3 non-zero numbers"),
            ("output", self.output, _output_ok(self.output), "none, argmax, topk:K (K >= 1) or yolo"),
            ("iou_threshold", self.iou_threshold, 0 < self.iou_threshold <= 1, "in (0, 1]"),
        ]
        for field, value, ok, want in checks:
            if not ok:
                raise BenchUsageError("%s: %s %s: must be %s" % (where, field, value, want))

    def as_dict(self):
        # type: () -> dict
        return {
            "path": self.path,
            "input": {
                "name": self.name,
                "size": [self.height, self.width],
                "layout": self.layout,
                "dtype": self.dtype,
                "channel_order": self.channel_order,
                "scale": self.scale,
                "mean": self.mean,
                "std": self.std,
                "resize": self.resize,
            },
            "output": {
                "kind": self.output,
                "conf_threshold": self.conf_threshold,
                "iou_threshold": self.iou_threshold,
                "labels": self.labels,
            },
        }


def _output_ok(text):
    # type: (str) -> bool
    if text in ("none", "argmax", "yolo"):
        return True
    if text.startswith("topk:"):
        try:
            return int(text[5:]) >= 1
        except ValueError:
            return False
    return False


def load_card(path):
    # type: (str) -> ModelCard
    """A YAML card (JSON is YAML too, for boards without PyYAML)."""
    if not os.path.isfile(path):
        raise BenchUsageError("--model-card %s: no such file" % path)
    try:
        with open(path) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchUsageError("--model-card %s: unreadable (%s)" % (path, exc)) from None
    try:
        import yaml

        data = yaml.safe_load(text)
    except ImportError:
        import json

        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BenchUsageError("--model-card %s: not JSON and PyYAML is missing (%s)" % (path, exc)) from None
    except Exception as exc:  # yaml.YAMLError: one line, no traceback
        raise BenchUsageError("--model-card %s: not YAML (%s)" % (path, str(exc).splitlines()[0])) from None
    return card_from_dict(data, path)


def card_from_dict(data, path):
    # type: (object, str) -> ModelCard
    where = "--model-card %s" % path
    if not isinstance(data, dict) or not isinstance(data.get("input"), dict):
        raise BenchUsageError("%s: expected a mapping with an 'input' section" % where)
    inp = dict(data["input"])
    out = data.get("output", "none")
    out = dict(out) if isinstance(out, dict) else {"kind": out}
    unknown = sorted(
        set(inp) - set(["name", "size", "layout", "dtype", "channel_order", "scale", "mean", "std", "resize"])
    )
    unknown += sorted(set(out) - set(["kind", "conf_threshold", "iou_threshold", "labels"]))
    if unknown:
        raise BenchUsageError("%s: unknown field %s" % (where, ", ".join(unknown)))
    size = inp.pop("size", None)
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise BenchUsageError("%s: input.size must be [height, width] integers" % where)
    try:
        card = ModelCard(
            str(inp.pop("name", "x")),
            size[0],
            size[1],
            output=str(out.pop("kind", "none")),
            path=os.path.abspath(path),
            **dict(list(inp.items()) + list(out.items())),
        )
    except (TypeError, ValueError) as exc:
        raise BenchUsageError("%s: %s" % (where, exc)) from None
    card.validate(where)
    return card


def card_from_flags(input_shapes, output):
    # type: (list, str) -> object
    """``--output`` with one ``--input-shape NAME=1x3xHxW`` (NCHW float32 RGB, /255, plain resize); None
    when neither a card nor --output asks for an end-to-end pipeline."""
    if output is None:
        return None
    from .spec import parse_shape

    if len(input_shapes) != 1:
        raise BenchUsageError("--output: give exactly one --input-shape NAME=1x3xHxW (or a --model-card)")
    name, shape = parse_shape(input_shapes[0])
    if len(shape) != 4 or shape[1] != 3:
        raise BenchUsageError(
            "--input-shape %s: --output needs an NCHW image input NAME=1x3xHxW (for NHWC use a --model-card)"
            % input_shapes[0]
        )
    card = ModelCard(name, shape[2], shape[3], output=output)
    card.validate("--output")
    return card


def shape_flag(card):
    # type: (ModelCard) -> str
    """The --input-shape a card implies (batch 1)."""
    return "%s=%s" % (card.name, "x".join(str(d) for d in card.shape(1)))


def model_inputs(spec):
    # type: (object) -> object
    """[(name, rank or None)] of the model's inputs, or None when it cannot be read here."""
    if spec.kind == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        try:
            sess = ort.InferenceSession(spec.onnx_path, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a corrupt or unsupported file
            raise BenchUsageError("--model %s: onnxruntime cannot load it (%s)" % (spec.name, _one_line(exc))) from None
        return [(i.name, len(i.shape)) for i in sess.get_inputs()]
    try:
        args = spec.module.forward.schema.arguments[1:]  # [0] is self
    except (AttributeError, RuntimeError):
        return None
    return [(a.name, None) for a in args]


def _one_line(exc):
    # type: (BaseException) -> str
    """The line of a (TorchScript) error that says what went wrong: its last non-empty line,
    where the interpreter puts the Python-level error after the IR traceback."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def check_model(spec, given):
    # type: (object, list) -> None
    """Names and ranks of --input-shape against the model, then one forward pass on zeros."""
    shown = dict((s.partition("=")[0], s) for s in given)
    inputs = model_inputs(spec)
    if inputs is not None:
        names = [n for n, _ in inputs]
        for name, shape in zip(spec.input_names, spec.input_shapes):
            flag = "--input-shape %s" % shown.get(name, name)
            if name not in names:
                raise BenchUsageError("%s: the model has no input %r (its inputs: %s)" % (flag, name, ", ".join(names)))
            rank = dict(inputs)[name]
            if rank is not None and rank != len(shape):
                raise BenchUsageError(
                    "%s: rank %d, the model's %r has rank %d%s"
                    % (flag, len(shape), name, rank, _batch_hint(len(shape), rank))
                )
        missing = [n for n in names if n not in spec.input_names]
        if missing:
            raise BenchUsageError("--input-shape: the model's input %s is not given" % ", ".join(missing))
    probe_output(spec, shown)


def _batch_hint(have, want):
    # type: (int, int) -> str
    return " (missing the batch dimension? e.g. 1x...)" if want == have + 1 else ""


def probe_output(spec, shown=None):
    # type: (object, object) -> tuple
    """One forward pass on zeros on the CPU; the output's shape. A failure names the shapes."""
    zeros = [torch.zeros(s, dtype=d) for s, d in zip(spec.input_shapes, spec.torch_dtypes())]
    try:
        if spec.module is not None:
            from .spec import first_output

            with torch.no_grad():
                out = first_output(spec.module(*zeros))
            return tuple(out.shape)
        import onnxruntime as ort

        sess = ort.InferenceSession(spec.onnx_path, providers=["CPUExecutionProvider"])
        feeds = dict((n, z.numpy()) for n, z in zip(spec.input_names, zeros))
        return tuple(np.asarray(sess.run(None, feeds)[0]).shape)
    except ImportError:
        return ()
    except Exception as exc:  # the model rejects these inputs: one line, not its IR dump
        flags = " ".join("--input-shape " + (shown or {}).get(n, n) for n in spec.input_names)
        hint = ""
        if any(len(s) == 3 for s in spec.input_shapes):
            hint = " (missing the batch dimension? e.g. 1x%s)" % "x".join(str(d) for d in spec.input_shapes[0])
        raise BenchUsageError("%s: the model rejects it%s: %s" % (flags, hint, _one_line(exc))) from None


def check_card(spec, card):
    # type: (object, ModelCard) -> None
    """The card against the model: its input name and shape, its output handling against the output."""
    where = "--model-card %s" % card.path if card.path else "--output"
    if len(spec.input_names) != 1:
        raise BenchUsageError(
            "%s: the pipeline feeds one image; the model has inputs %s" % (where, ", ".join(spec.input_names))
        )
    if spec.input_names[0] != card.name:
        raise BenchUsageError("%s: input %r, the model's is %r" % (where, card.name, spec.input_names[0]))
    if tuple(spec.input_shapes[0][1:]) != tuple(card.shape(1)[1:]):
        raise BenchUsageError(
            "%s: %s %dx%d gives %s, --input-shape says %s"
            % (where, card.layout, card.height, card.width, list(card.shape(1)), list(spec.input_shapes[0]))
        )
    model_dtype = spec.input_dtypes[0]
    if card.dtype != model_dtype:
        # e.g. a model with its preprocessing inside takes raw uint8 pixels: the card must say so
        raise BenchUsageError(
            "%s: dtype %s, the model's input %r is %s (set input.dtype: %s in a --model-card)"
            % (where, card.dtype, card.name, model_dtype, model_dtype)
        )
    shape = probe_output(spec)
    if not shape:
        return
    if card.topk and (len(shape) != 2 or shape[1] < card.topk):
        raise BenchUsageError(
            "%s: output %s needs (batch, classes >= %d); the model gives %s"
            % (where, card.output, card.topk, list(shape))
        )
    if card.output == "yolo" and (len(shape) != 3 or shape[2] < 6):
        raise BenchUsageError(
            "%s: output yolo needs (batch, boxes, 5 + classes); the model gives %s" % (where, list(shape))
        )


def resolve_card(args):
    # type: (object) -> tuple
    """(card or None, the --input-shape list): a card's input gives the shape when none is passed."""
    shapes = list(args.input_shape)
    if args.model_card and args.output:
        raise BenchUsageError("--output: the --model-card says the output (output.kind)")
    if (args.model_card or args.output) and args.model == "z2color":
        raise BenchUsageError("--model-card/--output are for your own model (--model FILE)")
    if not args.model_card:
        return card_from_flags(shapes, args.output), shapes
    card = load_card(args.model_card)
    if not shapes:
        shapes = [shape_flag(card)]
    return card, shapes
