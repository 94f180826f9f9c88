"""What AnonPipeline returns: the anonymized photo and, per face, everything needed to show why."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image


@dataclass
class FaceRecord:
    """One face: where it was, what step 1 decided (explanations) and the synthesized crop.

    Coordinates named `*_crop` are in the 256x256 aligned crop; the others are in the photo.
    """

    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (68, 2) S_x
    pose: np.ndarray  # (3,) yaw, pitch, roll (degrees)
    crop: np.ndarray  # (256, 256, 3) uint8 aligned original x
    anonymized: np.ndarray  # (256, 256, 3) uint8 synthesized x-hat
    landmarks_crop: np.ndarray  # (68, 2) S_x
    landmarks_anon_crop: np.ndarray | None = None  # (68, 2) S-hat_x
    landmarks_anon: np.ndarray | None = None  # (68, 2) S-hat_x in the photo
    # IFA (§3.1)
    classes: list[str] = field(default_factory=list)  # the top-K codebook classes c_i
    scores_before: np.ndarray | None = None  # (K,) class scores on A
    scores_after: np.ndarray | None = None  # (K,) class scores on A-hat
    cam: np.ndarray | None = None  # (K, 256, 256) H per class, in [0, 1]
    cam_distracted: np.ndarray | None = None  # (K, 256, 256) H-hat per class
    # VAA (§3.2): appearance candidates M_q in the delegate bank
    delegates: list[int] = field(default_factory=list)  # bank indices
    delegate_probs: np.ndarray | None = None  # Eq. 6 probabilities with u_a
    delegate: int | None = None  # the sampled Z_a (bank index)
    # GSA (§3.2): geometry candidates with the same pose
    geometry_candidates: list[int] = field(default_factory=list)
    geometry_probs: np.ndarray | None = None  # Eq. 6 probabilities with u_g
    geometry_delegate: int | None = None  # the sampled S-bar (bank index)
    landmarks_delegate_crop: np.ndarray | None = None  # (68, 2) S-bar in crop coordinates
    z_g: np.ndarray | None = None  # (256, 256) the landmark map of S-hat_x
    # identity guard
    identity_distance: float | None = None  # distance(original, anonymized) in the identity network's metric
    identity_threshold: float | None = None
    attempts: int = 1


@dataclass
class AnonOutput:
    """The anonymized photo (same size as the input), one record per face and notes on what ran."""

    image: Image.Image
    faces: list[FaceRecord]
    notes: list[str] = field(default_factory=list)
