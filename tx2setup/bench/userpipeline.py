"""End to end for any single-image model: source -> preprocess -> inference -> postprocess -> sink.

The model's contract is a modelcard.ModelCard. Two pipelines, as for Z2Color (pipeline.py):
- ``optimized``: on a GPU each frame goes up as uint8 from a pinned staging slot on a copy
  stream, is resized/normalised on the GPU straight into the backend's input buffer, the
  output comes back into pinned memory, and frame N+1 is captured (and frame N-1
  postprocessed and written) while frame N is on the GPU. On the CPU: torch preprocessing
  into the input buffer in place, no intermediate arrays.
- ``naive``: numpy resize/normalise on the CPU in float, a pageable copy of the float
  tensor, everything synchronous (the 2017 style).

Writing the annotated frame (``--write-video``) is a stage, ``write``, and counts in the
end-to-end time. Sampled frames keep the input the backend saw and the postprocessed
result; after the run the fp32 model (float64 on the CPU) recomputes them and
postprocess.compare judges the backend (boxes by IoU >= 0.9, labels, scores).
"""

import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .pipeline import STAGES, Measurement, _Runner, stage_range
from .postprocess import compare, letterbox_geometry, make_postprocess
from .sink import VideoSink, annotate

USER_STAGES = (*[s for s in STAGES if s != "stack"], "write")


class UserMeasurement(Measurement):
    """pipeline.Measurement with the user pipeline's stages (no stacking; a write stage)."""

    def __init__(self, policy):
        # type: (object) -> None
        super(UserMeasurement, self).__init__(policy)
        self.stages = dict((s, []) for s in (*STAGES, "write"))

    def add(self, latency_ms, stage_ms):
        # type: (float, dict) -> None
        before = len(self.latencies)
        super(UserMeasurement, self).add(latency_ms, stage_ms)
        if len(self.latencies) > before:  # pipeline.STAGES were appended; add the write stage
            self.stages["write"].append(stage_ms.get("write", 0.0))

    def result(self, pipeline, notes):
        # type: (str, list) -> dict
        r = super(UserMeasurement, self).result(pipeline, notes)
        # "stack" stays, at 0: the report's stage table has Z2Color's columns
        r["stage_order"] = list(USER_STAGES)
        return r


class FrameSource(object):
    """A benchmark source (sources.parse_source) giving single RGB frames (H, W, 3) uint8.

    Synthetic ZED pairs give their left image; a video, GStreamer or V4L2 source gives the
    whole image at its own size (no side-by-side split: a user's camera is one image).
    """

    def __init__(self, text, seed=0):
        # type: (str, int) -> None
        from .sources import parse_source

        self.src = parse_source(text, seed=seed)
        self.pair = self.src.kind == "synthetic"
        if not self.pair:
            self.src.to_pair = lambda image: np.ascontiguousarray(image)[None]  # type: ignore[method-assign]

    def describe(self):
        # type: () -> dict
        d = self.src.describe()
        if not self.pair:
            d.pop("height", None)
            d.pop("width", None)
        return d

    def open(self):
        # type: () -> None
        self.src.open()

    def capture(self):
        # type: () -> np.ndarray
        return self.src.capture()[0]

    def close(self):
        # type: () -> None
        self.src.close()


def preprocess_torch(frame, card, out):
    # type: (torch.Tensor, object, torch.Tensor) -> None
    """uint8 (H, W, 3) RGB on any device -> the card's input, written into ``out`` in place.

    A uint8 card (the model preprocesses inside) gets the raw pixels: no normalisation, and
    when the frame already has the card's size not even a float conversion."""
    h, w = int(frame.shape[0]), int(frame.shape[1])
    _, _, top, left, nh, nw = letterbox_geometry(h, w, card.height, card.width, card.resize == "letterbox")
    raw = card.dtype == "uint8" and (nh, nw) == (h, w) == (card.height, card.width)
    x = frame.permute(2, 0, 1).unsqueeze(0)
    x = x if raw else x.float()
    if card.channel_order == "bgr":
        x = x.flip(1)
    if raw:
        out.copy_(x.permute(0, 2, 3, 1) if card.layout == "NHWC" else x)
        return
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    if (nh, nw) != (card.height, card.width):
        from .modelcard import LETTERBOX_PAD

        y = torch.full((1, 3, card.height, card.width), float(LETTERBOX_PAD), device=x.device)
        y[:, :, top : top + nh, left : left + nw] = x
        x = y
    if card.dtype == "uint8":
        x = x.round().clamp(0, 255)
    else:
        mean = torch.tensor(card.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(card.std, device=x.device).view(1, 3, 1, 1)
        x = (x * card.scale - mean) / std
    if card.layout == "NHWC":
        x = x.permute(0, 2, 3, 1)
    out.copy_(x)


def _resize_np(img, nh, nw):
    # type: (np.ndarray, int, int) -> np.ndarray
    """Bilinear resize of float (H, W, C), the sampling of F.interpolate(align_corners=False)."""
    h, w = img.shape[:2]

    def axis(n_in, n_out):
        # type: (int, int) -> tuple
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / float(n_out)) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (src - i0).astype(np.float32)

    y0, y1, wy = axis(h, nh)
    x0, x1, wx = axis(w, nw)
    wx = wx[None, :, None]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bot = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy[:, None, None]) + bot * wy[:, None, None]


