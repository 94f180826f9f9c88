"""The identity guard (our addition to the paper): a synthesized face counts only if Psi recognizes no one in it.

No one means neither the original person nor any person of the delegate bank (the delegates' sources included):
a result must be beyond Psi's verification threshold plus a margin from all of them (a wider one from the original).
``AnonPipeline`` synthesizes every face, asks ``IdentityGuard.verify`` how far each result is from those identities,
and redraws the delegates of the faces that fail (a bounded number of times); ``BestTries`` keeps each face's try with
the most room beyond its limits.
The guard only looks at crops: it works the same for any step-2 synthesizer (how a synthesizer escalates on a retry
is its own business, see ``effort`` there). It sees through one network only; see the model card for what an
independent recognizer measured. Its second check (``anon_model.plausibility``) asks whether a result still looks like
a face with the structure S-hat_x step 2 was asked for: a try that does not counts as failing too, so a distorted
face is redrawn and, when no try is natural, obscured by the fallback instead of shipped as anonymized.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from anon_model.conditioning import FaceConditioning
from anon_model.plausibility import Plausibility, PlausibilityCheck, default_check
from anon_model.vca import DelegateDraw

__all__ = ["IdentityGuard", "Verdict", "BestTries", "FaceTry", "GuardOutcome", "MARGIN", "ORIGINAL_MARGIN"]

#: How far beyond the identity network's verification threshold a result must be from every bank identity (its l2
#: units) ...
MARGIN = 0.05
#: ... and from the original, the person the anonymization protects. With 0.05 here too, the independent FaceNet-CASIA
#: still recognized 6 of 19 anonymized faces (t1.jpg, the astronaut, Grace Hopper; seeds 0-5), all within 0.10 of
#: dlib's threshold; with 0.10, none of 13 (docs/guard_margin.md). Chosen on those photos: their FaceNet-CASIA figures
#: are no longer a held-out check.
ORIGINAL_MARGIN = 0.10


@dataclass
class Verdict:
    """Distances (B,) of each result to its original and to the nearest bank identity, which bank face that is,
    whether each result is a plausible face (None when that check is off), and the distances a result needs."""

    original: torch.Tensor
    bank: torch.Tensor  # +inf without bank identities
    nearest: torch.Tensor  # (B,) long, bank index (-1 without bank identities)
    plausibility: Plausibility | None = None
    limit: float = 0.0  # from the bank's identities: the guard's threshold + MARGIN
    original_limit: float = 0.0  # from the original: threshold + ORIGINAL_MARGIN

    @functools.cached_property
    def room(self) -> torch.Tensor:
        """(B,) how far each result is beyond the nearer of its two limits (negative: within one, it fails)."""
        return torch.minimum(self.original - self.original_limit, self.bank - self.limit)

    def landmark_error(self, k: int) -> float | None:
        """How far result ``k``'s features lie from S-hat_x (inter-ocular units; None when that was not checked)."""
        if self.plausibility is None or self.room[k] < 0:  # the check runs only on results far enough
            return None
        return float(self.plausibility.error[k])

    def implausible(self, k: int) -> str:
        """Why result ``k`` does not look like a natural face (empty when it does, or when that was not checked)."""
        return "" if self.plausibility is None else self.plausibility.reason(k)



class IdentityGuard:
    """Verifies results with the identity network Psi (``embed``, ``distance``, ``threshold``) against the originals
    and ``others`` (B_o, D): Psi's features of the people no result may look like (the delegate bank's faces); and
    that each result is a plausible face (``plausibility``: True for the offline default perception on Psi's device,
    a ``PlausibilityCheck`` of one's own, e.g. built from the pipeline's analyzer, or False to skip it)."""

    def __init__(self, identity, *, others: torch.Tensor | None = None, margin: float = MARGIN,
                 original_margin: float = ORIGINAL_MARGIN, plausibility: PlausibilityCheck | bool = True) -> None:
        self.identity, self.others, self.margin, self.original_margin = identity, others, margin, original_margin
        if plausibility is True:
            plausibility = default_check(str(next(identity.parameters()).device))
        self.plausibility = plausibility or None

    @property
    def limit(self) -> float:
        """The smallest distance to a bank identity that passes."""
        return float(self.identity.threshold) + self.margin

    @property
    def original_limit(self) -> float:
        """The smallest distance to the original that passes."""
        return float(self.identity.threshold) + self.original_margin

    def verify(self, crops: torch.Tensor, conds: list[FaceConditioning], originals: torch.Tensor) -> Verdict:
        """How far each result (B,3,S,S) is from its original's feature (B,D) and from the bank's identities: the
        smaller of the result framed by S-hat_x and by S_x, so a face that is still recognized either way fails; and
        whether each result is a plausible face (when that check is on: only for the results far enough from
        everyone, the others fail anyway)."""
        landmarks = torch.stack([c.landmarks_anon for c in conds] + [c.landmarks for c in conds]).float()
        with torch.inference_mode():
            both = self.identity.embed(torch.cat([crops, crops]).float(), landmarks=landmarks)
            original = self.identity.distance(both, torch.cat([originals, originals])).reshape(2, -1).amin(0)
            if self.others is None or len(self.others) == 0:
                bank, nearest = torch.full_like(original, float("inf")), torch.full_like(original, -1).long()
            else:
                to_others = self.identity.distance(both[:, None], self.others[None].to(both)).reshape(2, len(crops), -1)
                bank, nearest = to_others.amin(0).min(1)
        verdict = Verdict(original, bank, nearest, limit=self.limit, original_limit=self.original_limit)
        verdict.plausibility = self._plausibility(crops, conds, verdict.room)
        return verdict

    def _plausibility(self, crops: torch.Tensor, conds: list[FaceConditioning],
                      room: torch.Tensor) -> Plausibility | None:
        """The naturalness check of the results beyond both limits (the others count as plausible: they fail anyway)."""
        if self.plausibility is None:
            return None
        far = (room >= 0).nonzero().squeeze(1).tolist()
        score, error = np.ones(len(crops)), np.zeros(len(crops))
        if far:
            checked = self.plausibility(crops[far], [conds[i] for i in far])
            score[far], error[far] = checked.score, checked.error
        return Plausibility(score, error, self.plausibility.max_error, self.plausibility.min_score)


