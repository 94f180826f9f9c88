"""Greedy non-maximum suppression computed exactly as torchvision's ``nms`` / ``batched_nms`` compute it.

Importing torchvision loads all its models and torch._dynamo (about 1.3 s of CPU), more than the rest of detection
costs to start; these few lines spare the detector that import. ``tests/test_startup.py`` checks them against
torchvision on boxes with tied scores.
"""
from __future__ import annotations

import numpy as np

#: torchvision's CPU ``batched_nms`` switches from its offset trick to a per-class loop above this many coordinates.
_VANILLA_ABOVE = 4000


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (N,4: x0, y0, x1, y1) kept, by decreasing score: each suppresses the lower-scored boxes
    overlapping it by more than `iou` (float32 arithmetic and a stable sort, as torchvision's CPU kernel)."""
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        h = np.maximum(np.float32(0), np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(overlap.astype(np.float64) > iou)]
    return np.asarray(keep, np.int64)


def nms_one_image(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """``torchvision.ops.batched_nms`` for boxes (N,4) that all belong to one image (one class): the same indices,
    including its re-sort by score when there are many boxes (ties then stay in index order, where torch's sort
    leaves them in no set order)."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    keep = nms(boxes, scores, iou)
    if boxes.size > _VANILLA_ABOVE:
        keep = np.sort(keep)
        keep = keep[np.argsort(-np.asarray(scores)[keep], kind="stable")]
    return keep
