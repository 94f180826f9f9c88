"""The interface every identity network Psi implements (embedding, verification distance, IFA split)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn


class IdentityNetwork(nn.Module, ABC):
    """A face-identity network Psi split at its last spatial layer, so IFA (paper §3.1) can edit A.

    ``embed(crops) == head(features(to_input(crops)))``; every step is differentiable.
    Crops are the 256x256 similarity-aligned faces of ``FaceAnalyzer`` as float (B,3,256,256) in [0,1].
    The network sees a window of the crop (its own framing), given per face by ``input_matrices``.
    """

    name: str = "identity"
    threshold: float = 0.6  # same person when distance < threshold
    input_size: int = 150  # side of the network's square input
    levels_faces: bool = False  # its framing levels a face by its landmarks (a turned photo is the same face to it)

    @abstractmethod
    def input_matrices(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """(B,2,3) affine maps from network-input pixels to crop pixels (where the network looks in each crop)."""

    @abstractmethod
    def normalize_input(self, window: torch.Tensor) -> torch.Tensor:
        """The input window (B,3,n,n) in [0,1] -> the tensor the network was trained on."""

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input -> A, the (B,C,h,w) map of the layer where IFA distracts attention."""

    @abstractmethod
    def head(self, a: torch.Tensor) -> torch.Tensor:
        """A (or A-hat) -> raw identity feature f (B,D): the rest of Psi after the IFA layer."""

    @abstractmethod
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The backend's verification distance between embeddings (broadcasting over leading dims)."""

    def class_logits(self, f: torch.Tensor) -> torch.Tensor | None:
        """Scores y^c over Psi's own classes for features f, or None when Psi has no class head."""
        return None

    def to_input(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned 256 crops (B,3,S,S) in [0,1] -> the network's normalized input (bilinear, differentiable)."""
        matrices = self.input_matrices(crops, landmarks=landmarks)
        pixels = _pixel_grid(self.input_size, crops)  # (n, n, 3) homogeneous input-pixel coordinates
        crop_xy = torch.einsum("hwk,bjk->bhwj", pixels, matrices)
        grid = crop_xy * (2.0 / (crops.shape[-1] - 1)) - 1.0
        window = F.grid_sample(crops, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return self.normalize_input(window)

    def embed(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned crops (B,3,256,256) in [0,1] -> identity embeddings (B,D), differentiable.

        Pass the crops' 68 landmarks (B,68,2, crop pixels) when known: dlib's framing then follows each face.
        """
        return self.head(self.features(self.to_input(crops, landmarks=landmarks)))

    def maps_to_crop(self, maps: torch.Tensor, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Spatial maps over the network input (B,K,h,w) -> crop pixels (B,K,S,S), zero outside the input window."""
        matrices = self.input_matrices(crops, landmarks=landmarks)
        size = crops.shape[-1]
        linear, shift = matrices[:, :, :2], matrices[:, :, 2]
        pixels = _pixel_grid(size, crops)[..., :2]  # crop pixel coordinates
        inv = torch.linalg.inv(linear)
        input_xy = torch.einsum("bij,hwj->bhwi", inv, pixels) - torch.einsum("bij,bj->bi", inv, shift)[:, None, None]
        grid = (input_xy + 0.5) * (2.0 / self.input_size) - 1.0  # map cells tile the input window
        return F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


def _pixel_grid(size: int, like: torch.Tensor) -> torch.Tensor:
    """(size, size, 3) tensor of (x, y, 1) pixel coordinates."""
    ys, xs = torch.meshgrid(torch.arange(size, device=like.device, dtype=like.dtype),
                            torch.arange(size, device=like.device, dtype=like.dtype), indexing="ij")
    return torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)
