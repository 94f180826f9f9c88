"""One face's step-1 output (Z_id, Z_a, Z_g, paper §3.3) and the builders of its image inputs.

``face_conditioning`` packs what IFA (Z_id) and VCA (the appearance and geometry delegates) decided for a face into a
``FaceConditioning``, the only thing a step-2 synthesizer sees. ``appearance_input`` and ``geometry_input`` are
also what training feeds the generator (``train/data.py``), so inference and training build Z_a and Z_g alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from anon_model.perception.landmarks68 import CONTOURS
from anon_model.perception.masks import face_mask

if TYPE_CHECKING:
    from anon_model.perception.face import Face
    from anon_model.vca import AppearanceDelegate, GeometryDelegate

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate polylines


@dataclass
class FaceConditioning:
    """Tensors in crop space (S = 256); images are float in [0, 1], landmarks in crop pixels."""

    x: torch.Tensor  # (3, S, S) the aligned original crop
    z_id: torch.Tensor  # (D,) recast identity feature f_x from IFA
    z_a: torch.Tensor  # (3, S, S) appearance delegate foreground (input of E)
    z_g: torch.Tensor  # (4, S, S) geometry input: background x_b + landmark map of S-hat_x
    landmarks: torch.Tensor  # (68, 2) S_x
    landmarks_anon: torch.Tensor  # (68, 2) S-hat_x
    delegate_crop: torch.Tensor  # (3, S, S) the whole appearance delegate crop
    delegate_landmarks: torch.Tensor  # (68, 2)
    mask: torch.Tensor  # (S, S) face mask of x
    attention: torch.Tensor  # (S, S) identity attention from IFA, in [0, 1]


def landmark_map(landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """The structure S rendered: the 68-point contours (jaw, brows, nose, eyes, lips) as anti-aliased lines in [0, 1]."""
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
    """Z_a: the face foreground of a crop in [0, 1], zero outside the mask, (3, S, S) float32: the input of E."""
    return (crop.astype(np.float32) / 255.0 * mask[..., None]).transpose(2, 0, 1)


def _tensor(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float32 tensor of an array."""
    return torch.as_tensor(array).detach().float()


def face_conditioning(face: Face, appearance: AppearanceDelegate, geometry: GeometryDelegate, *,
                      z_id: torch.Tensor, attention: torch.Tensor | np.ndarray) -> FaceConditioning:
    """Assemble one face's step-1 output (Z_id from IFA, Z_a from VAA, Z_g from GSA) for a step-2 synthesizer."""
    size = face.crop.shape[0]
    delegate_mask = face_mask(appearance.landmarks, (size, size))
    return FaceConditioning(
        x=_tensor(face.crop).permute(2, 0, 1) / 255.0,
        z_id=_tensor(z_id).reshape(-1),
        z_a=_tensor(appearance_input(appearance.crop, delegate_mask)),
        z_g=_tensor(geometry_input(face.crop, geometry.anonymized_landmarks, face.mask)),
        landmarks=_tensor(face.crop_landmarks),
        landmarks_anon=_tensor(geometry.anonymized_landmarks),
        delegate_crop=_tensor(appearance.crop).permute(2, 0, 1) / 255.0,
        delegate_landmarks=_tensor(appearance.landmarks),
        mask=_tensor(face.mask),
        attention=_tensor(attention),
    )
