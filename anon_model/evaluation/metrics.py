"""Image-level measures of the paper's §4.1 that need no recognizer: SSIM (face crop and background), LPIPS, detection
overlap, landmark errors; and the border measures of a replaced face (seam, colour step; see ``naturalness.py``).

ReID / IDS (recognizers.py) and attribute preservation (attributes.py) are scored in ``evaluate.py`` from these parts.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Sequence

import numpy as np
import torch
from skimage.metrics import structural_similarity

from anon_model.attributes import landmark_box
from anon_model.fallback import box_iou
from anon_model.perception import landmarks68 as lm
from anon_model.perception.weights import hub_checkpoint
from anon_model.plausibility import landmark_nme

__all__ = ["MetricUnavailable", "ssim", "background_ssim", "load_lpips", "seam_strength", "border_colour_difference",
           "expression_nme", "pose_error", "percent", "load_hog_detector", "hog_score", "hog_found", "LPIPS_BACKBONE_FILE",
           "EXPRESSION_POINTS", "DETECTION_IOU", "HOG_FLOOR", "COLOUR_BAND"]

#: torchvision's ImageNet AlexNet weights, the backbone of LPIPS (net="alex"); the lpips package ships only its heads.
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
#: The points whose shape the pipeline promises to keep (GSA recovers the contour and mouth from S_x): jaw and mouth.
EXPRESSION_POINTS = np.r_[lm.JAW, lm.MOUTH]
#: A face counts as detected when a detection overlaps its box this much.
DETECTION_IOU = 0.5
#: dlib's HOG detector is asked for detections down to this score, so a face it nearly finds still has a score; it
#: finds a face at its own threshold, 0.
HOG_FLOOR = -1.0
#: Width of the colour bands either side of a replaced region's border, as a fraction of the region's size
#: (square root of its area): 12 px for a face region of 150 x 150. The band inside starts as far in, past the soft
#: edge where a blend still shows the original (the pipeline's feathering spans about 7 % of the face).
COLOUR_BAND = 0.08


class MetricUnavailable(RuntimeError):
    """A measure that cannot be computed here (its weights are missing); the message says what is needed."""


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 RGB images of the same size (skimage, per channel, data range 255)."""
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def background_ssim(a: np.ndarray, b: np.ndarray, regions: Sequence[tuple[int, int, int, int]]) -> float | None:
    """SSIM of two same-size uint8 RGB photos over the pixels outside every (x0, y0, x1, y1) face region (None when
    the faces cover the whole photo): whether a method leaves the rest of the photo alone."""
    _, local = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    keep = np.ones(a.shape[:2], bool)
    for x0, y0, x1, y1 in regions:
        keep[y0:y1, x0:x1] = False
    return float(local[keep].mean()) if keep.any() else None


def load_lpips(*, download: bool = False, device: str = "cpu") -> Callable[[np.ndarray, np.ndarray], float]:
    """LPIPS (AlexNet) as f(a, b) on uint8 RGB images; raises MetricUnavailable rather than use random backbone weights."""
    if importlib.util.find_spec("lpips") is None:
        raise MetricUnavailable("unavailable (pip install lpips; also needs ImageNet AlexNet weights)")
    if hub_checkpoint(LPIPS_BACKBONE_FILE) is None and not download:
        raise MetricUnavailable(f"unavailable (needs ImageNet AlexNet/VGG weights: torch hub checkpoints/{LPIPS_BACKBONE_FILE}; "
                                "--download fetches them)")
    import lpips

    net = lpips.LPIPS(net="alex", pretrained=True, verbose=False).to(device).eval()

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        x = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0
        with torch.inference_mode():
            return float(net(x[:1], x[1:]).item())

    return distance


