"""End to end, camera to steering: capture, stack, preprocess, H2D, inference, D2H, postprocess.

Two pipelines:
- ``optimized``: the source writes frames straight into pinned host memory when it can
  (otherwise one copy into a pinned staging slot, counted as capture); only the new uint8
  stereo pair goes up, on a copy stream that overlaps the previous frame's inference; only
  the new pair is preprocessed and stacking happens at network resolution (the last
  frame's pooled pair moves to the t-1 slots: pooling is per channel, so this equals
  pooling the full-resolution stack); stacking and preprocessing run on the GPU as CUDA
  graphs; graph backends replay their inference graph; the result comes back into pinned
  memory; frame N+1 is captured while frame N is on the GPU.
- ``naive`` (2017 style): a fresh pageable frame, stacking and float conversion on the
  CPU, a pageable copy of the float tensor, everything synchronous.

On a CPU backend both pipelines run on the CPU (no H2D/D2H; those stages read 0).
Per-stage times are means over the measured frames: GPU stages by CUDA events, host
stages by the host clock. In the optimized pipeline stages overlap, so their sum is
more than the time per frame; FPS is frames over wall time either way.
"""

import time

import numpy as np
import torch

from . import model as z2
from .graphs import capturing
from .stats import RunPolicy, summarize

STAGES = ("capture", "stack", "preprocess", "h2d", "inference", "d2h", "postprocess")


class _Null(object):
    def __enter__(self):
        # type: () -> None
        return None

    def __exit__(self, *exc):
        # type: (*object) -> bool
        return False


_NULL = _Null()


def stage_range(name, enabled):
    # type: (str, bool) -> object
    """A named profiler range (visible in the --profile trace), or nothing when not profiling."""
    if not enabled:
        return _NULL
    return torch.autograd.profiler.record_function("stage." + name)


class Measurement(object):
    """Collects per-frame latencies and per-stage times, honouring the warm-up and run policy."""

    def __init__(self, policy):
        # type: (RunPolicy) -> None
        self.policy = policy
        self.latencies = []  # type: list
        self.stages = dict((s, []) for s in STAGES)  # type: dict
        self.t_start = None  # type: object
        self.t_warm_end = time.perf_counter() + policy.warmup_s
        self.warmup_frames = 0
        self.measured_wall = 0.0

    def restart(self):
        # type: () -> None
        self.t_warm_end = time.perf_counter() + self.policy.warmup_s
        self.warmup_frames = 0
        self.t_start = None

    def add(self, latency_ms, stage_ms):
        # type: (float, dict) -> None
        now = time.perf_counter()
        if now < self.t_warm_end or self.warmup_frames == 0:
            self.warmup_frames += 1
            return
        if self.t_start is None:
            self.t_start = now
            return  # the first frame after warm-up starts the clock
        self.latencies.append(latency_ms)
        for name in STAGES:
            self.stages[name].append(stage_ms.get(name, 0.0))
        self.measured_wall = now - self.t_start

    def done(self):
        # type: () -> bool
        p = self.policy
        n = len(self.latencies)
        return n >= p.max_iters or (n >= p.min_iters and self.measured_wall >= p.min_duration_s)

    def result(self, pipeline, notes):
        # type: (str, list) -> dict
        summary = summarize(self.latencies, self.measured_wall)
        summary["pipeline"] = pipeline
        summary["stages"] = dict((s, float(np.mean(v)) if v else 0.0) for s, v in self.stages.items())
        summary["stage_order"] = list(STAGES)
        summary["warmup_frames"] = self.warmup_frames
        summary["notes"] = notes
        return summary


def _stack_np(prev, cur):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """CPU stacking, as the 2017 code did: HWC concat in channel order, then CHW."""
    hwc = np.concatenate((prev[0], cur[0], prev[1], cur[1]), axis=2)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))[None]


