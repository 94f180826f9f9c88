"""The discriminator D of paper §3.4: multi-scale, on (image, structure S_x) pairs, exposing its features for L2."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from anon_model.models.blocks import ResBlock


class PatchDiscriminator(nn.Module):
    """One scale of D: spectral-normalized down-sampling ResBlocks ending in a map of real/fake logits."""

    def __init__(self, *, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.stem = spectral_norm(nn.Conv2d(in_channels, channels[0], 3, padding=1))
        self.blocks = nn.ModuleList(
            ResBlock(c_in, c_out, resample="down", norm="none", spectral=True)
            for c_in, c_out in zip([channels[0], *channels], channels)
        )
        self.logits = nn.Sequential(nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(channels[-1], 1, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B,Cin,H,W) -> [features of each block..., logits (B,1,h,w)]."""
        feats = [self.stem(x)]
        for block in self.blocks:
            feats.append(block(feats[-1]))
        return [*feats[1:], self.logits(feats[-1])]


class MultiScaleDiscriminator(
    nn.Module, PyTorchModelHubMixin, library_name="anon_model", tags=["face-anonymization"], license="apache-2.0"
):
    """D(image, S): patch discriminators on the (image, landmark map) pair at ``num_scales`` resolutions.

    ``forward`` returns, per scale, the list of intermediate features with the logits last: the logits feed the
    hinge adversarial loss (Eq. 10) and the features the feature-matching loss L2.
    """

    def __init__(
        self,
        *,
        image_channels: int = 3,
        structure_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512),
        num_scales: int = 2,
    ) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels=image_channels + structure_channels, channels=channels)
            for _ in range(num_scales)
        )

    def forward(self, image: torch.Tensor, structure: torch.Tensor) -> list[list[torch.Tensor]]:
        """image (B,3,H,W) in [0,1], structure (B,1,H,W) rendered S_x -> per scale [features..., logits]."""
        x = torch.cat([image * 2 - 1, structure], dim=1)
        outputs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, **kwargs) -> MultiScaleDiscriminator:
        """Load with strict key matching and in eval mode."""
        return super()._from_pretrained(strict=strict, **kwargs).eval()