@dataclass
class FaceTry:
    """One synthesis of one face: the crop (3,S,S) in [0,1], the delegates that made it, its distances, which try."""

    crop: torch.Tensor
    delegates: DelegateDraw
    distance: float  # to the original
    bank_distance: float  # to the nearest bank identity
    nearest: int  # that bank face
    number: int  # 1-based
    implausible: str = ""  # why it does not look like a natural face (empty when it does)
    room: float = 0.0  # how far beyond the nearer of its limits (negative: within one)
    landmark_error: float | None = None  # the naturalness check's landmark error (None: not checked)

    @property
    def passed(self) -> bool:
        """Far enough from everyone, and a natural face."""
        return self.room >= 0 and not self.implausible

    @property
    def rank(self) -> tuple[bool, float]:
        """Orders tries, best last: one that passes both checks first, then the one with the most room."""
        return self.passed, self.room


@dataclass
class GuardOutcome:
    """What the guard concluded for one face (the record shows it)."""

    distance: float  # of the kept try to the original, in Psi's metric
    bank_distance: float  # of the kept try to the nearest bank identity (inf without a bank)
    nearest: int  # that bank face's index (-1 without a bank)
    threshold: float  # Psi's verification threshold
    limit: float  # threshold + MARGIN: the distance from every bank identity a result needs to pass
    original_limit: float  # threshold + ORIGINAL_MARGIN: the distance from the original it needs
    attempts: int  # tries made
    kept: int  # the try whose result is used
    passed: bool  # both checks: no one is recognized in it, and it is a plausible face
    implausible: str = ""  # why the kept try does not look like a natural face (empty when it does)
    landmark_error: float | None = None  # the kept try's naturalness landmark error (None: not checked)

    @property
    def room(self) -> float:
        """How far the kept try is beyond the nearer of its two limits (negative: within one)."""
        return min(self.distance - self.original_limit, self.bank_distance - self.limit)

    @property
    def recognized(self) -> bool:
        """The kept try is within the limit of the original or of a bank identity."""
        return self.distance < self.original_limit or self.bank_distance < self.limit

    def reason(self) -> str:
        """Why the face failed, in words, naming each check that failed (empty when it passed)."""
        if self.passed:
            return ""
        why = []
        if self.recognized:
            who = (f"the original (distance {self.distance:.2f} < {self.original_limit:.2f})"
                   if self.distance < self.original_limit
                   else f"bank face {self.nearest} (distance {self.bank_distance:.2f} < {self.limit:.2f})")
            why.append(f"still recognized as {who}")
        if self.implausible:
            why.append(f"step 2 could not make a natural-looking face ({self.implausible})")
        return f"{'; '.join(why)} after {self.attempts} tries"


class BestTries:
    """Per face, the best try (one passing both checks, else the one with the most room beyond its limits;
    ``FaceTry.rank``) and the number of tries made."""

    def __init__(self, count: int) -> None:
        self.best: list[FaceTry | None] = [None] * count
        self.attempts = [0] * count

    def add(self, indices: list[int], crops: torch.Tensor, delegates: list[DelegateDraw], verdict: Verdict) -> None:
        """Record one try of the faces ``indices`` (``crops``/``verdict`` in that order, ``delegates`` per face)."""
        for k, i in enumerate(indices):
            self.attempts[i] += 1
            attempt = FaceTry(crops[k], delegates[i], float(verdict.original[k]), float(verdict.bank[k]),
                              int(verdict.nearest[k]), self.attempts[i], verdict.implausible(k),
                              room=float(verdict.room[k]), landmark_error=verdict.landmark_error(k))
            if self.best[i] is None or attempt.rank > self.best[i].rank:
                self.best[i] = attempt

    def failing(self) -> list[int]:
        """Faces whose best try still comes within a limit of someone, or is not a plausible face."""
        return [i for i, t in enumerate(self.best) if not t.passed]

    def outcome(self, i: int, guard: IdentityGuard) -> GuardOutcome:
        """The guard's conclusion for face ``i``."""
        t = self.best[i]
        return GuardOutcome(distance=t.distance, bank_distance=t.bank_distance, nearest=t.nearest,
                            threshold=float(guard.identity.threshold), limit=guard.limit,
                            original_limit=guard.original_limit,
                            attempts=self.attempts[i], kept=t.number,
                            passed=t.passed, implausible=t.implausible,
                            landmark_error=t.landmark_error)