def run_end_to_end(backend, source, pipeline, policy, profile=False, meta_mode="direct"):
    # type: (object, object, str, RunPolicy, bool, str) -> dict
    """Run the camera-to-steering loop and return its stats, stage means and a correctness probe."""
    backend.inputs[1].copy_(z2.metadata(1, meta_mode))
    if backend.is_cuda and pipeline == "optimized":
        runner = _CudaOptimized(backend, source, profile)
    elif backend.is_cuda:
        runner = _CudaNaive(backend, source, profile)
    else:
        runner = _Cpu(backend, source, profile, naive=(pipeline == "naive"))
    m = Measurement(policy)
    try:
        runner.loop(m)
    finally:
        source.close()
    result = m.result(pipeline, runner.notes)
    result["last_steering"] = runner.last_steering
    result["probes"] = runner.probes
    return result


class _Runner(object):
    def __init__(self, backend, source, profile):
        # type: (object, object, bool) -> None
        self.backend = backend
        self.source = source
        self.profile = profile
        self.notes = []  # type: list
        self.last_steering = None  # type: object
        # (prev pair, cur pair, host output) of sampled frames through the run and of the last
        # one, to check the pipeline's arithmetic (correctness.check_pipeline)
        self.probes = []  # type: list

    @staticmethod
    def sample_due(i):
        # type: (int) -> bool
        """Frames 1, 2, 4, ..., 2048, then every 8192nd: spread over the whole run, at most
        12 + frames/8192 of them (each costs two frame copies, and a wait on a GPU pipeline)."""
        return (i <= 2048 and (i & (i - 1)) == 0) or i % 8192 == 0

    def post(self, out_host):
        # type: (np.ndarray) -> tuple
        return z2.postprocess(out_host)


class _Cpu(_Runner):
    def __init__(self, backend, source, profile, naive):
        # type: (object, object, bool, bool) -> None
        super(_Cpu, self).__init__(backend, source, profile)
        self.naive = naive
        self.notes.append("CPU pipeline: no H2D/D2H stages")

    def loop(self, m):
        # type: (Measurement) -> None
        src, be, prof = self.source, self.backend, self.profile
        src.open()
        prev = src.capture()
        frame = 0
        slots = z2.input_slots(be.inputs[0])
        if not self.naive:
            z2.preprocess_pair_into(torch.from_numpy(prev), slots)
        while not m.done():
            t0 = time.perf_counter()
            with stage_range("capture", prof):
                cur = src.capture()
                if self.naive:
                    cur = np.array(cur)
            t1 = time.perf_counter()
            with stage_range("stack", prof):
                if self.naive:
                    raw = _stack_np(prev, cur)
                else:
                    z2.shift_frames(slots)
            t2 = time.perf_counter()
            with stage_range("preprocess", prof):
                if self.naive:
                    x = torch.from_numpy(raw.astype(np.float32))
                    be.inputs[0].copy_(z2.preprocess(x))
                else:
                    z2.preprocess_pair_into(torch.from_numpy(cur), slots)
            t3 = time.perf_counter()
            with stage_range("inference", prof):
                out = be.run()
            t4 = time.perf_counter()
            with stage_range("postprocess", prof):
                host = out.detach().float().numpy()
                self.last_steering = self.post(host)
            t5 = time.perf_counter()
            ms = 1000.0
            m.add(
                (t5 - t0) * ms,
                {
                    "capture": (t1 - t0) * ms,
                    "stack": (t2 - t1) * ms,
                    "preprocess": (t3 - t2) * ms,
                    "inference": (t4 - t3) * ms,
                    "postprocess": (t5 - t4) * ms,
                },
            )
            frame += 1
            if self.sample_due(frame) or m.done():
                self.probes.append((np.array(prev), np.array(cur), host.copy()))
            prev = cur


