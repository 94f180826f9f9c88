"""Image-level measures of the paper's §4.1 that need no recognizer: SSIM (face crop and background), LPIPS, detection
overlap, landmark errors.

ReID / IDS (recognizers.py) and attribute preservation (attributes.py) are scored in ``evaluate.py`` from these parts.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Sequence

import numpy as np
import torch
from skimage.metrics import structural_similarity

from anon_model.perception import landmarks68 as lm
from anon_model.perception.weights import hub_checkpoint
from anon_model.plausibility import landmark_nme

__all__ = ["MetricUnavailable", "ssim", "background_ssim", "load_lpips", "seam_strength", "expression_nme", "pose_error",
           "percent", "load_hog_detector", "LPIPS_BACKBONE_FILE", "EXPRESSION_POINTS"]

#: torchvision's ImageNet AlexNet weights, the backbone of LPIPS (net="alex"); the lpips package ships only its heads.
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
#: The points whose shape the pipeline promises to keep (GSA recovers the contour and mouth from S_x): jaw and mouth.
EXPRESSION_POINTS = np.r_[lm.JAW, lm.MOUTH]


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


def load_hog_detector(upsample: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """dlib's HOG face detector (built into dlib, not used by the pipeline) as f(uint8 RGB) -> (N, 4) boxes; its boxes
    frame the face like the 68 landmarks do (brows to chin), so compare them with ``landmark_box``."""
    import dlib

    detector = dlib.get_frontal_face_detector()

    def detect(image: np.ndarray) -> np.ndarray:
        rects = detector(np.ascontiguousarray(image), upsample)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float64).reshape(-1, 4)

    return detect


def seam_strength(original: np.ndarray, output: np.ndarray, region: np.ndarray, *, width: int = 3) -> float:
    """How much stronger the edges of ``output`` are than the ``original``'s along the border of ``region`` (bool
    mask of what was replaced; images RGB uint8, same size): 1 = no edge was added there, well above 1 = a seam."""
    import cv2

    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    inside = region.astype(np.uint8)
    band = (cv2.dilate(inside, kernel) > 0) & ~(cv2.erode(inside, kernel) > 0)

    def edges(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))[band].mean())

    return edges(output) / max(edges(original), 1e-3)


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
