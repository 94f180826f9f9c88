"""Step-2 inputs drawn from a crop: the landmark map S, the geometry input Z_g and the appearance input Z_a."""

from __future__ import annotations

import cv2
import numpy as np

from anon_model.perception.landmarks68 import CONTOURS

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate polylines


def landmark_map(landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """Render the 68-point contours (jaw, brows, nose, eyes, lips) as anti-aliased 1-px lines in [0, 1]."""
    canvas = np.zeros((size, size), np.uint8)
    pts = np.round(np.asarray(landmarks, np.float64) * (1 << _SHIFT)).astype(np.int32)
    for part, closed in CONTOURS:
        cv2.polylines(canvas, [pts[part]], closed, 255, thickness=1, lineType=cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255.0


def geometry_input(crop: np.ndarray, landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Z_g: the background x_b (face region zeroed) fused with the landmark map, (4, S, S) float32."""
    background = crop.astype(np.float32) / 255.0 * (1.0 - mask[..., None])
    return np.concatenate([background.transpose(2, 0, 1), landmark_map(landmarks, crop.shape[0])[None]], axis=0)


def appearance_input(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The face foreground of a crop in [0, 1], zero outside the mask, (3, S, S) float32: the input of E."""
    return (crop.astype(np.float32) / 255.0 * mask[..., None]).transpose(2, 0, 1)
