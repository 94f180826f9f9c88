"""No face left behind: the faces step 2 cannot anonymize, and the irreversible obscuring they get instead.

A face goes to the fallback when it is too small for a 256x256 synthesis, turned too far for the 68-point model, its
landmarks do not sit on its box, or the identity guard still recognizes it after every try. The obscuring covers the
face box widened by 20% (and the landmarks' extent), so no recognizer sees through it; each record says why.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the CLI imports this module for its option choices: keep it light
    from anon_model.perception.face import Face

__all__ = ["FALLBACKS", "REPLACE_WITH", "unsuitable", "obscuring_method", "box_iou", "face_region", "obscure", "obscure_box", "blur", "pixelate", "solid"]

#: Irreversible treatments, by name (the CLI's --fallback and --replace-with).
FALLBACKS = ("mosaic", "blur", "solid")
#: What to do with every detected face: our method (with a fallback), a classical obscuring, or nothing (detect only).
REPLACE_WITH = ("anonymize", *FALLBACKS, "none")
#: Step 2 needs at least this many pixels across the face box (smaller faces are upsampled 6x or more).
MIN_FACE_PX = 40
#: Beyond this yaw (degrees) the 68-point landmarks and the frontal delegates no longer fit the face.
MAX_YAW = 60.0
#: The landmarks' extent must overlap the detector's box at least this much (intersection over union).
MIN_LANDMARK_IOU = 0.3
EXPAND = 0.2


def unsuitable(face: Face) -> str | None:
    """Why step 2 cannot handle ``face`` (a short reason for the user), or None when it can."""
    x0, y0, x1, y1 = face.box
    side = min(x1 - x0, y1 - y0)
    if side < MIN_FACE_PX:
        return f"too small for step 2 ({side:.0f} px < {MIN_FACE_PX} px)"
    if abs(float(face.pose[0])) > MAX_YAW:
        return f"head turned too far for step 2 (yaw {float(face.pose[0]):.0f} degrees)"
    lx0, ly0 = face.landmarks.min(0)
    lx1, ly1 = face.landmarks.max(0)
    iou = box_iou((x0, y0, x1, y1), (lx0, ly0, lx1, ly1))
    if iou < MIN_LANDMARK_IOU:
        return f"landmarks unreliable (they cover {iou:.0%} of the face box)"
    return None


def obscuring_method(replace_with: str = "anonymize", fallback: str = "mosaic") -> str:
    """How faces that are not anonymized get obscured: the classical method asked for, else the fallback ("none":
    they are left as they are)."""
    return fallback if replace_with == "anonymize" else replace_with


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def face_region(box: np.ndarray, shape: tuple[int, ...], expand: float) -> tuple[int, int, int, int]:
    """The face box widened by `expand` of its size on each side, clipped to the photo: x0, y0, x1, y1 (ints)."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    dx, dy = expand * (x1 - x0), expand * (y1 - y0)
    h, w = shape[:2]
    return (int(max(0, np.floor(x0 - dx))), int(max(0, np.floor(y0 - dy))),
            int(min(w, np.ceil(x1 + dx))), int(min(h, np.ceil(y1 + dy))))


def blur(region: np.ndarray, strength: float = 0.15) -> np.ndarray:
    """Gaussian blur with sigma = `strength` x the region's width."""
    sigma = strength * region.shape[1]
    return cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def pixelate(region: np.ndarray, blocks: int = 8) -> np.ndarray:
    """Mosaic: the region averaged into `blocks` x `blocks` cells."""
    h, w = region.shape[:2]
    small = cv2.resize(region, (blocks, blocks), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def solid(region: np.ndarray, value: int = 128) -> np.ndarray:
    """The region filled with one grey."""
    return np.full_like(region, value)


_METHODS = {"mosaic": pixelate, "blur": blur, "solid": solid}


def obscure(image: np.ndarray, face: Face, method: str) -> np.ndarray:
    """A copy of ``image`` with ``face`` obscured by ``method`` over its box (and landmarks) widened by 20%."""
    points = np.asarray(face.landmarks, np.float64)
    box = np.asarray(face.box, np.float64)
    return obscure_box(image, np.r_[np.minimum(box[:2], points.min(0)), np.maximum(box[2:], points.max(0))], method)


def obscure_box(image: np.ndarray, box: np.ndarray, method: str) -> np.ndarray:
    """A copy of ``image`` with ``box`` (x0, y0, x1, y1) widened by 20% obscured by ``method``."""
    if method not in _METHODS:
        raise ValueError(f"unknown obscuring method {method!r}: choose one of {', '.join(FALLBACKS)}")
    x0, y0, x1, y1 = face_region(box, image.shape, EXPAND)
    out = image.copy()
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = _METHODS[method](out[y0:y1, x0:x1])
    return out
