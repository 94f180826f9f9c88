"""Whether a face wears glasses, from its 68 landmarks and pixels alone (no model: none ships offline).

A frame's bridge crosses the nose between the eyes as a horizontal edge, where bare skin has almost none: the
score is the strongest row of vertical gradient in a narrow column between the inner eye corners, from the brows
down to the nose, over the gradient of the nose's own skin below it. On the 799 bank faces, every face scoring
4 or more wears glasses (40 of 40 looked at), about half of those between 2 and 3.5 do (mostly thin or rimless
frames), and almost none below 2. VAA uses it so that a mixture of two people never shows one person's glasses
half-transparent on the other's face.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["glasses_score", "GLASSES_SCORE"]

#: A face scoring at least this is taken to wear glasses (catches thick and most thin frames; some bare noses with
#: deep wrinkles between the brows score as much, which only costs VAA a candidate).
GLASSES_SCORE = 2.5


def glasses_score(image: np.ndarray, landmarks: np.ndarray) -> float:
    """The bridge-edge score of one face: ``image`` (H,W,3) uint8 RGB, ``landmarks`` (68,2) in its pixels."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    rows = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))  # horizontal edges
    pts = np.asarray(landmarks, np.float64)
    iod = float(np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0)))
    h, w = rows.shape
    half = max(2, int(0.08 * iod))
    centre = int(round((pts[39, 0] + pts[42, 0]) / 2))
    top, bottom = int(min(pts[21, 1], pts[22, 1])), int(pts[29, 1])
    bridge = rows[max(top, 0):min(bottom, h), max(centre - half, 0):min(centre + half + 1, w)]
    nose = rows[int(pts[29, 1]):int(pts[33, 1]), int(pts[31, 0]):int(pts[35, 0])]
    if bridge.size == 0 or nose.size == 0:
        return 0.0
    return float(bridge.mean(1).max() / (nose.mean() + 1.0))
