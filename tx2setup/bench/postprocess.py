"""Output handling of a user model (modelcard.ModelCard.output) and the postprocessed-output check.

- ``argmax`` / ``topk:K``: output (1, classes) -> the K best class indices and their values.
- ``yolo``: output (1, boxes, 5 + classes) as YOLOv5's Detect head gives it at inference
  (cx, cy, w, h in input pixels, objectness, class scores; ultralytics/yolov5 models/yolo.py
  Detect.forward, ``self.no = nc + 5``) -> score = objectness x best class score (as its
  utils/general.py non_max_suppression does), a confidence filter, then class-aware NMS, and
  the boxes mapped back from the network input to the frame (undoing letterbox or resize).

NMS uses ``torchvision.ops.nms`` when torchvision imports (boxes x1,y1,x2,y2, drops boxes with
IoU > threshold, indices by decreasing score: https://pytorch.org/vision/stable/generated/torchvision.ops.nms.html)
and the numpy greedy loop below otherwise (the same rule; tests/bench/test_user_model_post.py).
"""

import numpy as np

MAX_DET = 300  # YOLOv5 non_max_suppression's max_det
MAX_WH = 7680.0  # YOLOv5's class offset: boxes of different classes never overlap after it
DEGENERATE_PX = 1.0  # compare(): zero-area boxes (clipped to an edge) match within this many pixels


def letterbox_geometry(frame_h, frame_w, net_h, net_w, letterbox):
    # type: (int, int, int, int, bool) -> tuple
    """(scale_y, scale_x, pad_top, pad_left, new_h, new_w): frame -> network input coordinates."""
    if not letterbox:
        return net_h / float(frame_h), net_w / float(frame_w), 0, 0, net_h, net_w
    r = min(net_h / float(frame_h), net_w / float(frame_w))
    new_h, new_w = int(frame_h * r + 0.5), int(frame_w * r + 0.5)
    top, left = (net_h - new_h) // 2, (net_w - new_w) // 2
    return new_h / float(frame_h), new_w / float(frame_w), top, left, new_h, new_w


def box_iou(a, b):
    # type: (np.ndarray, np.ndarray) -> np.ndarray
    """IoU of every box in a (N, 4) with every box in b (M, 4), x1 y1 x2 y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms_numpy(boxes, scores, iou_threshold):
    # type: (np.ndarray, np.ndarray, float) -> np.ndarray
    """Greedy NMS: keep the best box, drop the rest with IoU > threshold with it, repeat."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def nms(boxes, scores, iou_threshold, use_torchvision=True):
    # type: (np.ndarray, np.ndarray, float, bool) -> np.ndarray
    if use_torchvision:
        try:
            import torch
            import torchvision

            keep = torchvision.ops.nms(
                torch.from_numpy(np.asarray(boxes, dtype=np.float32)),
                torch.from_numpy(np.asarray(scores, dtype=np.float32)),
                float(iou_threshold),
            )
            return keep.numpy()
        except (ImportError, RuntimeError, AttributeError):
            pass  # no torchvision, or one built without its C++ ops
    return nms_numpy(boxes, scores, iou_threshold)


def classify(out, k):
    # type: (np.ndarray, int) -> dict
    """The k best classes (index order on ties), best first, and their output values."""
    row = np.asarray(out, dtype=np.float64).reshape(-1)
    idx = np.argsort(-row, kind="stable")[:k]
    return {"labels": [int(i) for i in idx], "scores": [float(row[i]) for i in idx]}


def decode_yolo(out, card, frame_hw, use_torchvision=True):
    # type: (np.ndarray, object, tuple, bool) -> dict
    """(1, N, 5 + C) -> boxes (K, 4) in frame pixels, scores (K,), labels (K,)."""
    pred = np.asarray(out, dtype=np.float64).reshape(-1, np.asarray(out).shape[-1])
    cls = pred[:, 5:]
    labels = np.argmax(cls, axis=1)
    scores = pred[:, 4] * cls[np.arange(len(cls)), labels]
    ok = np.isfinite(scores) & (scores > card.conf_threshold)
    pred, scores, labels = pred[ok], scores[ok], labels[ok]
    xy, wh = pred[:, :2], pred[:, 2:4] / 2.0
    boxes = np.concatenate((xy - wh, xy + wh), axis=1)
    keep = nms(boxes + (labels * MAX_WH)[:, None], scores, card.iou_threshold, use_torchvision)[:MAX_DET]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    sy, sx, top, left, _, _ = letterbox_geometry(
        frame_hw[0], frame_hw[1], card.height, card.width, card.resize == "letterbox"
    )
    boxes = (boxes - np.array([left, top, left, top], dtype=np.float64)) / np.array([sx, sy, sx, sy])
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, frame_hw[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, frame_hw[0])
    return {"boxes": boxes.reshape(-1, 4), "scores": scores, "labels": labels.astype(np.int64)}


