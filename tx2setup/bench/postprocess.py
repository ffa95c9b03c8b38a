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
    """(1, N, 5 + C) -> boxes (K, 4) in frame pixels, scores (K,), labels (K,) after NMS.

    Also ``index`` (each kept box's row in the output) and ``candidates``: every row over the
    confidence threshold before NMS (row, boxes in frame pixels, the boxes NMS saw, scores,
    labels), so compare() can check the network's output row by row and tell an NMS decision
    that flipped at its threshold from a wrong box."""
    pred = np.asarray(out, dtype=np.float64).reshape(-1, np.asarray(out).shape[-1])
    cls = pred[:, 5:]
    labels = np.argmax(cls, axis=1)
    scores = pred[:, 4] * cls[np.arange(len(cls)), labels]
    ok = np.isfinite(scores) & (scores > card.conf_threshold)
    rows = np.nonzero(ok)[0].astype(np.int64)
    pred, scores, labels = pred[ok], scores[ok], labels[ok]
    xy, wh = pred[:, :2], pred[:, 2:4] / 2.0
    net_boxes = np.concatenate((xy - wh, xy + wh), axis=1)
    keep = nms(net_boxes + (labels * MAX_WH)[:, None], scores, card.iou_threshold, use_torchvision)[:MAX_DET]
    sy, sx, top, left, _, _ = letterbox_geometry(
        frame_hw[0], frame_hw[1], card.height, card.width, card.resize == "letterbox"
    )
    boxes = (net_boxes - np.array([left, top, left, top], dtype=np.float64)) / np.array([sx, sy, sx, sy])
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, frame_hw[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, frame_hw[0])
    labels = labels.astype(np.int64)
    candidates = {"index": rows, "boxes": boxes, "net_boxes": net_boxes, "scores": scores, "labels": labels}
    candidates["class_scores"] = pred[:, 4:5] * pred[:, 5:]  # objectness x each class: a label's near-ties
    return {
        "boxes": boxes[keep].reshape(-1, 4),
        "scores": scores[keep],
        "labels": labels[keep],
        "index": rows[keep],
        "candidates": candidates,
    }


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
    Results of decode_yolo carry their candidates (the rows over the threshold, before NMS):
    those are held to that rule row by row (the same row of the output on both sides), and the
    boxes NMS kept may then differ only where NMS decided at its edge (_compare_nms).
    Classes: labels equal, in order; scores within ``score_tol`` x max(1, |ref|).
    """
    if "candidates" in ref and "candidates" in got:
        why = _compare_boxes(ref["candidates"], got["candidates"], score_tol, card.conf_threshold, iou_min, True)
        return why or _compare_nms(ref, got, score_tol, card.conf_threshold, card.iou_threshold)
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


def _compare_boxes(ref, got, tol, conf, iou_min, by_row=False):
    # type: (dict, dict, float, float, float, bool) -> object
    """Every reference box matched by a box of ``got``; ``by_row``: only by the box of the same
    output row (candidates of decode_yolo), else by any unused box."""
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
            and _same_label(ref, got, i, j, tol)
            and ious[i, j] >= iou_min
            and abs(got["scores"][j] - ref["scores"][i]) <= tol
            and (not by_row or got["index"][j] == ref["index"][i])
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


def _same_label(ref, got, i, j, tol):
    # type: (dict, dict, int, int, float) -> bool
    """Labels equal, or (decode_yolo candidates) the other label's score is within ``tol`` of the
    best in the reference: two classes tied within the tolerance may come out either way (an
    fp16 run on an H100 took class 1 at 0.8833 against 0.8829 for class 0)."""
    if got["labels"][j] == ref["labels"][i]:
        return True
    if "class_scores" not in ref:
        return False
    return bool(ref["class_scores"][i][int(got["labels"][j])] >= ref["scores"][i] - tol)


def _side(c, pos, i, j):
    # type: (dict, dict, int, int) -> tuple
    """(IoU of rows i and j as NMS saw them, whether i scored above j) on one side, or None."""
    if i not in pos or j not in pos:
        return None
    a, b = pos[i], pos[j]
    # class-aware NMS: rows of different labels never suppress each other
    iou = box_iou(c["net_boxes"][a], c["net_boxes"][b])[0, 0] if c["labels"][a] == c["labels"][b] else 0.0
    return iou, c["scores"][a] > c["scores"][b]


def _decides_at_edge(r, g, thr):
    # type: (object, object, float) -> bool
    """Whether NMS's decision between two rows can differ legitimately between the sides: one of
    them is a candidate on one side only (at the confidence edge), their overlap crosses the
    threshold, or their score order swaps while they overlap."""
    if r is None or g is None:
        return True
    return (r[0] > thr) != (g[0] > thr) or (r[1] != g[1] and max(r[0], g[0]) > thr)


def _compare_nms(ref, got, tol, conf, thr):
    # type: (dict, dict, float, float, float) -> object
    """The rows NMS kept on each side, once the candidates agree (_compare_boxes by row).

    NMS is discontinuous: a difference within the tolerance can move an overlap across the IoU
    threshold or swap two scores, and then a different box survives (on an H100 the fp16
    backends lost one box of the test detector this way; tests/bench/test_user_model_post.py).
    NMS's result is a function of each overlapping pair's two inputs (IoU over the threshold,
    score order): a row kept on one side only passes when a same-label row overlapping it
    (IoU > threshold on either side) decided at that edge, changed label within the tolerance,
    or was itself kept on one side only and passed (the cascade of one flip). Any other
    difference fails."""
    rc, gc = ref["candidates"], got["candidates"]
    rpos = dict((int(r), p) for p, r in enumerate(rc["index"]))
    gpos = dict((int(r), p) for p, r in enumerate(gc["index"]))
    label = dict((r, int(gc["labels"][p])) for r, p in gpos.items())
    label.update((r, int(rc["labels"][p])) for r, p in rpos.items())
    # labels tied within tol came out differently (_same_label accepted them): either side
    relabelled = set(r for r in rpos if r in gpos and int(gc["labels"][gpos[r]]) != label[r])
    score = dict((r, float(gc["scores"][p])) for r, p in gpos.items())
    score.update((r, float(rc["scores"][p])) for r, p in rpos.items())
    kept_r, kept_g = set(int(r) for r in ref["index"]), set(int(r) for r in got["index"])
    flips = sorted(kept_r ^ kept_g)
    # a row that is a candidate on one side only, or within tol of the confidence threshold, may
    # fall either side already (_compare_boxes)
    explained = set(r for r in flips if r not in rpos or r not in gpos or score[r] <= conf + tol or r in relabelled)
    grew = True
    while grew:
        grew = False
        for i in flips:
            if i in explained:
                continue
            for j in label:
                if j == i:
                    continue
                r, g = _side(rc, rpos, i, j), _side(gc, gpos, i, j)
                if max(x[0] if x is not None else 0.0 for x in (r, g)) <= thr:
                    continue  # no overlap of the same label on either side: j cannot decide i
                if j in explained or j in relabelled or _decides_at_edge(r, g, thr):
                    explained.add(i)
                    grew = True
                    break
    for i in flips:
        if i not in explained:
            c, p = (rc, rpos[i]) if i in kept_r else (gc, gpos[i])
            return (
                "box %s (label %d, score %.3f) kept by NMS in %s only, and no overlapping box decided at NMS's edge"
                % (
                    np.round(c["boxes"][p], 1).tolist(),
                    label[i],
                    score[i],
                    "the reference" if i in kept_r else "this backend",
                )
            )
    return None
