"""The conditional generator G of paper §3.3: appearance encoder E, condition fusion FC, conditional translator T."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from anon_model.models.blocks import ResBlock, SumPooling

if TYPE_CHECKING:
    from anon_model.conditioning import FaceConditioning

GEOMETRY_CHANNELS = 4  # Z_g = [background x_b (RGB), landmark map of S-hat]

MODEL_CARD = """
---
{{ card_data }}
---

# FaceAnonGenerator (step 2 of anon_model)

The conditional generator G of *Facial Identity Anonymization via Intrinsic and Extrinsic Attention
Distraction* (§3.3): appearance encoder E (six ResBlocks + SumPooling), Z_c = FC(Concat(Z_id, f_a)),
and a U-Net translator T with AdaIN, mapping (Z_id, Z_a, Z_g) to a 256x256 face.

* Training config: `{{ training_config }}` (see `train/configs/{{ training_config }}.json`), {{ trained_steps }} steps.
* Identity features Z_id: {{ z_id_dim }}-d from the `{{ identity_backend }}` identity network.

Load it with `FaceAnonGenerator.from_pretrained(...)` or as the `synthesizer/` folder of an `AnonPipeline`.
"""


class AppearanceEncoder(nn.Module):
    """E: six down-sampling ResBlocks and a SumPooling layer, foreground of Z_a (B,3,H,W) -> f_a (B,D)."""

    def __init__(self, *, channels: Sequence[int], out_dim: int) -> None:
        super().__init__()
        widths = [*channels[:-1], out_dim]  # the last block yields f_a in Z_id's space (Eq. 12 compares them)
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1)
        self.blocks = nn.Sequential(
            *(ResBlock(c_in, c_out, resample="down", norm="none") for c_in, c_out in zip([widths[0], *widths], widths))
        )
        self.pool = SumPooling()

    def forward(self, z_a: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(z_a)))


class ConditionalTranslator(nn.Module):
    """T: a U-Net of ResBlocks from Z_g (B,4,H,W) to an RGB face (B,3,H,W) in [0,1], AdaIN-modulated by Z_c.

    The down path (instance norm) keeps a skip per resolution; the middle and up paths use AdaIN driven by Z_c.
    """

    def __init__(self, *, channels: Sequence[int], n_middle: int, style_dim: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(GEOMETRY_CHANNELS, channels[0], 3, padding=1)
        self.down = nn.ModuleList(
            ResBlock(c_in, c_out, resample="down", norm="instance") for c_in, c_out in zip(channels, channels[1:])
        )
        self.middle = nn.ModuleList(
            ResBlock(channels[-1], channels[-1], norm="adain", style_dim=style_dim) for _ in range(n_middle)
        )
        self.up = nn.ModuleList(
            ResBlock(2 * c_in, c_out, resample="up", norm="adain", style_dim=style_dim)
            for c_in, c_out in zip(channels[:0:-1], channels[-2::-1])
        )
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(2 * channels[0], 3, 3, padding=1))

    def forward(self, z_g: torch.Tensor, z_c: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(z_g)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips[-1]
        for block in self.middle:
            h = block(h, z_c)
        for block, skip in zip(self.up, skips[:0:-1]):
            h = block(torch.cat([h, skip], dim=1), z_c)
        return (torch.tanh(self.to_rgb(torch.cat([h, skips[0]], dim=1))) + 1) / 2


class FaceAnonGenerator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="anon_model",
    tags=["face-anonymization", "image-to-image"],
    license="apache-2.0",
    model_card_template=MODEL_CARD,
):
    """G = T(Z_g, FC(Concat(Z_id, E(Z_a)))): step 2 of the paper, (Z_id, Z_a, Z_g) -> a 256x256 face in [0,1].

    ``z_id_dim`` and ``identity_backend`` record which identity network produced Z_id = f_x (dlib 128-d offline,
    FaceNet 512-d in the paper); ``training_config`` names the train/configs entry that produced the weights.
    """

    def __init__(
        self,
        *,
        z_id_dim: int = 128,
        identity_backend: str = "dlib",
        encoder_channels: Sequence[int] = (64, 128, 256, 256, 256, 256),
        translator_channels: Sequence[int] = (64, 128, 256, 512, 512),
        n_middle: int = 4,
        style_dim: int = 256,
        image_size: int = 256,
        training_config: str = "untrained",
        trained_steps: int = 0,
    ) -> None:
        super().__init__()
        if len(encoder_channels) != 6:
            raise ValueError(f"E stacks six ResBlocks (paper §3.3): got {len(encoder_channels)} encoder channels")
        self.z_id_dim = z_id_dim
        self.identity_backend = identity_backend
        self.image_size = image_size
        self.training_config = training_config
        self.trained_steps = trained_steps
        self.encoder = AppearanceEncoder(channels=encoder_channels, out_dim=z_id_dim)
        self.fuse = nn.Linear(2 * z_id_dim, style_dim)
        self.translator = ConditionalTranslator(channels=translator_channels, n_middle=n_middle, style_dim=style_dim)

    uses_generator = False  # G is deterministic: faces of several photos share one batch

    @property
    def description(self) -> str:
        """One line naming this step-2 model and its training (printed by the CLI and the app)."""
        return (f"FaceAnonGenerator trained with config {self.training_config!r} for {self.trained_steps} steps "
                f"({self.z_id_dim}-d {self.identity_backend} Z_id)")

    def condition(self, z_id: torch.Tensor, f_a: torch.Tensor) -> torch.Tensor:
        """Z_c = FC(Concat(Z_id, f_a)) (paper §3.3)."""
        return self.fuse(torch.cat([z_id, f_a], dim=1))

    def forward(self, z_id: torch.Tensor, z_a: torch.Tensor, z_g: torch.Tensor) -> torch.Tensor:
        """Z_id (B,D), Z_a (B,3,H,W) foreground, Z_g (B,4,H,W) -> x-hat (B,3,H,W) in [0,1]."""
        if z_id.shape[-1] != self.z_id_dim:
            raise ValueError(
                f"Z_id has {z_id.shape[-1]} dims but this generator was trained on {self.z_id_dim}-d "
                f"{self.identity_backend!r} identity features: use the same identity backend"
            )
        return self.translator(z_g, self.condition(z_id, self.encoder(z_a)))

    def synthesize(
        self, conds: list[FaceConditioning], *, generator: torch.Generator | None = None, effort: float = 0.0
    ) -> torch.Tensor:
        """Step 2 on a batch of conditionings -> (B,3,256,256) in [0,1].

        G is deterministic and has no retry knob: ``generator`` and the guard's ``effort`` are accepted and unused
        (a retry differs through the new delegates the pipeline draws).
        """
        param = next(self.parameters())
        z_id, z_a, z_g = (
            torch.stack([getattr(c, name) for c in conds]).to(param.device, param.dtype) for name in ("z_id", "z_a", "z_g")
        )
        with torch.inference_mode():
            return self(z_id, z_a, z_g).clamp(0, 1).float()

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The Hub model card, stating which training config and how many steps produced these weights."""
        return super().generate_model_card(
            *args,
            training_config=self.training_config,
            trained_steps=self.trained_steps,
            identity_backend=self.identity_backend,
            z_id_dim=self.z_id_dim,
            **kwargs,
        )

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, **kwargs) -> FaceAnonGenerator:
        """Load with strict key matching and in eval mode."""
        return super()._from_pretrained(strict=strict, **kwargs).eval()