def preprocess_numpy(frame, card):
    # type: (np.ndarray, object) -> np.ndarray
    """The naive pipeline's preprocessing: numpy float on the CPU, (1, ...) float32 (uint8 for a uint8
    card) as the card says."""
    x = np.asarray(frame, dtype=np.float32)
    if card.channel_order == "bgr":
        x = x[:, :, ::-1]
    h, w = x.shape[:2]
    _, _, top, left, nh, nw = letterbox_geometry(h, w, card.height, card.width, card.resize == "letterbox")
    if (nh, nw) != (h, w):
        x = _resize_np(x, nh, nw)
    if (nh, nw) != (card.height, card.width):
        from .modelcard import LETTERBOX_PAD

        y = np.full((card.height, card.width, 3), float(LETTERBOX_PAD), dtype=np.float32)
        y[top : top + nh, left : left + nw] = x
        x = y
    if card.dtype == "uint8":
        x = np.clip(np.round(x), 0, 255)
    else:
        x = (x * card.scale - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)
    if card.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    # a uint8 card gets the raw pixels (whole numbers after the rounding above)
    return np.ascontiguousarray(x[None], dtype=np.uint8 if card.dtype == "uint8" else np.float32)


class _UserRunner(_Runner):
    def __init__(self, backend, source, card, sink, profile=False):
        # type: (object, FrameSource, object, object, bool) -> None
        super(_UserRunner, self).__init__(backend, source, profile)
        self.card = card
        self.sink = sink
        self.postproc = make_postprocess(card)
        self.last = None  # type: object

    def finish(self, frame, host, hw):
        # type: (np.ndarray, np.ndarray, tuple) -> tuple
        """Postprocess and write one frame; (result, postprocess ms, write ms)."""
        t0 = time.perf_counter()
        with stage_range("postprocess", self.profile):
            result = self.postproc(host, hw)
        t1 = time.perf_counter()
        if self.sink is not None:
            with stage_range("write", self.profile):
                self.sink.write(annotate(frame, result, self.card))
        self.last = result
        return result, (t1 - t0) * 1000.0, (time.perf_counter() - t1) * 1000.0


class _Sync(_UserRunner):
    """CPU backends (both pipelines) and the naive GPU pipeline: one frame at a time."""

    def __init__(self, backend, source, card, sink, naive, profile=False):
        # type: (object, FrameSource, object, object, bool, bool) -> None
        super(_Sync, self).__init__(backend, source, card, sink, profile)
        self.naive = naive
        if naive:
            self.notes.append(
                "naive: numpy resize/normalise on the CPU" + (", pageable float copy" if backend.is_cuda else "")
            )
        elif not backend.is_cuda:
            self.notes.append("CPU pipeline: torch preprocessing into the input buffer in place; no H2D/D2H stages")

    def loop(self, m):
        # type: (UserMeasurement) -> None
        src, prof, clock = self.source, self.profile, time.perf_counter
        src.open()
        i = 0
        while not m.done():
            t0 = clock()
            with stage_range("capture", prof):
                frame = np.array(src.capture()) if self.naive else src.capture()
            st = {"capture": (clock() - t0) * 1000.0}
            host = self._infer(frame, st)
            result, st["postprocess"], st["write"] = self.finish(frame, host, frame.shape[:2])
            m.add((clock() - t0) * 1000.0, st)
            i += 1
            if self.sample_due(i) or m.done():
                x = self.backend.inputs[0].detach().float().cpu().numpy().copy()
                self.probes.append((x, result, frame.shape[:2]))

    def _infer(self, frame, st):
        # type: (np.ndarray, dict) -> np.ndarray
        """Preprocess, H2D (naive), inference and D2H of one frame: their ms into ``st``; the host output."""
        be, prof, clock = self.backend, self.profile, time.perf_counter
        cuda = be.is_cuda
        t1 = clock()
        with stage_range("preprocess", prof):
            if self.naive:
                x = torch.from_numpy(preprocess_numpy(frame, self.card))
            else:
                preprocess_torch(torch.from_numpy(frame), self.card, be.inputs[0])
        t2 = clock()
        with stage_range("h2d", prof):
            if self.naive:
                be.inputs[0].copy_(x.to(be.inputs[0].device).view(be.inputs[0].shape))
                if cuda:
                    torch.cuda.synchronize()
        t3 = clock()
        with stage_range("inference", prof):
            out = be.run()
            if cuda:
                torch.cuda.synchronize()
        t4 = clock()
        with stage_range("d2h", prof):
            host = out.detach().float().cpu().numpy()
        t5 = clock()
        ms = 1000.0
        st["preprocess"] = (t2 - t1) * ms
        st["h2d"] = (t3 - t2) * ms if cuda else 0.0
        st["inference"] = (t4 - t3) * ms
        st["d2h"] = (t5 - t4) * ms if cuda else 0.0
        return host


