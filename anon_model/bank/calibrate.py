"""How close is too close to a bank person: the "no one is put in" limit, calibrated on the bank itself.

With hundreds of people a fixed pairwise threshold stops working: in a bank of 800 real portraits, 85 % of the
members have some *other* member within dlib's 0.6 "same person" threshold, so "beyond 0.6 from everyone" rejects real
strangers too. The bank instead measures how close unrelated people come to it: for every face, the distance to the
nearest face of another person; a result intrudes on a bank person only when it comes closer to them than all but
``PERCENTILE`` % of the bank's members come to their nearest other member.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

__all__ = ["Intrusion", "calibrate_intrusion", "nearest_other", "PERCENTILE"]

#: The percentile of the members' nearest-other-person distances that becomes the limit.
PERCENTILE = 1.0


@dataclass(frozen=True)
class Intrusion:
    """The calibrated limit (a result nearer than ``limit`` to a bank face intrudes on that person) and its basis."""

    limit: float
    percentile: float  # of the members' nearest-other-person distances
    median: float  # the median of those distances (how close unrelated people usually come)
    people: int  # distinct people it was calibrated on

    def to_json(self) -> dict:
        """The fields, rounded, for ``bank.json``."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, values: dict) -> "Intrusion":
        """Read what ``to_json`` wrote."""
        return cls(**values)


def nearest_other(queries: torch.Tensor, embeddings: torch.Tensor, identities: torch.Tensor,
                  own: torch.Tensor) -> torch.Tensor:
    """(Q,) each query's l2 distance to the nearest bank face of a person other than its ``own`` (Q,) identity."""
    d = torch.cdist(queries.float(), embeddings.float())
    d[own[:, None] == identities[None]] = float("inf")
    return d.min(1).values


def calibrate_intrusion(embeddings: torch.Tensor, identities: torch.Tensor, *, percentile: float = PERCENTILE,
                        fallback: float) -> Intrusion:
    """The limit from the bank's faces (N,D) and their person numbers (N,); with fewer than two people there is
    nothing to calibrate on and ``fallback`` (the embedder's verification threshold) is the limit."""
    people = len(torch.unique(identities))
    if people < 2:
        return Intrusion(float(fallback), percentile, float("nan"), people)
    nearest = nearest_other(embeddings, embeddings, identities, identities)
    return Intrusion(float(torch.quantile(nearest, percentile / 100.0)), percentile, float(nearest.median()), people)
