"""Capture sources: each delivers ZED stereo pairs as uint8 arrays of shape (2, H, W, 3), RGB.

A ZED camera seen through V4L2/GStreamer/video gives one side-by-side image (left | right)
per frame; sources split it. A source whose images are another size is resized (nearest
neighbour) to H x 2W first, and that cost is part of the capture stage. Video sources loop
at the end of the file so a run can last as long as the statistics need.

``capture()`` returns an array that stays valid for at least two more captures (the
pipelines keep the previous pair for stacking): a slot of a fixed pool or a fresh array. ``zero_copy`` sources can place
their frames in memory the pipeline gives them (``set_allocator``): the optimized pipeline
passes pinned host memory, so those frames go to the GPU without an extra host copy.
"""

import os
import time

import numpy as np

from . import model as z2
from .errors import BenchUsageError


class Source(object):
    kind = ""
    zero_copy = False

    def __init__(self, height=z2.FRAME_H, width=z2.FRAME_W):
        # type: (int, int) -> None
        self.height = height
        self.width = width
        self.frames = 0

    def describe(self):
        # type: () -> dict
        return {"kind": self.kind, "height": self.height, "width": self.width}

    def set_allocator(self, alloc):
        # type: (object) -> None
        """``alloc(shape) -> uint8 ndarray``; only zero-copy sources use it."""

    def open(self):
        # type: () -> None
        """Start the device/pipeline/file."""

    def close(self):
        # type: () -> None
        """Release it."""

    def capture(self):
        # type: () -> np.ndarray
        raise NotImplementedError

    def to_pair(self, image):
        # type: (np.ndarray) -> np.ndarray
        """One side-by-side RGB image (h, w, 3) -> (2, H, W, 3)."""
        h, w = image.shape[:2]
        if (h, w) != (self.height, 2 * self.width):
            rows = (np.arange(self.height) * h // self.height).astype(np.intp)
            cols = (np.arange(2 * self.width) * w // (2 * self.width)).astype(np.intp)
            image = image[rows][:, cols]
        pair = image.reshape(self.height, 2, self.width, 3).transpose(1, 0, 2, 3)
        return np.ascontiguousarray(pair)


class SyntheticZed(Source):
    """Synthetic ZED stereo frames, as fast as possible (fps=0) or paced at ``fps``.

    A pool of distinct random pairs (seeded) is rendered once; each capture hands out the
    next one, as a camera driver hands out the buffer it DMA'd a frame into.
    """

    kind = "synthetic"
    zero_copy = True

    def __init__(self, fps=0.0, pool=8, seed=0, height=z2.FRAME_H, width=z2.FRAME_W):
        # type: (float, int, int, int, int) -> None
        super(SyntheticZed, self).__init__(height, width)
        if fps < 0:
            raise BenchUsageError("--source synthetic:FPS: fps must be >= 0")
        self.fps = fps
        self.pool_size = max(2, pool)
        self.seed = seed
        self._alloc = None  # type: object
        self._pool = []  # type: list
        self._t0 = 0.0

    def describe(self):
        # type: () -> dict
        d = super(SyntheticZed, self).describe()
        d["fps"] = self.fps or None
        return d

    def set_allocator(self, alloc):
        # type: (object) -> None
        self._alloc = alloc

    def open(self):
        # type: () -> None
        rng = np.random.RandomState(self.seed)
        self._pool = []
        for _ in range(self.pool_size):
            frame = rng.randint(0, 256, size=(2, self.height, self.width, 3)).astype(np.uint8)
            if self._alloc is not None:
                slot = self._alloc(frame.shape)
                slot[...] = frame
                frame = slot
            self._pool.append(frame)
        self._t0 = time.perf_counter()
        self.frames = 0

    def capture(self):
        # type: () -> np.ndarray
        if self.fps > 0:
            due = self._t0 + self.frames / self.fps
            while True:  # the camera's frame clock: wait for the next frame to exist
                left = due - time.perf_counter()
                if left <= 0:
                    break
                time.sleep(min(left, 0.001) if left > 0.002 else 0)
        frame = self._pool[self.frames % self.pool_size]
        self.frames += 1
        return frame


class Y4mVideo(object):
    """A pure-numpy reader of uncompressed YUV4MPEG2 (.y4m: C420*, C444, mono), looping."""

    def __init__(self, path):
        # type: (str) -> None
        self.path = path
        self._fh = open(path, "rb")  # noqa: SIM115 - held open across reads, closed by close()
        header = self._fh.readline().decode("ascii", "replace").split()
        if not header or header[0] != "YUV4MPEG2":
            raise BenchUsageError("%s: not a YUV4MPEG2 (.y4m) file" % path)
        fields = dict((tok[0], tok[1:]) for tok in header[1:] if tok)
        self.w, self.h = int(fields["W"]), int(fields["H"])
        self.chroma = fields.get("C", "420jpeg")
        if self.chroma.startswith("420"):
            self.cw, self.ch = (self.w + 1) // 2, (self.h + 1) // 2
        elif self.chroma.startswith("444"):
            self.cw, self.ch = self.w, self.h
        elif self.chroma == "mono":
            self.cw, self.ch = 0, 0
        else:
            raise BenchUsageError("%s: chroma C%s not supported (420*, 444, mono)" % (path, self.chroma))
        self._data_start = self._fh.tell()

    def read(self):
        # type: () -> np.ndarray
        line = self._fh.readline()
        if not line:
            self._fh.seek(self._data_start)
            line = self._fh.readline()
            if not line:
                raise BenchUsageError("%s: no frames" % self.path)
        if not line.startswith(b"FRAME"):
            raise BenchUsageError("%s: corrupt frame header" % self.path)
        ysize, csize = self.w * self.h, self.cw * self.ch
        raw = np.frombuffer(self._fh.read(ysize + 2 * csize), dtype=np.uint8)
        y = raw[:ysize].reshape(self.h, self.w).astype(np.float32)
        if csize == 0:
            return np.repeat(y.astype(np.uint8)[:, :, None], 3, axis=2)
        u = raw[ysize : ysize + csize].reshape(self.ch, self.cw).astype(np.float32) - 128.0
        v = raw[ysize + csize :].reshape(self.ch, self.cw).astype(np.float32) - 128.0
        if self.cw != self.w:
            u = u.repeat(2, 0).repeat(2, 1)[: self.h, : self.w]
            v = v.repeat(2, 0).repeat(2, 1)[: self.h, : self.w]
        # BT.601 full range (what ffmpeg writes for C420jpeg)
        rgb = np.stack((y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u), axis=2)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    def close(self):
        # type: () -> None
        self._fh.close()


def write_y4m(path, frames, fps=30):
    # type: (str, list, int) -> None
    """Write RGB frames (h, w, 3) as C444 YUV4MPEG2 (BT.601 full range); used by the tests."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(("YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C444\n" % (w, h, fps)).encode("ascii"))
        for f in frames:
            r, g, b = [f[:, :, i].astype(np.float32) for i in range(3)]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = (b - y) / 1.772 + 128.0
            v = (r - y) / 1.402 + 128.0
            fh.write(b"FRAME\n")
            for plane in (y, u, v):
                fh.write(np.clip(plane + 0.5, 0, 255).astype(np.uint8).tobytes())


class GstSource(Source):
    """A GStreamer pipeline ending in appsink (through PyGObject), RGB, pulled one sample per capture."""

    kind = "gstreamer"

    def __init__(self, description, height=z2.FRAME_H, width=z2.FRAME_W, loop=False):
        # type: (str, int, int, bool) -> None
        super(GstSource, self).__init__(height, width)
        self.description = description
        self.loop = loop
        self._pipeline = None  # type: object
        self._sink = None  # type: object

    def describe(self):
        # type: () -> dict
        d = super(GstSource, self).describe()
        d["pipeline"] = self.description
        return d

    @staticmethod
    def gst():
        # type: () -> object
        gcc_unwinder_first()
        try:
            import gi

            gi.require_version("Gst", "1.0")
            from gi.repository import Gst
        except (ImportError, ValueError) as exc:
            raise BenchUsageError("GStreamer source needs PyGObject with Gst 1.0 (%s)" % exc) from None
        Gst.init(None)
        return Gst

    def open(self):
        # type: () -> None
        Gst = self.gst()
        text = (
            self.description
            + " ! videoconvert ! video/x-raw,format=RGB ! appsink name=tx2sink sync=false max-buffers=2"
        )
        try:
            self._pipeline = Gst.parse_launch(text)
        except Exception as exc:  # GLib.Error: bad element or syntax
            raise BenchUsageError("--source gst:%s: %s" % (self.description, exc)) from None
        self._sink = self._pipeline.get_by_name("tx2sink")
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise BenchUsageError("--source gst:%s: the pipeline would not start" % self.description)
        self.frames = 0

    def capture(self):
        # type: () -> np.ndarray
        Gst = self.gst()
        sample = self._sink.emit("try-pull-sample", 5 * Gst.SECOND)
        if sample is None and self.loop:
            self._pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
            sample = self._sink.emit("try-pull-sample", 5 * Gst.SECOND)
        if sample is None:
            raise BenchUsageError("GStreamer source gave no frame within 5 s (%s)" % self.description)
        caps = sample.get_caps().get_structure(0)
        w, h = caps.get_value("width"), caps.get_value("height")
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            raise BenchUsageError("GStreamer buffer could not be mapped")
        try:
            data = np.frombuffer(info.data, dtype=np.uint8)
            stride = len(data) // h  # rows are padded to 4 bytes
            image = data[: stride * h].reshape(h, stride)[:, : w * 3].reshape(h, w, 3)
            pair = self.to_pair(image)
        finally:
            buf.unmap(info)
        self.frames += 1
        return pair

    def close(self):
        # type: () -> None
        if self._pipeline is not None:
            self._pipeline.set_state(self.gst().State.NULL)
            self._pipeline = None


def gcc_unwinder_first():
    # type: () -> None
    """Load libgcc_s's unwinder into the global symbol scope before GStreamer is loaded.

    libgstreamer-1.0 links libunwind.so.8, which exports ``_Unwind_*`` symbols too; loaded
    first, it wins the global lookup, and a C++ exception in a library bound later (onnxruntime's
    pybind11 exception translator, run on torch's ONNX export) unwinds with the wrong unwinder:
    the process aborts in ``__libunwind_Unwind_Resume``. Seen here with the test suite (gdb
    backtrace) and documented: ros2/rclpy issue 1149 (a crash once the GStreamer Python bindings
    are imported), eProsima/Fast-DDS issue 6330 (load libgcc_s first). Harmless where absent.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):  # not a glibc/libgcc system: nothing to order
        ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)


class VideoFile(Source):
    """A video file: .y4m/.npy read here, anything else through cv2 or else GStreamer decodebin."""

    kind = "video"

    def __init__(self, path, height=z2.FRAME_H, width=z2.FRAME_W):
        # type: (str, int, int) -> None
        super(VideoFile, self).__init__(height, width)
        if not os.path.isfile(path):
            raise BenchUsageError("--source video:%s: no such file" % path)
        self.path = path
        self.reader = ""
        self._impl = None  # type: object

    def describe(self):
        # type: () -> dict
        d = super(VideoFile, self).describe()
        d.update({"path": self.path, "reader": self.reader})
        return d

    def _flagged(self, exc):
        # type: (BaseException) -> BenchUsageError
        """One line naming the flag and the file (issue 16), whatever the reader said."""
        flag = "--source video:%s" % self.path
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if text.startswith(flag):
            return BenchUsageError(text)
        if text.startswith(self.path + ": "):
            text = text[len(self.path) + 2 :]
        return BenchUsageError("%s: %s" % (flag, text))

    def open(self):
        # type: () -> None
        self.frames = 0
        try:
            self._open()
        except (BenchUsageError, OSError, ValueError, KeyError, IndexError) as exc:
            # a broken .npy/.y4m header raises ValueError/KeyError from numpy or the parser
            raise self._flagged(exc) from None

    def _open(self):
        # type: () -> None
        if self.path.endswith(".y4m"):
            self.reader, self._impl = "y4m", Y4mVideo(self.path)
        elif self.path.endswith(".npy"):
            arr = np.load(self.path, mmap_mode="r")
            if arr.ndim != 4 or arr.shape[3] != 3 or arr.dtype != np.uint8:
                raise BenchUsageError("%s: expected uint8 frames of shape (N, H, W, 3)" % self.path)
            self.reader, self._impl = "npy", arr
        else:
            try:
                import cv2

                cap = cv2.VideoCapture(self.path)
                if not cap.isOpened():
                    raise BenchUsageError("%s: cv2 could not open it" % self.path)
                self.reader, self._impl = "cv2", cap
            except ImportError:
                uri = "filesrc location=%s ! decodebin" % _gst_quote(os.path.abspath(self.path))
                src = GstSource(uri, self.height, self.width, loop=True)
                src.open()
                self.reader, self._impl = "gstreamer", src

    def capture(self):
        # type: () -> np.ndarray
        try:
            return self._capture()
        except (BenchUsageError, OSError, ValueError) as exc:
            raise self._flagged(exc) from None

    def _capture(self):
        # type: () -> np.ndarray
        if self.reader == "y4m":
            image = self._impl.read()
        elif self.reader == "npy":
            image = np.asarray(self._impl[self.frames % len(self._impl)])
        elif self.reader == "cv2":
            ok, bgr = self._impl.read()
            if not ok:  # loop
                self._impl.set(1, 0)  # cv2.CAP_PROP_POS_FRAMES
                ok, bgr = self._impl.read()
                if not ok:
                    raise BenchUsageError("%s: no frames" % self.path)
            image = bgr[:, :, ::-1]
        else:
            self.frames += 1
            return self._impl.capture()
        self.frames += 1
        return self.to_pair(image)

    def close(self):
        # type: () -> None
        if self.reader in ("y4m", "gstreamer"):
            self._impl.close()
        elif self.reader == "cv2":
            self._impl.release()
        self._impl = None


def _gst_quote(path):
    # type: (str) -> str
    return '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')