class _CudaOverlapped(_UserRunner):
    """GPU optimized: uint8 upload from pinned memory on a copy stream, GPU preprocessing, pinned
    output; capture of frame i and postprocess/write of frame i-1 overlap frame i on the GPU."""

    def loop(self, m):
        # type: (UserMeasurement) -> None
        self.notes.append(
            "uint8 upload from pinned staging (the capture copies into it) on a copy stream; GPU "
            "preprocessing into the input buffer; capture, postprocess and write overlap the GPU"
        )
        self.source.open()
        first = self.source.capture()
        self._buffers(first.shape)
        self._capture(0, first)
        self._enqueue(0, False)
        i = 1
        m.restart()
        while True:
            s, p = i % 2, 1 - i % 2
            self._capture(s)
            self.ev[p]["d1"].synchronize()  # frame i-1 is done; its staging slot and output are free after this
            self._enqueue(s, self.sample_due(i))
            self._finish_slot(p, m)
            if m.done():
                break
            i += 1
        torch.cuda.synchronize()

    def _buffers(self, shape):
        # type: (tuple) -> None
        """Two slots (frame i in slot i % 2): pinned staging, device frame, pinned output, events."""
        self.staging = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(2)]
        self.dev = [torch.empty(shape, dtype=torch.uint8, device="cuda") for _ in range(2)]
        out0 = self.backend.run()
        torch.cuda.synchronize()
        self.out_host = [torch.empty(out0.shape, dtype=torch.float32, pin_memory=True) for _ in range(2)]
        self.compute, self.copy = torch.cuda.Stream(), torch.cuda.Stream()
        self.foreign = getattr(self.backend, "foreign_stream", False)
        names = ("h0", "h1", "p1", "i1", "d1")
        self.ev = [dict((n, torch.cuda.Event(enable_timing=True)) for n in names) for _ in range(2)]
        self.frames = [None, None]  # type: list
        self.t_cap = [0.0, 0.0]
        self.cap_ms = [0.0, 0.0]
        self.probe_x = [None, None]  # type: list

    def _capture(self, s, frame=None):
        # type: (int, object) -> None
        t0 = time.perf_counter()
        with stage_range("capture", self.profile):
            f = self.source.capture() if frame is None else frame
            self.staging[s].numpy()[...] = f  # one host copy into pinned memory, counted as capture
        self.t_cap[s], self.cap_ms[s] = t0, (time.perf_counter() - t0) * 1000.0
        self.frames[s] = self.staging[s].numpy()

    def _enqueue(self, s, sample):
        # type: (int, bool) -> None
        """Slot ``s``'s upload on the copy stream, then preprocess, inference and D2H on the compute stream."""
        e, be, prof, compute = self.ev[s], self.backend, self.profile, self.compute
        with torch.cuda.stream(self.copy):
            e["h0"].record(self.copy)
            self.dev[s].copy_(self.staging[s], non_blocking=True)
            e["h1"].record(self.copy)
        compute.wait_event(e["h1"])
        with torch.cuda.stream(compute):
            with stage_range("preprocess", prof):
                preprocess_torch(self.dev[s], self.card, be.inputs[0])
            e["p1"].record(compute)
            self.probe_x[s] = be.inputs[0].detach().clone() if sample else None
            with stage_range("inference", prof):
                if self.foreign:
                    compute.synchronize()
                out = be.run()
                if self.foreign:
                    torch.cuda.synchronize()
            e["i1"].record(compute)
            self.out_host[s].copy_(out, non_blocking=True)
            e["d1"].record(compute)

    def _finish_slot(self, p, m):
        # type: (int, UserMeasurement) -> None
        """Postprocess and write slot ``p``'s frame (done on the GPU), record its stages, keep a probe."""
        keep = self.sink is not None or self.probe_x[p] is not None
        frame = np.array(self.frames[p]) if keep else self.frames[p]
        result, post_ms, write_ms = self.finish(frame, self.out_host[p].numpy(), frame.shape[:2])
        e = self.ev[p]
        st = {
            "capture": self.cap_ms[p],
            "h2d": e["h0"].elapsed_time(e["h1"]),
            "preprocess": e["h1"].elapsed_time(e["p1"]),
            "inference": e["p1"].elapsed_time(e["i1"]),
            "d2h": e["i1"].elapsed_time(e["d1"]),
            "postprocess": post_ms,
            "write": write_ms,
        }
        m.add((time.perf_counter() - self.t_cap[p]) * 1000.0, st)
        if self.probe_x[p] is not None:
            self.probes.append((self.probe_x[p].float().cpu().numpy(), result, frame.shape[:2]))
            self.probe_x[p] = None


