"""FaceConditioning: one face's step-1 output, everything a step-2 synthesizer may use."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
