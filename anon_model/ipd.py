"""Instance-level probabilistic delegate (IPD) sampling, paper §3.2, Eq. 6-8.

Pure tensor functions: the utilities u_a (Eq. 7) and u_g (Eq. 8) normalize a distance to
[0, 1], so their l1 sensitivity is Delta_u = 1, and the exponential mechanism (Eq. 6) turns
them into the probabilities with which a delegate is drawn among the candidates M_q.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "appearance_distance",
    "geometry_distance",
    "utility_appearance",
    "utility_geometry",
    "exponential_mechanism",
    "sample_delegate",
]


def appearance_distance(feature: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """l2 distance d(x, X_j) between x's identity feature (D,) and the candidates' (N, D) -> (N,)."""
    return torch.linalg.vector_norm(candidates - feature, dim=-1)


def _normalize_shape(points: torch.Tensor) -> torch.Tensor:
    """Remove translation and scale from landmark sets (..., P, 2): centroid 0, Frobenius norm 1."""
    centered = points - points.mean(dim=-2, keepdim=True)
    return centered / torch.linalg.matrix_norm(centered).clamp_min(1e-12)[..., None, None]


def geometry_distance(landmarks: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Landmark distance d(S_x, X_j) after similarity (Procrustes) alignment: S_x (P, 2), candidates (N, P, 2) -> (N,).

    Both shapes are centred and scaled to unit norm, the candidate is rotated onto S_x (no
    reflection), and the residual norm is returned, so the distance is in [0, 2] and blind to
    where the face is, how big it is and its in-plane roll.
    """
    ref = _normalize_shape(landmarks.to(candidates.dtype))
    cand = _normalize_shape(candidates)
    u, _, vh = torch.linalg.svd(cand.transpose(-1, -2) @ ref)
    d = torch.sign(torch.linalg.det(u @ vh))
    flip = torch.ones(*d.shape, 2, dtype=cand.dtype, device=cand.device)
    flip[..., 1] = d
    rotation = u @ torch.diag_embed(flip) @ vh
    return torch.linalg.matrix_norm(cand @ rotation - ref)


def _min_max(distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d - min_j d, max_j d - min_j d) with a zero spread replaced by 1 (all candidates alike)."""
    lo, hi = distances.min(), distances.max()
    spread = hi - lo
    return distances - lo, torch.where(spread > 0, spread, torch.ones_like(spread))


def utility_appearance(distances: torch.Tensor) -> torch.Tensor:
    """Appearance utility in [0, 1] of each candidate (closer in feature space = more useful).

    ``distances`` are d(x, X_j) (see ``appearance_distance``). When every candidate is equally
    far (or there is one), Eq. 7 is 0/0; we then give every candidate utility 1.
    """
    offset, spread = _min_max(distances)
    # Eq. 7: u_a(x, X_i) = (max_j d(x, X_j) - d(x, X_i)) / (max_j d(x, X_j) - min_j d(x, X_j))
    utility = (spread - offset) / spread
    return torch.where(distances.max() > distances.min(), utility, torch.ones_like(utility))


def utility_geometry(distances: torch.Tensor) -> torch.Tensor:
    """Geometry utility in [0, 1] of each candidate (more distinct structure = more useful).

    ``distances`` are d(S_x, X_j) (see ``geometry_distance``). When every candidate is equally
    far (or there is one), Eq. 8 is 0/0; we then give every candidate utility 1.
    """
    offset, spread = _min_max(distances)
    # Eq. 8: u_g(S_x, X_i) = (d(S_x, X_i) - min_j d(S_x, X_j)) / (max_j d(S_x, X_j) - min_j d(S_x, X_j))
    utility = offset / spread
    return torch.where(distances.max() > distances.min(), utility, torch.ones_like(utility))


def exponential_mechanism(utilities: torch.Tensor, epsilon: float, sensitivity: float = 1.0) -> torch.Tensor:
    """Sampling probabilities P(X_i) of the candidates (sum 1) for privacy budget ``epsilon`` >= 0.

    ``epsilon = 0`` is uniform; ``epsilon = inf`` puts all mass (shared equally) on the
    utility-maximizing candidates.
    """
    u = torch.as_tensor(utilities, dtype=torch.float64)
    if u.ndim != 1 or u.numel() == 0:
        raise ValueError(f"need a non-empty 1-D vector of utilities, got shape {tuple(u.shape)}")
    if not (epsilon >= 0) or not (sensitivity > 0):
        raise ValueError(f"need epsilon >= 0 and sensitivity > 0, got {epsilon}, {sensitivity}")
    if math.isinf(epsilon):
        best = (u == u.max()).to(torch.float64)
        return best / best.sum()
    # Eq. 6: P(X_i) = exp(eps * u(q, X_i) / (2 du)) / sum_j exp(eps * u(q, X_j) / (2 du))
    return torch.softmax(epsilon * u / (2.0 * sensitivity), dim=0)


def sample_delegate(
    utilities: torch.Tensor,
    epsilon: float,
    *,
    sensitivity: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[int, torch.Tensor]:
    """Draw one candidate index by simple random sampling from Eq. 6; returns (index, probabilities)."""
    probs = exponential_mechanism(utilities, epsilon, sensitivity)
    index = int(torch.multinomial(probs, 1, generator=generator))
    return index, probs
