"""``--write-video PATH``: annotated frames to a file, as the end-to-end pipeline's last stage.

OpenCV's VideoWriter when cv2 imports (fourcc MJPG for .avi, mp4v otherwise:
https://docs.opencv.org/4.x/dd/d43/tutorial_py_video_display.html), else a GStreamer
pipeline ``appsrc ! videoconvert ! jpegenc ! avimux ! filesink`` (Motion-JPEG in AVI, the
elements of gst-plugins-base/-good that JetPack ships). Frames come in RGB (H, W, 3) uint8.
Boxes are drawn with numpy (no cv2 needed); label text only where cv2 is present.
"""

import numpy as np

from .errors import BenchUsageError

COLORS = np.array(
    [[255, 56, 56], [56, 255, 56], [56, 56, 255], [255, 157, 151], [255, 178, 29], [72, 249, 10]], dtype=np.uint8
)


def _cv2():
    # type: () -> object
    try:
        import cv2

        return cv2
    except ImportError:
        return None


def annotate(frame, result, card, thickness=2):
    # type: (np.ndarray, dict, object, int) -> np.ndarray
    """A copy of ``frame`` with the boxes (and label text where cv2 is present) drawn on it."""
    img = np.array(frame, copy=True)
    h, w = img.shape[:2]
    cv2 = _cv2()
    if "boxes" in result:
        for box, label in zip(result["boxes"], result["labels"]):
            x1, y1, x2, y2 = [int(np.floor(v + 0.5)) for v in box]
            x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
            y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
            c = COLORS[int(label) % len(COLORS)]
            t = thickness
            img[y1 : y1 + t, x1 : x2 + 1] = c
            img[max(y2 - t + 1, 0) : y2 + 1, x1 : x2 + 1] = c
            img[y1 : y2 + 1, x1 : x1 + t] = c
            img[y1 : y2 + 1, max(x2 - t + 1, 0) : x2 + 1] = c
            if cv2 is not None:
                cv2.putText(img, card.label(int(label)), (x1, max(y1 - 3, 10)), 0, 0.4, tuple(int(v) for v in c), 1)
    elif result.get("labels"):
        top = int(result["labels"][0])
        if cv2 is not None:
            cv2.putText(img, card.label(top), (8, 24), 0, 0.8, (255, 255, 0), 2)
        else:  # a bar whose colour is the class: visible without a font
            img[: max(4, h // 40), :] = COLORS[top % len(COLORS)]
    return img


class VideoSink(object):
    """Opened on the first frame (its size is the source's), closed at the end of the run."""

    def __init__(self, path, fps=30.0):
        # type: (str, float) -> None
        self.path = path
        self.fps = fps
        self.frames = 0
        self.size = None  # type: object
        self.writer = ""
        self._impl = None  # type: object
        self._gst = None  # type: object

    def describe(self):
        # type: () -> dict
        return {"path": self.path, "frames": self.frames, "size": self.size, "writer": self.writer}

    def write(self, rgb):
        # type: (np.ndarray) -> None
        if self._impl is None:
            self._open(rgb.shape[0], rgb.shape[1])
        if self.writer == "cv2":
            self._impl.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        else:
            self._push(rgb)
        self.frames += 1

    def _open(self, h, w):
        # type: (int, int) -> None
        self.size = [w, h]
        cv2 = _cv2()
        if cv2 is not None:
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.lower().endswith(".avi") else "mp4v"))
            writer = cv2.VideoWriter(self.path, fourcc, float(self.fps), (w, h))
            if not writer.isOpened():
                raise BenchUsageError("--write-video %s: OpenCV cannot write it" % self.path)
            self.writer, self._impl = "cv2", writer
            return
        self._open_gst(h, w)

    def _open_gst(self, h, w):
        # type: (int, int) -> None
        from .sources import GstSource, _gst_quote

        Gst = GstSource.gst()
        caps = "video/x-raw,format=RGB,width=%d,height=%d,framerate=%d/1" % (w, h, int(self.fps + 0.5) or 30)
        text = "appsrc name=src format=time caps=%s ! videoconvert ! jpegenc ! avimux ! filesink location=%s" % (
            caps,
            _gst_quote(self.path),
        )
        try:
            pipe = Gst.parse_launch(text)
        except Exception as exc:  # GLib.Error: a missing element
            raise BenchUsageError("--write-video %s: %s" % (self.path, exc)) from None
        if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise BenchUsageError("--write-video %s: the GStreamer pipeline would not start" % self.path)
        self.writer, self._impl, self._gst = "gstreamer", pipe, Gst

    def _push(self, rgb):
        # type: (np.ndarray) -> None
        Gst = self._gst
        buf = Gst.Buffer.new_wrapped(np.ascontiguousarray(rgb).tobytes())
        duration = int(Gst.SECOND / (self.fps or 30.0))
        buf.pts = self.frames * duration
        buf.duration = duration
        self._impl.get_by_name("src").emit("push-buffer", buf)

    def close(self):
        # type: () -> None
        if self._impl is None:
            return
        if self.writer == "cv2":
            self._impl.release()
        else:
            Gst = self._gst
            self._impl.get_by_name("src").emit("end-of-stream")
            bus = self._impl.get_bus()
            bus.timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
            self._impl.set_state(Gst.State.NULL)
        self._impl = None
