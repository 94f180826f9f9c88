"""The identity guard (our addition to the paper): a synthesized face counts only if Psi no longer knows the original.

``AnonPipeline`` synthesizes every face, asks ``IdentityGuard.distances`` how far each result is from its original
identity, and redraws the delegates of the faces still within ``threshold + margin`` (a bounded number of times).
``BestTries`` keeps each face's try farthest from its original. The guard only embeds crops: it works the same for
any step-2 synthesizer (how a synthesizer escalates on a retry is its own business, see ``effort`` there).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from anon_model.conditioning import FaceConditioning
from anon_model.vca import DelegateDraw

__all__ = ["IdentityGuard", "BestTries", "FaceTry", "GuardOutcome", "MARGIN"]

#: How far beyond the identity network's verification threshold a result must be (its l2 units).
MARGIN = 0.05


class IdentityGuard:
    """Verifies results with the identity network Psi (``embed``, ``distance``, ``threshold``)."""

    def __init__(self, identity, *, margin: float = MARGIN) -> None:
        self.identity, self.margin = identity, margin

    @property
    def limit(self) -> float:
        """The smallest distance to the original that passes."""
        return float(self.identity.threshold) + self.margin

    def distances(self, crops: torch.Tensor, conds: list[FaceConditioning], originals: torch.Tensor) -> torch.Tensor:
        """Distance (B,) of each result (B,3,S,S) to its original's feature (B,D): the smaller of the result framed by
        S-hat_x and by S_x, so a face that is still recognized either way fails."""
        landmarks = torch.stack([c.landmarks_anon for c in conds] + [c.landmarks for c in conds]).float()
        with torch.inference_mode():
            both = self.identity.embed(torch.cat([crops, crops]).float(), landmarks=landmarks)
            return self.identity.distance(both, torch.cat([originals, originals])).reshape(2, -1).amin(0)


@dataclass
class FaceTry:
    """One synthesis of one face: the crop (3,S,S) in [0,1], the delegates that made it, its distance, which try."""

    crop: torch.Tensor
    delegates: DelegateDraw
    distance: float
    number: int  # 1-based


@dataclass
class GuardOutcome:
    """What the guard concluded for one face (the record shows it)."""

    distance: float  # of the kept try to the original, in Psi's metric
    threshold: float  # Psi's verification threshold
    limit: float  # threshold + margin: the distance a result needs to pass
    attempts: int  # tries made
    kept: int  # the try whose result is used
    passed: bool


class BestTries:
    """Per face, the try farthest from the original so far and the number of tries made."""

    def __init__(self, count: int) -> None:
        self.best: list[FaceTry | None] = [None] * count
        self.attempts = [0] * count

    def add(self, indices: list[int], crops: torch.Tensor, delegates: list[DelegateDraw],
            distances: torch.Tensor) -> None:
        """Record one try of the faces ``indices`` (``crops``/``distances`` in that order, ``delegates`` per face)."""
        for k, i in enumerate(indices):
            self.attempts[i] += 1
            distance = float(distances[k])
            if self.best[i] is None or distance > self.best[i].distance:
                self.best[i] = FaceTry(crops[k], delegates[i], distance, self.attempts[i])

    def failing(self, limit: float) -> list[int]:
        """Faces whose best try is still within ``limit`` of the original."""
        return [i for i, t in enumerate(self.best) if t.distance < limit]

    def outcome(self, i: int, guard: IdentityGuard) -> GuardOutcome:
        """The guard's conclusion for face ``i``."""
        t = self.best[i]
        return GuardOutcome(distance=t.distance, threshold=float(guard.identity.threshold), limit=guard.limit,
                            attempts=self.attempts[i], kept=t.number, passed=t.distance >= guard.limit)