class _CudaNaive(_Runner):
    def loop(self, m):
        # type: (Measurement) -> None
        src, be, prof = self.source, self.backend, self.profile
        self.notes.append("naive: CPU stacking and float conversion, pageable copies, synchronous")
        src.open()
        prev = np.array(src.capture())
        frame = 0
        sync = torch.cuda.synchronize
        clock = time.perf_counter
        while not m.done():
            t0 = clock()
            with stage_range("capture", prof):
                cur = np.array(src.capture())  # a fresh pageable frame, as a ROS message gave it
            t1 = clock()
            with stage_range("stack", prof):
                raw = _stack_np(prev, cur)
            t2 = clock()
            with stage_range("preprocess", prof):
                xf = raw.astype(np.float32)  # the 2017 bottleneck: float conversion on the CPU
            t3 = clock()
            with stage_range("h2d", prof):
                dev = torch.from_numpy(xf).to("cuda")  # pageable: staged through a driver buffer
                sync()
            t4 = clock()
            with stage_range("preprocess", prof):
                be.inputs[0].copy_(z2.preprocess(dev))
                sync()
            t5 = clock()
            with stage_range("inference", prof):
                out = be.run()
                sync()
            t6 = clock()
            with stage_range("d2h", prof):
                host = out.float().cpu().numpy()
            t7 = clock()
            with stage_range("postprocess", prof):
                self.last_steering = self.post(host)
            t8 = clock()
            ms = 1000.0
            m.add(
                (t8 - t0) * ms,
                {
                    "capture": (t1 - t0) * ms,
                    "stack": (t2 - t1) * ms,
                    "preprocess": ((t3 - t2) + (t5 - t4)) * ms,
                    "h2d": (t4 - t3) * ms,
                    "inference": (t6 - t5) * ms,
                    "d2h": (t7 - t6) * ms,
                    "postprocess": (t8 - t7) * ms,
                },
            )
            frame += 1
            if self.sample_due(frame) or m.done():
                self.probes.append((np.array(prev), np.array(cur), host.copy()))
            prev = cur


