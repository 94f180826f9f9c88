"""Face-region masks from landmarks, used where no face parser (BiSeNet) is available."""

from __future__ import annotations

import cv2
import numpy as np

from anon_model.perception import landmarks68 as lm


def face_outline(landmarks: np.ndarray, *, forehead: float = 0.45) -> np.ndarray:
    """Jaw points plus the brows lifted over the forehead by `forehead` x the brow-to-chin height."""
    landmarks = np.asarray(landmarks, np.float64)
    brows = landmarks[17:27]
    up = brows.mean(0) - landmarks[8]
    lifted = brows + forehead * up
    return np.concatenate([landmarks[lm.JAW], lifted[::-1]])


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], *, forehead: float = 0.45) -> np.ndarray:
    """Convex hull of the face outline as a float32 {0, 1} mask of `shape` (h, w)."""
    mask = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(face_outline(landmarks, forehead=forehead)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8)
    return mask.astype(np.float32)


def feather(mask: np.ndarray, radius: int, *, sigma: float, ksize: int = 0) -> np.ndarray:
    """Erode a {0, 1} mask by ``radius`` pixels, then Gaussian-blur it: a soft edge that stays inside the mask.

    ``ksize`` 0 lets cv2 size the kernel from ``sigma``.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.erode((mask > 0.5).astype(np.float32), kernel)
    return cv2.GaussianBlur(core, (ksize, ksize), sigma)


#: Facial features left out of skin statistics: brows, eyes and lips (teeth, lipstick and dark brows are no skin).
_FEATURES = (lm.RIGHT_BROW, lm.LEFT_BROW, lm.RIGHT_EYE, lm.LEFT_EYE, lm.OUTER_LIPS)


def skin_mask(region: np.ndarray, landmarks: np.ndarray, *, margin: int = 4) -> np.ndarray:
    """``region`` > 0.5 without the brows, eyes and lips of ``landmarks`` (each hull grown by ``margin`` px): skin."""
    features = np.zeros(region.shape[:2], np.uint8)
    for part in _FEATURES:
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(landmarks[part]).astype(np.int32)), 1)
    features = cv2.dilate(features, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    return (region > 0.5) & (features == 0)
