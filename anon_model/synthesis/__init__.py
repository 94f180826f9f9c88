"""Step 2 synthesizers: what fills the pipeline's ``synthesizer`` slot, and the interface they share.

A synthesizer maps a batch of ``FaceConditioning`` (step 1's output) to anonymized 256x256 crops. The trained
generator G (``anon_model.models.FaceAnonGenerator``, §3.3) is one; without trained weights the training-free one
(``warp.py``) fills the slot and says so.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from anon_model.conditioning import FaceConditioning
from anon_model.synthesis.warp import TrainingFreeSynthesizer

__all__ = ["Synthesizer", "TrainingFreeSynthesizer"]


@runtime_checkable
class Synthesizer(Protocol):
    """The step-2 interface; ``save_pretrained``/``from_pretrained`` make it a pipeline component."""

    description: str  # one line the CLI and app print
    uses_generator: bool  # False: the output ignores `generator`, so the pipeline may batch any faces together

    def synthesize(self, conds: list[FaceConditioning], *, generator: torch.Generator | None = None,
                   effort: float = 0.0) -> torch.Tensor:
        """Crops (B,3,S,S) in [0,1]. ``effort`` in [0, 1] is the identity guard's retry level (0 on the first try,
        1 on the last; a reused draw's at the level it was kept at): a synthesizer may use it to change more of the
        face, or ignore it."""
        ...