class V4l2Camera(Source):
    """A V4L2 device through cv2 (a ZED shows up as one side-by-side UVC camera)."""

    kind = "v4l2"

    def __init__(self, device, height=z2.FRAME_H, width=z2.FRAME_W):
        # type: (str, int, int) -> None
        super(V4l2Camera, self).__init__(height, width)
        self.device = device
        self._cap = None  # type: object

    def describe(self):
        # type: () -> dict
        d = super(V4l2Camera, self).describe()
        d["device"] = self.device
        return d

    def open(self):
        # type: () -> None
        try:
            import cv2
        except ImportError:
            raise BenchUsageError("--source v4l2: needs OpenCV (python3-opencv / cv2)") from None
        if not os.path.exists(self.device):
            raise BenchUsageError("--source v4l2:%s: no such device" % self.device)
        cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise BenchUsageError("--source v4l2:%s: cv2 could not open it" % self.device)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, 2 * self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap
        self.frames = 0

    def capture(self):
        # type: () -> np.ndarray
        ok, bgr = self._cap.read()
        if not ok:
            raise BenchUsageError("--source v4l2:%s: read failed" % self.device)
        self.frames += 1
        return self.to_pair(bgr[:, :, ::-1])

    def close(self):
        # type: () -> None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def parse_source(text, seed=0, height=z2.FRAME_H, width=z2.FRAME_W):
    # type: (str, int, int, int) -> Source
    """synthetic | synthetic:FPS | video:PATH | gst:PIPELINE | v4l2:/dev/videoN."""
    kind, _, arg = text.partition(":")
    if kind == "synthetic":
        try:
            fps = float(arg) if arg else 0.0
        except ValueError:
            raise BenchUsageError("--source %s: FPS must be a number" % text) from None
        return SyntheticZed(fps=fps, seed=seed, height=height, width=width)
    if kind == "video" and arg:
        return VideoFile(arg, height, width)
    if kind == "gst" and arg:
        return GstSource(arg, height, width)
    if kind == "v4l2":
        return V4l2Camera(arg or "/dev/video0", height, width)
    raise BenchUsageError("--source %s: expected synthetic[:FPS], video:PATH, gst:PIPELINE or v4l2[:DEVICE]" % text)
