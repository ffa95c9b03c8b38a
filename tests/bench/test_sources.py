"""Each capture source on small inputs."""

from __future__ import annotations

import glob
import time

import numpy as np
import pytest

from tx2setup.bench.errors import BenchUsageError
from tx2setup.bench.sources import GstSource, SyntheticZed, V4l2Camera, VideoFile, parse_source, write_y4m

H, W = 24, 32  # per camera; a side-by-side frame is 24 x 64


def _gst_available():
    try:
        GstSource.gst()
    except BenchUsageError:
        return False
    return True


def test_synthetic_frames_are_distinct_pairs_and_paced():
    src = SyntheticZed(fps=0, pool=3, seed=1, height=H, width=W)
    src.open()
    frames = [src.capture() for _ in range(4)]
    assert frames[0].shape == (2, H, W, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])
    assert frames[3] is frames[0]  # the pool cycles
    paced = SyntheticZed(fps=200, height=H, width=W)
    paced.open()
    t0 = time.perf_counter()
    for _ in range(11):
        paced.capture()
    assert time.perf_counter() - t0 >= 10 / 200 * 0.95  # 10 frame intervals at 200 fps


def test_synthetic_uses_the_given_allocator():
    made = []

    def alloc(shape):
        a = np.zeros(shape, np.uint8)
        made.append(a)
        return a

    src = SyntheticZed(pool=2, height=H, width=W)
    src.set_allocator(alloc)
    src.open()
    assert src.capture() is made[0] and made[0].any()


def _side_by_side(n):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (H, 2 * W, 3), dtype=np.uint8) for _ in range(n)]


def test_y4m_video_round_trips_and_loops(tmp_path):
    frames = _side_by_side(3)
    path = tmp_path / "clip.y4m"
    write_y4m(str(path), frames)
    src = VideoFile(str(path), height=H, width=W)
    src.open()
    got = [src.capture() for _ in range(4)]
    src.close()
    assert src.reader == "y4m"
    left, right = frames[1][:, :W], frames[1][:, W:]
    # YUV 4:4:4 with 8-bit rounding both ways: within a few levels
    assert np.abs(got[1][0].astype(int) - left).max() <= 3
    assert np.abs(got[1][1].astype(int) - right).max() <= 3
    assert np.array_equal(got[3], got[0])  # looped


