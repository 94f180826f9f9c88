"""No face left behind: the faces step 2 cannot anonymize, and the irreversible obscuring they get instead.

A face goes to the fallback when it is too small for a 256x256 synthesis, turned too far for the 68-point model, its
landmarks do not sit on its box, or the identity guard still recognizes it after every try. The obscuring covers an
ellipse inscribed in the face box (and the landmarks' extent) grown by ``MASK_SCALE`` (or that whole rectangle with
``boxes=True``, as deface's --boxes), so no recognizer sees the face through it (the hair, clothes and background
around it stay: with the original photo at hand, dlib matched 1 of 18 obscured held-out portraits, docs/strangers.md);
each record says why.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the CLI imports this module for its option choices: keep it light
    from anon_model.perception.face import Face

__all__ = ["FALLBACKS", "REPLACE_WITH", "MASK_SCALE", "unsuitable", "obscuring_method", "box_iou", "face_region",
           "obscure", "obscure_box", "obscured_region", "blur", "pixelate", "solid"]

#: Irreversible treatments, by name (the CLI's --fallback and --replace-with).
FALLBACKS = ("mosaic", "blur", "solid")
#: What to do with every detected face: our method (with a fallback), a classical obscuring, or nothing (detect only).
REPLACE_WITH = ("anonymize", *FALLBACKS, "none")
#: Step 2 needs at least this many pixels across the face box (its 256 crop is then upsampled 16x; the guard judges
#: each result shrunk back to the face's size in the photo, ``perception.align.as_pasted``).
MIN_FACE_PX = 16
#: Beyond this yaw (degrees) the 68-point landmarks and the frontal delegates no longer fit the face.
MAX_YAW = 60.0
#: The landmarks' extent must overlap the detector's box at least this much (intersection over union).
MIN_LANDMARK_IOU = 0.3
EXPAND = 0.2
#: The obscured area is the face box scaled by this about its centre: 20% (``EXPAND``) added on each side.
MASK_SCALE = 1 + 2 * EXPAND


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


def obscure(image: np.ndarray, face: Face, method: str, *, mask_scale: float = MASK_SCALE,
            boxes: bool = False) -> np.ndarray:
    """A copy of ``image`` with ``face`` obscured by ``method`` over its box (and landmarks) scaled by ``mask_scale``:
    the inscribed ellipse, or the whole rectangle with ``boxes``."""
    return obscure_box(image, _cover(face), method, mask_scale=mask_scale, boxes=boxes)


def obscured_region(area: Face | np.ndarray, shape: tuple[int, ...],
                    mask_scale: float = MASK_SCALE) -> tuple[int, int, int, int]:
    """The rectangle ``obscure`` (for a face) or ``obscure_box`` (for a box) works in, in a photo of ``shape``:
    x0, y0, x1, y1 (ints)."""
    box = np.asarray(area, np.float64) if isinstance(area, np.ndarray) else _cover(area)
    return face_region(box, shape, _expand(mask_scale))


def _cover(face: Face) -> np.ndarray:
    """The face's box grown to take in its landmarks (x0, y0, x1, y1)."""
    points = np.asarray(face.landmarks, np.float64)
    box = np.asarray(face.box, np.float64)
    return np.r_[np.minimum(box[:2], points.min(0)), np.maximum(box[2:], points.max(0))]


def obscure_box(image: np.ndarray, box: np.ndarray, method: str, *, mask_scale: float = MASK_SCALE,
                boxes: bool = False) -> np.ndarray:
    """A copy of ``image`` with ``box`` (x0, y0, x1, y1) scaled by ``mask_scale`` obscured by ``method``: the
    ellipse inscribed in it, or the whole rectangle with ``boxes``."""
    if method not in _METHODS:
        raise ValueError(f"unknown obscuring method {method!r}: choose one of {', '.join(FALLBACKS)}")
    region = face_region(box, image.shape, _expand(mask_scale))
    x0, y0, x1, y1 = region
    out = image.copy()
    if x1 > x0 and y1 > y0:
        patch = out[y0:y1, x0:x1]
        inside = np.ones(patch.shape[:2], bool) if boxes else _ellipse(box, region, mask_scale)
        patch[inside] = _METHODS[method](patch)[inside]
    return out


def _ellipse(box: np.ndarray, region: tuple[int, int, int, int], mask_scale: float) -> np.ndarray:
    """Bool mask over ``region`` (x0, y0, x1, y1): the ellipse inscribed in ``box`` scaled by ``mask_scale``."""
    bx0, by0, bx1, by1 = np.asarray(box, np.float64)
    x0, y0, x1, y1 = region
    ax, ay = max(mask_scale * (bx1 - bx0) / 2, 0.5), max(mask_scale * (by1 - by0) / 2, 0.5)
    ys, xs = np.ogrid[y0:y1, x0:x1]
    return ((xs + 0.5 - (bx0 + bx1) / 2) / ax) ** 2 + ((ys + 0.5 - (by0 + by1) / 2) / ay) ** 2 <= 1.0


def _expand(mask_scale: float) -> float:
    """The fraction of the box's size added on each side for ``mask_scale`` (1 = the box itself)."""
    if mask_scale < 1:
        raise ValueError(f"mask_scale must be at least 1 (the face box itself), not {mask_scale}")
    return (mask_scale - 1) / 2
