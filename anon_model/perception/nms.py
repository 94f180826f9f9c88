"""Greedy non-maximum suppression computed exactly as torchvision's ``nms`` / ``batched_nms`` compute it.

Importing torchvision loads all its models and torch._dynamo (about 1.3 s of CPU), more than the rest of detection
costs to start; these few lines spare the detector that import. ``tests/test_startup.py`` checks them against
torchvision on boxes with tied scores.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only nms_one_image needs torch: the face search's merge (numpy) stays light to import
    import torch

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


def nms_one_image(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """``torchvision.ops.batched_nms`` for boxes that all belong to one image (one class): the same indices in the
    same order, including its re-sort by score when there are many boxes."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    keep = torch.from_numpy(nms(boxes.cpu().numpy(), scores.cpu().numpy(), iou)).to(boxes.device)
    if boxes.numel() > _VANILLA_ABOVE:
        keep = keep.sort().values
        keep = keep[scores[keep].sort(descending=True)[1]]
    return keep
