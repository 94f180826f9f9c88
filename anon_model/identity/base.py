"""The interface every identity network Psi implements (embedding, verification distance, IFA split)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class IdentityNetwork(nn.Module, ABC):
    """A face-identity network Psi split at its last spatial layer, so IFA (paper §3.1) can edit A.

    ``embed(crops) == head(features(to_input(crops)))``; every step is differentiable.
    Crops are the 256x256 similarity-aligned faces of ``FaceAnalyzer`` as float (B,3,256,256) in [0,1].
    """

    name: str = "identity"
    threshold: float = 0.6  # same person when distance < threshold

    @abstractmethod
    def to_input(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned 256 crops (B,3,256,256) in [0,1] -> the network's own normalized input (differentiable)."""

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input -> A, the (B,C,h,w) map of the layer where IFA distracts attention."""

    @abstractmethod
    def head(self, a: torch.Tensor) -> torch.Tensor:
        """A (or A-hat) -> raw identity feature f (B,D): the rest of Psi after the IFA layer."""

    def embed(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned crops (B,3,256,256) in [0,1] -> identity embeddings (B,D), differentiable."""
        return self.head(self.features(self.to_input(crops, landmarks=landmarks)))

    @abstractmethod
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The backend's verification distance between embeddings (broadcasting over leading dims)."""

    def class_logits(self, f: torch.Tensor) -> torch.Tensor | None:
        """Scores y^c over Psi's own classes for features f, or None when Psi has no class head."""
        return None
