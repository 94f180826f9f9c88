"""The per-face record that perception hands to the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One detected face: where it is in the photo and its aligned 256x256 crop (coordinates in pixels)."""

    box: np.ndarray  # (4,) x0, y0, x1, y1 in the photo
    score: float  # detector confidence
    landmarks: np.ndarray  # (68, 2) S_x in the photo, iBUG-68 order
    pose: np.ndarray  # (3,) yaw, pitch, roll in degrees
    matrix: np.ndarray  # (2, 3) similarity transform photo -> crop
    crop: np.ndarray  # (S, S, 3) uint8, the aligned face x
    crop_landmarks: np.ndarray  # (68, 2) S_x in crop coordinates
    mask: np.ndarray  # (S, S) float32 in [0, 1], the face region in the crop
    # (3, 256) the whole photo's per-channel colour counts: the guard equalizes and brightens a crop as an attacker
    # does the photo (``anon_model.guard.InPhoto``); None when the face came without its photo
    photo_histogram: np.ndarray | None = None
    # why perception could not finish this face (its landmarks, pose or alignment raised): it is then framed by its
    # box alone (pose NaN, mask empty) and only ever obscured; empty for every other face
    failure: str = ""

    @property
    def inter_ocular(self) -> float:
        """Distance between the eye centres in the photo (pixels): the natural unit of landmark errors."""
        return float(np.linalg.norm(self.landmarks[36:42].mean(0) - self.landmarks[42:48].mean(0)))


def colour_counts(image: np.ndarray) -> np.ndarray:
    """(3, 256) how many pixels of an RGB uint8 ``image`` (H, W, 3) have each value, per channel."""
    return np.stack([np.bincount(image[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