def video_path(base, index):
    # type: (str, int) -> str
    """The first run writes ``base``; later runs (other backends/pipelines) ``stem.N.ext``."""
    if index == 0:
        return base
    stem, ext = os.path.splitext(base)
    return "%s.%d%s" % (stem, index, ext)


def run_user_pipeline(backend, source, card, pipeline, policy, sink=None):
    # type: (object, FrameSource, object, str, object, object) -> dict
    """One end-to-end run; its stats, stage means and probes (input, result, frame size)."""
    if backend.is_cuda and pipeline == "optimized":
        runner = _CudaOverlapped(backend, source, card, sink)  # type: _UserRunner
    else:
        runner = _Sync(backend, source, card, sink, naive=(pipeline == "naive"))
    m = UserMeasurement(policy)
    try:
        runner.loop(m)
    finally:
        source.close()
        if sink is not None:
            sink.close()
    result = m.result(pipeline, runner.notes)
    result["probes"] = runner.probes
    result["video"] = sink.describe() if sink is not None else None
    return result


def check_probes(spec, card, probes, score_tol):
    # type: (object, object, list, float) -> tuple
    """Each sampled frame's postprocessed output against the fp32 model's: (first failure or None, count)."""
    post = make_postprocess(card)
    for x, got, hw in probes:
        ref = post(spec.reference([torch.from_numpy(np.asarray(x, dtype=np.float32))]), hw)
        why = compare(ref, got, score_tol, card)
        if why is not None:
            return why, len(probes)
    return None, len(probes)


def bench_pipelines(backend, spec, card, args, policy, pipelines, window):
    # type: (object, object, object, object, object, list, object) -> dict
    """The entry fields of the end-to-end runs of one backend (cli._bench_one), checked."""
    from .backends import TOLERANCES

    tol = args.tolerance if args.tolerance is not None else TOLERANCES.get(backend.precision, 1e-3)
    runs, failure = {}, None
    for name in pipelines:
        t0 = time.perf_counter()
        sink = None
        if args.write_video:
            sink = VideoSink(video_path(args.write_video, card.video_runs))
            card.video_runs += 1
        e2e = run_user_pipeline(backend, FrameSource(args.source, args.seed), card, name, policy, sink)
        why, count = check_probes(spec, card, e2e.pop("probes"), tol)
        e2e["checked_frames"] = count
        e2e["postprocess_tolerance"] = tol
        e2e["postprocess_error"] = why
        e2e["telemetry"] = window(t0)
        if why is not None and failure is None:
            failure = "%s pipeline: postprocessed output differs from the fp32 reference: %s" % (name, why)
        runs[name] = e2e
    out = {"end_to_end_pipelines": runs, "end_to_end": runs.get("optimized") or runs.get("naive")}
    if failure is not None:
        out["correct"] = False
        out["pipeline_error"] = failure
    return out