def make_postprocess(card):
    # type: (object) -> object
    """``post(out_host, frame_hw) -> result`` for the card's output kind (None for ``none``)."""
    if card.output == "yolo":
        return lambda out, hw: decode_yolo(out, card, hw)
    if card.topk:
        k = card.topk
        return lambda out, hw: classify(out, k)
    return lambda out, hw: {"raw": np.asarray(out, dtype=np.float64)}


def compare(ref, got, score_tol, card, iou_min=0.9):
    # type: (dict, dict, float, object, float) -> object
    """None when ``got`` matches the reference's postprocessed output, else why not.

    Boxes: each reference box needs an unused box of the same label with IoU >= ``iou_min`` and
    a score within ``score_tol``; a box whose score is within ``score_tol`` of the confidence
    threshold may be missing on either side (it can fall either side of it legitimately).
    Classes: labels equal, in order; scores within ``score_tol`` x max(1, |ref|).
    """
    if "boxes" in ref:
        return _compare_boxes(ref, got, score_tol, card.conf_threshold, iou_min)
    if "labels" in ref:
        if list(ref["labels"]) != list(got["labels"]):
            return "labels %s, reference %s" % (list(got["labels"]), list(ref["labels"]))
        for r, g in zip(ref["scores"], got["scores"]):
            if not abs(r - g) <= score_tol * max(1.0, abs(r)):
                return "score %.6g, reference %.6g" % (g, r)
        return None
    r, g = ref["raw"], got["raw"]
    if r.shape != g.shape or not np.all(np.isfinite(g)):
        return "output shape %s / not finite" % (g.shape,)
    err = float(np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30))
    return None if err <= score_tol else "relative error %.3e" % err


def _compare_boxes(ref, got, tol, conf, iou_min):
    # type: (dict, dict, float, float, float) -> object
    used = np.zeros(len(got["scores"]), dtype=bool)
    ious = box_iou(ref["boxes"], got["boxes"])
    # Boxes clipped to the frame's edge can have zero area (YOLOv5 clips the same way and keeps
    # them: ultralytics/yolov5 utils/general.py clip_boxes); their IoU is 0 even with themselves,
    # so a zero-area pair matches when every coordinate is within DEGENERATE_PX.
    rb = np.asarray(ref["boxes"], dtype=np.float64).reshape(-1, 4)
    gb = np.asarray(got["boxes"], dtype=np.float64).reshape(-1, 4)
    flat_r = np.prod(rb[:, 2:] - rb[:, :2], axis=1) <= 0
    flat_g = np.prod(gb[:, 2:] - gb[:, :2], axis=1) <= 0
    near = np.abs(rb[:, None, :] - gb[None, :, :]).max(axis=2, initial=0.0) <= DEGENERATE_PX
    ious = np.where(flat_r[:, None] & flat_g[None, :] & near, 1.0, ious)
    for i in np.argsort(-np.asarray(ref["scores"]), kind="stable"):
        cand = [
            j
            for j in range(len(used))
            if not used[j]
            and got["labels"][j] == ref["labels"][i]
            and ious[i, j] >= iou_min
            and abs(got["scores"][j] - ref["scores"][i]) <= tol
        ]
        if cand:
            used[max(cand, key=lambda j: ious[i, j])] = True
        elif ref["scores"][i] > conf + tol:
            return "reference box %s (label %d, score %.3f) has no match with IoU >= %.2f" % (
                np.round(ref["boxes"][i], 1).tolist(),
                int(ref["labels"][i]),
                float(ref["scores"][i]),
                iou_min,
            )
    extra = [j for j in range(len(used)) if not used[j] and got["scores"][j] > conf + tol]
    if extra:
        j = extra[0]
        return "box %s (label %d, score %.3f) is not in the reference" % (
            np.round(got["boxes"][j], 1).tolist(),
            int(got["labels"][j]),
            float(got["scores"][j]),
        )
    return None