class _CudaOptimized(_Runner):
    def __init__(self, backend, source, profile):
        # type: (object, object, bool) -> None
        super(_CudaOptimized, self).__init__(backend, source, profile)
        self._pinned = {}  # type: dict  # host address -> pinned torch tensor

    def _alloc(self, shape):
        # type: (tuple) -> np.ndarray
        t = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        arr = t.numpy()
        self._pinned[arr.__array_interface__["data"][0]] = t
        return arr

    def loop(self, m):
        # type: (Measurement) -> None
        src, be, prof = self.source, self.backend, self.profile
        H, W = src.height, src.width
        pair_shape = (2, H, W, 3)
        if src.zero_copy:
            src.set_allocator(self._alloc)
            self.notes.append("capture writes straight into pinned memory (zero copy)")
        else:
            self.notes.append("capture copies each frame into a pinned staging slot (counted as capture)")
        src.open()
        staging = [self._alloc(pair_shape) for _ in range(2)]
        dev_pair = [torch.empty(pair_shape, dtype=torch.uint8, device="cuda") for _ in range(2)]
        slots = z2.input_slots(be.inputs[0])
        compute = torch.cuda.Stream()
        copy = torch.cuda.Stream()
        foreign = getattr(be, "foreign_stream", False)

        # Stacking at network resolution and preprocessing of the new pair only (one graph per
        # upload slot), as CUDA graphs; warm up before capturing.
        def stack_fn():
            # type: () -> None
            z2.shift_frames(slots)

        pool_w = z2.pool_twice_weight(dev_pair[0].device)  # made before any capture

        def pre_fn(s):
            # type: (int) -> None
            z2.preprocess_pair_into(dev_pair[s], slots, pool_w)

        with torch.cuda.stream(compute):
            for _ in range(2):
                stack_fn()
                pre_fn(0)
                pre_fn(1)
        compute.synchronize()
        g_stack = torch.cuda.CUDAGraph()
        g_pre = [torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()]
        with capturing(g_stack, stream=compute):
            stack_fn()
        for s in (0, 1):
            with capturing(g_pre[s], stream=compute):
                pre_fn(s)
        self.notes.append(
            "GPU stacking (at network resolution) and preprocessing of the new pair in CUDA graphs; inference "
            + ("graph replay" if be.uses_graph else "not a graph")
        )

        out0 = be.run()
        torch.cuda.synchronize()
        out_host = [torch.empty(out0.shape, dtype=out0.dtype, pin_memory=True) for _ in range(2)]
        names = ("h0", "h1", "s0", "s1", "p1", "i1", "d1")
        ev = [dict((n, torch.cuda.Event(enable_timing=True)) for n in names) for _ in range(2)]
        t_cap = [0.0, 0.0]
        cap_ms = [0.0, 0.0]
        pairs = [None, None]  # type: list
        clock = time.perf_counter

        def capture(s):
            # type: (int) -> torch.Tensor
            t0 = clock()
            with stage_range("capture", prof):
                pair = src.capture()
                addr = pair.__array_interface__["data"][0]
                t = self._pinned.get(addr)
                if t is None:  # not in pinned memory: one host copy into a staging slot
                    np.copyto(staging[s], pair)
                    t = self._pinned[staging[s].__array_interface__["data"][0]]
                    pair = staging[s]
            t_cap[s] = t0
            cap_ms[s] = (clock() - t0) * 1000.0
            pairs[s] = pair
            return t

        def upload(s, host_pair, consumer=compute):
            # type: (int, torch.Tensor, torch.cuda.Stream) -> None
            # dev_pair[s] was last read by frame i-2, which has completed (synchronised) by now
            e = ev[s]
            with torch.cuda.stream(copy):
                e["h0"].record(copy)
                with stage_range("h2d", prof):
                    dev_pair[s].copy_(host_pair, non_blocking=True)
                e["h1"].record(copy)
            consumer.wait_event(e["h1"])

        def enqueue_split(s, host_pair):
            # type: (int, torch.Tensor) -> None
            """Stage by stage, CUDA events between the stages: the per-stage breakdown."""
            upload(s, host_pair)
            e = ev[s]
            with torch.cuda.stream(compute):
                e["s0"].record(compute)
                with stage_range("stack", prof):
                    g_stack.replay()
                e["s1"].record(compute)
                with stage_range("preprocess", prof):
                    g_pre[s].replay()
                e["p1"].record(compute)
                with stage_range("inference", prof):
                    if foreign:
                        compute.synchronize()
                    out = be.run()
                e["i1"].record(compute)
                with stage_range("d2h", prof):
                    out_host[s].copy_(out, non_blocking=True)
                e["d1"].record(compute)

        def split_stages(p):
            # type: (int) -> dict
            e = ev[p]
            return {
                "capture": cap_ms[p],
                "h2d": e["h0"].elapsed_time(e["h1"]),
                "stack": e["s0"].elapsed_time(e["s1"]),
                "preprocess": e["s1"].elapsed_time(e["p1"]),
                "inference": e["p1"].elapsed_time(e["i1"]),
                "d2h": e["i1"].elapsed_time(e["d1"]),
            }

        if not (be.uses_graph and hasattr(be, "forward_static")):
            self._loop(m, capture, enqueue_split, split_stages, ev, out_host, pairs, t_cap)
            return

        # Graph backends: a short split pass first gives the per-stage breakdown (stages cannot
        # be timed inside a graph); FPS and latency come from the overlapped run after it.
        breakdown = Measurement(RunPolicy(0.1, min(200, m.policy.min_iters), 0.0))
        self._loop(breakdown, capture, enqueue_split, split_stages, ev, out_host, pairs, t_cap)
        enqueue_fused = self._overlapped(be, dev_pair, pool_w, upload, ev, out_host, compute)
        self.notes.append(
            "graph backend: two input buffers; stacking + preprocessing of frame i+1 (one graph, its own stream) "
            "overlap the inference graph of frame i; GPU stage times come from a split pass of %d frames"
            % len(breakdown.latencies)
        )
        gpu_means = dict(
            (k, float(np.mean(breakdown.stages[k]))) for k in ("h2d", "stack", "preprocess", "inference", "d2h")
        )

        def fused_stages(p):
            # type: (int) -> dict
            return {"capture": cap_ms[p]}

        self._loop(m, capture, enqueue_fused, fused_stages, ev, out_host, pairs, t_cap)
        for k, v in gpu_means.items():
            m.stages[k] = [v]

    def _overlapped(self, be, dev_pair, pool_w, upload, ev, out_host, compute):
        # type: (object, list, torch.Tensor, object, list, list, torch.cuda.Stream) -> object
        """Graphs and the enqueue function of the overlapped run (graph backends).

        Frame i uses input buffer i % 2. Its stacking (the previous frame's pooled pair, in the
        other buffer's time-t slots, moves to this buffer's t-1 slots) and preprocessing run as
        one graph on a ``prep`` stream, so they overlap the inference graph of frame i-1 on the
        compute stream. Hazards: buffer i % 2 and upload slot i % 2 were last used by frame i-2,
        which the host loop has synchronised before it enqueues frame i; the other buffer's t
        slots were written by frame i-1's preprocessing, earlier on the same prep stream.
        """
        prof = self.profile
        meta = be.inputs[1]
        xin = [be.inputs[0], torch.empty_like(be.inputs[0])]
        xin[1].copy_(xin[0])
        xs = [z2.input_slots(x) for x in xin]
        prep = torch.cuda.Stream()

        def prep_fn(s):
            # type: (int) -> None
            xs[s][:, :, 0].copy_(xs[1 - s][:, :, 1])
            z2.preprocess_pair_into(dev_pair[s], xs[s], pool_w)

        torch.cuda.synchronize()
        with torch.no_grad(), torch.cuda.stream(prep):  # warm-up (a compiled forward on the new buffer too)
            for s in (0, 1, 0, 1):
                prep_fn(s)
                be.forward(xin[s], meta)
        torch.cuda.synchronize()
        g_prep = [torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()]
        g_inf = [torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()]
        g_out = [None, None]  # type: list
        for s in (0, 1):
            with torch.no_grad(), capturing(g_prep[s], stream=prep):
                prep_fn(s)
            with torch.no_grad(), capturing(g_inf[s], stream=compute):
                g_out[s] = be.forward(xin[s], meta)
        torch.cuda.synchronize()

        def enqueue(s, host_pair):
            # type: (int, torch.Tensor) -> None
            e = ev[s]
            upload(s, host_pair, prep)
            with torch.cuda.stream(prep):
                with stage_range("stack_preprocess", prof):
                    g_prep[s].replay()
                e["p1"].record(prep)
            compute.wait_event(e["p1"])
            with torch.cuda.stream(compute):
                with stage_range("inference", prof):
                    g_inf[s].replay()
                with stage_range("d2h", prof):
                    out_host[s].copy_(g_out[s], non_blocking=True)
                e["d1"].record(compute)

        return enqueue

    def _loop(self, m, capture, enqueue, stages_of, ev, out_host, pairs, t_cap):
        # type: (Measurement, object, object, object, list, list, list, list) -> None
        """Capture frame i while frame i-1 is on the GPU; finish (postprocess) i-1 after enqueueing i."""
        prof = self.profile
        clock = time.perf_counter
        m.restart()  # set-up (graph capture, a breakdown pass) is not warm-up
        enqueue(0, capture(0))  # frame 0 only fills the t-1 slots
        i = 1
        while True:
            s = i % 2
            p = 1 - s
            enqueue(s, capture(s))
            ev[p]["d1"].synchronize()
            t0 = clock()
            with stage_range("postprocess", prof):
                host = out_host[p].float().numpy()
                self.last_steering = self.post(host)
            t_end = clock()
            if i > 1:  # frame i-1 had a real previous frame
                st = stages_of(p)
                st["postprocess"] = (t_end - t0) * 1000.0
                m.add((t_end - t_cap[p]) * 1000.0, st)
            done = m.done()
            if done or self.sample_due(i):  # frame i against the reference (waits for it: a sampled frame only)
                ev[s]["d1"].synchronize()
                self.probes.append((np.array(pairs[p]), np.array(pairs[s]), out_host[s].float().numpy().copy()))
            if done:
                break
            i += 1
        torch.cuda.synchronize()
