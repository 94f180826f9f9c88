"""Identity prototypes as Psi's classes: the offline stand-in for FaceNet's 8631 VGGFace2 identities.

Departure from the paper (§3.1): the paper's Psi is a classifier, and "the pre-trained classes [serve] as the
codebook to interpret the identity of any input face". dlib's network is a metric network without classes,
and no large identity set exists offline, so the classes are explicit prototypes: the embeddings of known
faces (the delegate bank's faces, the bundled photos) plus, optionally, the input's own identity. The score
of class c is linear in the feature, y^c = <f, p_c> / |p_c| = |f| cos(f, p_c): it ranks classes exactly as
cosine similarity does, and like FaceNet's logits layer its gradient is never zero, also for the input's own
identity (where cosine similarity has a maximum and therefore a zero gradient, which would leave Grad-CAM
(Eq. 2) without a direction).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SELF_NAME = "self"


class IdentityCodebook(nn.Module):
    """Class scores of identity features against a bank of unit prototypes (N,D); ``scale`` sharpens the softmax."""

    def __init__(self, prototypes: torch.Tensor, *, names: Sequence[str] | None = None, scale: float = 10.0) -> None:
        super().__init__()
        with torch.inference_mode(False):  # a normal tensor, usable by IFA's gradients even if built in inference mode
            prototypes = torch.as_tensor(prototypes, dtype=torch.float32).clone()
        if prototypes.ndim != 2 or len(prototypes) == 0:
            raise ValueError(f"prototypes must be a non-empty (N, D) tensor, got shape {tuple(prototypes.shape)}")
        with torch.inference_mode(False):
            self.register_buffer("prototypes", F.normalize(prototypes, dim=1))
        self.names = list(names) if names is not None else [f"id{i}" for i in range(len(prototypes))]
        if len(self.names) != len(prototypes):
            raise ValueError("names and prototypes differ in length")
        self.scale = scale

    def __len__(self) -> int:
        return len(self.prototypes)

    def forward(self, f: torch.Tensor, *, own: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B,N) of features f (B,D); with ``own`` (B,D) each row gets one more class, its own identity."""
        logits = f @ self.prototypes.T
        if own is not None:
            logits = torch.cat([logits, (f * F.normalize(own, dim=1)).sum(1, keepdim=True)], dim=1)
        return self.scale * logits

    def class_names(self, *, with_own: bool) -> list[str]:
        """Names of the columns of ``forward``'s logits."""
        return self.names + [SELF_NAME] * with_own
