"""Building blocks of the generator and discriminator (paper §3.3): ResBlock [15], AdaIN [17], SumPooling [61]."""
from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

Norm = Literal["none", "instance", "adain"]
Resample = Literal["down", "up"] | None


class AdaIN(nn.Module):
    """Adaptive instance normalization: normalize each channel, then scale and shift it from the condition Z_c."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)  # starts as plain instance norm (gamma = 1, beta = 0)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """AdaIN(x, z) = (1 + gamma(z)) * IN(x) + beta(z)."""
        gamma, beta = rearrange(self.affine(style), "b (two c) -> two b c 1 1", two=2)
        return self.norm(x) * (1 + gamma) + beta


class SumPooling(nn.Module):
    """Sum over all spatial positions: (B,C,H,W) -> (B,C); with a zeroed background it sums the foreground only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


def _norm(kind: Norm, channels: int, style_dim: int | None) -> nn.Module:
    """The normalization layer a ResBlock uses before each convolution."""
    if kind == "adain":
        if style_dim is None:
            raise ValueError("an AdaIN ResBlock needs style_dim")
        return AdaIN(channels, style_dim)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class ResBlock(nn.Module):
    """Pre-activation residual block with optional down/up-sampling and instance, AdaIN or no normalization.

    ``spectral=True`` wraps the convolutions in spectral normalization (used by the discriminator).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        resample: Resample = None,
        norm: Norm = "instance",
        style_dim: int | None = None,
        spectral: bool = False,
    ) -> None:
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)
        self.resample = resample
        self.norm1 = _norm(norm, in_channels, style_dim)
        self.conv1 = wrap(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.norm2 = _norm(norm, out_channels, style_dim)
        self.conv2 = wrap(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = (
            wrap(nn.Conv2d(in_channels, out_channels, 1, bias=False)) if in_channels != out_channels else nn.Identity()
        )

    def _apply_norm(self, layer: nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        return layer(x, style) if isinstance(layer, AdaIN) else layer(x)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.resample == "up" else x

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.resample == "down" else x

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """x (B,Cin,H,W) [and Z_c (B,S) for AdaIN] -> (B,Cout,H',W'), H' = H/2, H or 2H by ``resample``."""
        h = F.leaky_relu(self._apply_norm(self.norm1, x, style), 0.2)
        h = self.conv1(self._up(h))
        h = F.leaky_relu(self._apply_norm(self.norm2, h, style), 0.2)
        h = self._down(self.conv2(h))
        return h + self._up(self.shortcut(self._down(x)))  # 1x1 conv commutes with the resampling