def load_hog_detector(upsample: int = 1) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """dlib's HOG face detector (built into dlib, not used by the pipeline) as f(uint8 RGB) -> (N, 4) boxes and (N,)
    scores down to ``HOG_FLOOR``; its boxes frame the face like the 68 landmarks do (brows to chin), so compare them
    with ``landmark_box`` (``hog_score`` does)."""
    import dlib

    detector = dlib.get_frontal_face_detector()

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, scores, _ = detector.run(np.ascontiguousarray(image), upsample, HOG_FLOOR)
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64).reshape(-1, 4)
        return boxes, np.asarray(scores, np.float64)

    return detect


def hog_score(detections: tuple[np.ndarray, np.ndarray], landmarks: np.ndarray) -> float | None:
    """The best score of the HOG detections (``load_hog_detector``'s output) that frame the face of these 68
    ``landmarks`` (IoU >= ``DETECTION_IOU`` with their box); None when none does. >= 0: HOG finds the face."""
    target = landmark_box(landmarks)
    boxes, scores = detections
    framing = [float(s) for b, s in zip(boxes, scores) if box_iou(b, target) >= DETECTION_IOU]
    return max(framing, default=None)


def hog_found(score: float | None) -> bool:
    """Whether dlib's HOG detector finds the face of this ``hog_score``: a score at its own threshold, 0, or above."""
    return score is not None and score >= 0.0


def _grown(region: np.ndarray, width: int) -> np.ndarray:
    """The bool mask ``region`` grown by ``width`` px (a square kernel), or shrunk when ``width`` is negative."""
    import cv2

    kernel = np.ones((2 * abs(width) + 1, 2 * abs(width) + 1), np.uint8)
    return (cv2.dilate if width > 0 else cv2.erode)(region.astype(np.uint8), kernel) > 0


def _border_bands(region: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks of the ``width``-px band just inside and just outside the border of the bool mask ``region``."""
    return region & ~_grown(region, -width), _grown(region, width) & ~region


def seam_strength(original: np.ndarray, output: np.ndarray, region: np.ndarray, *, width: int = 3) -> float:
    """How much stronger the edges of ``output`` are than the ``original``'s along the border of ``region`` (bool
    mask of what was replaced; images RGB uint8, same size): 1 = no edge was added there, well above 1 = a seam."""
    import cv2

    band = np.logical_or(*_border_bands(region.astype(bool), width))  # the border, ``width`` px either side

    def edges(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))[band].mean())

    return edges(output) / max(edges(original), 1e-3)


def border_colour_difference(image: np.ndarray, region: np.ndarray) -> float | None:
    """CIEDE2000 colour difference between the mean CIELAB colour of a band inside the border of ``region`` (bool
    mask; the band past its soft edge) and the band just outside it (each ``COLOUR_BAND`` of the region's size wide)
    in the uint8 RGB ``image``: how far the face's colour is from what surrounds it. None when a band is empty."""
    import cv2
    from skimage.color import deltaE_ciede2000

    region = region.astype(bool)
    width = max(2, int(round(COLOUR_BAND * np.sqrt(region.sum()))))
    inner, outer = _grown(region, -width) & ~_grown(region, -2 * width), _grown(region, width) & ~region
    if not inner.any() or not outer.any():
        return None
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return float(deltaE_ciede2000(lab[inner].mean(0), lab[outer].mean(0)))


def expression_nme(pred: np.ndarray, ref: np.ndarray) -> float:
    """Error of the jaw and mouth points (``EXPRESSION_POINTS``) after removing position, scale and rotation (a
    similarity fit on them), over the inter-ocular distance: the change of mouth and jaw shape, not of pose or framing."""
    return landmark_nme(pred, ref, EXPRESSION_POINTS)


def pose_error(pred: Sequence[float], ref: Sequence[float]) -> float:
    """Mean absolute difference of (yaw, pitch, roll) in degrees."""
    return float(np.abs(np.asarray(pred, np.float64) - np.asarray(ref, np.float64)).mean())


def percent(flags: Sequence[bool]) -> float:
    """Share of True in percent (NaN when empty)."""
    flags = np.asarray(flags, bool)
    return float(100.0 * flags.mean()) if flags.size else float("nan")