def test_npy_video_and_resize(tmp_path):
    frames = np.stack(_side_by_side(2))
    path = tmp_path / "clip.npy"
    np.save(path, frames)
    src = VideoFile(str(path), height=H // 2, width=W // 2)  # nearest-neighbour resize
    src.open()
    pair = src.capture()
    assert pair.shape == (2, H // 2, W // 2, 3)
    assert np.array_equal(pair[0], frames[0][::2, :W:2])
    assert np.array_equal(pair[1], frames[0][::2, W::2])


@pytest.mark.skipif(not _gst_available(), reason="PyGObject/GStreamer not installed (scripts/setup.sh installs them)")
def test_gstreamer_videotestsrc():
    desc = f"videotestsrc pattern=red num-buffers=5 ! video/x-raw,width={2 * W},height={H}"
    src = GstSource(desc, height=H, width=W)
    src.open()
    try:
        pair = src.capture()
    finally:
        src.close()
    assert pair.shape == (2, H, W, 3)
    r, g, b = (pair[..., i].mean() for i in range(3))
    assert r > 200 and g < 40 and b < 40  # the red test pattern, in RGB order


@pytest.mark.skipif(not _gst_available(), reason="PyGObject/GStreamer not installed (scripts/setup.sh installs them)")
def test_video_file_decoded_through_gstreamer_when_cv2_is_missing(tmp_path, monkeypatch):
    import sys

    Gst = GstSource.gst()
    path = tmp_path / "clip.avi"
    pipe = Gst.parse_launch(
        f"videotestsrc pattern=blue num-buffers=3 ! video/x-raw,width={2 * W},height={H} "
        f"! jpegenc ! avimux ! filesink location={path}"
    )
    pipe.set_state(Gst.State.PLAYING)
    msg = pipe.get_bus().timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS
    monkeypatch.setitem(sys.modules, "cv2", None)  # force the GStreamer reader
    src = VideoFile(str(path), height=H, width=W)
    src.open()
    try:
        pairs = [src.capture() for _ in range(4)]  # one more than the file has: loops
    finally:
        src.close()
    assert src.reader == "gstreamer"
    assert pairs[3].shape == (2, H, W, 3) and pairs[3][..., 2].mean() > 150  # blue (JPEG-lossy)


@pytest.mark.skipif(not glob.glob("/dev/video*"), reason="no V4L2 device (/dev/video*) on this machine")
def test_v4l2_camera():
    pytest.importorskip("cv2")
    src = V4l2Camera(sorted(glob.glob("/dev/video*"))[0], height=H, width=W)
    src.open()
    try:
        assert src.capture().shape == (2, H, W, 3)
    finally:
        src.close()


def test_v4l2_missing_device_is_a_usage_error():
    with pytest.raises(BenchUsageError):
        V4l2Camera("/dev/video-none").open()


@pytest.mark.parametrize("text", ["webcam", "video:", "synthetic:fast", "gst:"])
def test_bad_source_strings(text):
    with pytest.raises(BenchUsageError):
        parse_source(text)


class FakeCv2:
    """A stand-in for the cv2 module (cv2 is not installed here): VideoCapture over a list of
    BGR frames, with cv2's isOpened/read/set/get/release behaviour (read -> (False, None) at
    the end; CAP_PROP_POS_FRAMES rewinds)."""

    CAP_V4L2 = 200
    CAP_PROP_POS_FRAMES = 1
    CAP_PROP_FRAME_WIDTH = 3
    CAP_PROP_FRAME_HEIGHT = 4

    def __init__(self, frames, openable=True):
        self.frames, self.openable, self.opened = frames, openable, []

    def VideoCapture(self, path, api=None):
        cap = _FakeCapture(self, path, api)
        self.opened.append(cap)
        return cap


class _FakeCapture:
    def __init__(self, cv2, path, api):
        self.cv2, self.path, self.api = cv2, path, api
        self.pos, self.props, self.released = 0, {}, False

    def isOpened(self):
        return self.cv2.openable and not self.released

    def read(self):
        if self.pos >= len(self.cv2.frames):
            return False, None
        frame = self.cv2.frames[self.pos]
        self.pos += 1
        return True, frame.copy()

    def set(self, prop, value):
        self.props[prop] = value
        if prop == FakeCv2.CAP_PROP_POS_FRAMES:
            self.pos = int(value)
        return True

    def get(self, prop):
        return float(self.props.get(prop, 0))

    def release(self):
        self.released = True


def _bgr_frames(n):
    # distinct, known colours: left half B=10*i, right half R=200; BGR order as cv2 gives
    frames = []
    for i in range(n):
        f = np.zeros((H, 2 * W, 3), np.uint8)
        f[:, :W, 0] = 10 * (i + 1)  # blue, left camera
        f[:, W:, 2] = 200  # red, right camera
        frames.append(f)
    return frames


def test_video_file_through_cv2_converts_bgr_and_loops(tmp_path, monkeypatch):
    import sys

    fake = FakeCv2(_bgr_frames(2))
    monkeypatch.setitem(sys.modules, "cv2", fake)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"stand-in")
    src = VideoFile(str(path), height=H, width=W)
    src.open()
    pairs = [src.capture() for _ in range(3)]  # 2 frames, then it loops
    src.close()
    assert src.reader == "cv2" and fake.opened[0].released
    assert pairs[0].shape == (2, H, W, 3)
    assert pairs[0][0, ..., 2].min() == 10 and pairs[0][0, ..., 0].max() == 0  # BGR -> RGB: blue is channel 2
    assert pairs[0][1, ..., 0].min() == 200  # right camera red -> RGB channel 0
    assert pairs[1][0, ..., 2].min() == 20
    assert np.array_equal(pairs[2], pairs[0])  # looped through CAP_PROP_POS_FRAMES
    fake.openable = False
    with pytest.raises(BenchUsageError, match="cv2 could not open it"):
        VideoFile(str(path), height=H, width=W).open()


def test_v4l2_camera_through_a_cv2_stand_in(tmp_path, monkeypatch):
    import sys

    fake = FakeCv2(_bgr_frames(2))
    monkeypatch.setitem(sys.modules, "cv2", fake)
    dev = tmp_path / "video0"  # the device node must exist; a file stands in for it
    dev.write_bytes(b"")
    src = parse_source(f"v4l2:{dev}", height=H, width=W)
    src.open()
    cap = fake.opened[0]
    assert cap.api == FakeCv2.CAP_V4L2
    assert cap.get(FakeCv2.CAP_PROP_FRAME_WIDTH) == 2 * W and cap.get(FakeCv2.CAP_PROP_FRAME_HEIGHT) == H
    pair = src.capture()
    assert pair.shape == (2, H, W, 3) and pair[0, ..., 2].min() == 10 and pair[1, ..., 0].min() == 200
    src.capture()
    with pytest.raises(BenchUsageError, match="read failed"):  # a camera does not loop
        src.capture()
    src.close()
    assert cap.released
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(BenchUsageError, match="needs OpenCV"):
        V4l2Camera(str(dev)).open()


_UNWIND_SCRIPT = """
import sys
import torch
from torch import nn
from tx2setup.bench import cli, sources
if sys.argv[2] == "without-fix":
    sources.gcc_unwinder_first = lambda: None
sources.GstSource.gst()  # loads libgstreamer, and with it libunwind.so.8
net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
torch.jit.trace(net, torch.zeros(1, 3, 16, 16)).save(sys.argv[1])
argv = ["--model", sys.argv[1], "--input-shape", "input=1x3x16x16", "--backends", "ort-cpu"]
sys.exit(cli.main(argv + ["--warmup", "0", "--min-iters", "3", "--duration", "0", "--no-telemetry", "--quiet"]))
"""


@pytest.mark.skipif(not _gst_available(), reason="PyGObject/GStreamer not installed (scripts/setup.sh installs them)")
def test_gstreamer_then_a_torchscript_export_to_onnx_does_not_abort(tmp_path):
    """libgstreamer links libunwind; loaded first, it broke C++ exceptions bound later (the ONNX
    export aborted the process under onnxruntime's exception translator). GstSource.gst() puts
    libgcc_s's unwinder first; a child process, so an abort fails this test instead of the run."""
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    env = {**__import__("os").environ, "TX2SETUP_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-c", _UNWIND_SCRIPT, str(tmp_path / "m.pt"), "with-fix"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
