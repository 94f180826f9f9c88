"""Geometry from the 256 aligned crop to dlib's face chip (``dlib.get_face_chip(img, shape, 150, 0.25)`` framing).

dlib maps chip pixel (0, 0) to the top-left corner of a (rotated) square ``rect`` and (size-1, size-1) to its
bottom-right corner. With the crop's 68 landmarks the square is the one dlib itself computes
(``dlib.get_face_chip_details``); without them a fixed square is used: the crops are similarity-aligned to
one template (``perception.align``), so dlib's square sits nearly at the same place in every crop.
``FIXED_FACE_BOX`` is the mean over the 11 faces of the bundled photos and insightface's group photo
(regenerate with ``python docs/chip_window.py``). It costs accuracy: L2 0.07-0.18 to dlib's own descriptor
against 0.02-0.05 with landmarks, so pass landmarks whenever they are known. dlib computes only this
geometry (``get_face_chip_details``); the network itself runs in torch.
"""
from __future__ import annotations

import dlib
import numpy as np
import torch

# dlib's mean-face unit square in 256-crop coordinates: centre x, centre y, side (pixels), angle (radians)
FIXED_FACE_BOX = (128.43, 150.16, 108.36, 0.02)
_SUBPIXEL = 64


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def face_box(landmarks: np.ndarray, *, size: int = 150, padding: float = 0.25) -> tuple[float, float, float, float]:
    """Where dlib puts its mean-face unit square for 68 landmarks: centre x, centre y, side, angle (radians).

    Read back from ``dlib.get_face_chip_details``, a similarity fit that shows mean-face coordinate m at chip
    pixel (m + padding) / (1 + 2 padding) * size.
    """
    pts = np.asarray(landmarks, np.float64) * _SUBPIXEL  # dlib takes integer points: keep 1/64-pixel precision
    left, top = np.floor(pts.min(0)).astype(int)
    right, bottom = np.ceil(pts.max(0)).astype(int)
    shape = dlib.full_object_detection(dlib.rectangle(int(left), int(top), int(right), int(bottom)),
                                       dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts]))
    details = dlib.get_face_chip_details(shape, size=size, padding=padding)
    rect = details.rect  # centred on the image of the chip centre, right - left = size * scale - 1
    scale = (rect.right() - rect.left() + 1) / size / _SUBPIXEL  # pixels per chip pixel of dlib's similarity fit
    centre = np.array([rect.left() + rect.right(), rect.top() + rect.bottom()]) / (2 * _SUBPIXEL)
    return float(centre[0]), float(centre[1]), scale * size / (1 + 2 * padding), float(details.angle)


def chip_matrix(box: tuple[float, float, float, float], *, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """(2,3) affine from chip pixels to crop pixels for the mean-face square ``box`` (cx, cy, side, angle).

    Like dlib's ``extract_image_chip``: chip corners (0, 0) and (size-1, size-1) land on the corners of a square
    of side ``size * scale - 1`` centred on the box.
    """
    cx, cy, side, angle = box
    step = (side * (1 + 2 * padding) - 1) / (size - 1)
    linear = step * _rotation(angle)
    half = (size - 1) / 2
    return np.concatenate([linear, (np.array([cx, cy]) - linear @ np.array([half, half]))[:, None]], axis=1)


def chip_matrices(batch: int, *, landmarks: torch.Tensor | None = None, size: int = 150, padding: float = 0.25,
                  like: torch.Tensor) -> torch.Tensor:
    """(B,2,3) chip-pixel -> crop-pixel affines: dlib's framing of each face's landmarks, or the fixed box."""
    if landmarks is None:
        boxes = [FIXED_FACE_BOX] * batch
    else:
        boxes = [face_box(pts, size=size, padding=padding) for pts in torch.as_tensor(landmarks).detach().cpu().numpy()]
    matrices = np.stack([chip_matrix(b, size=size, padding=padding) for b in boxes])
    return torch.tensor(matrices, dtype=like.dtype, device=like.device)
