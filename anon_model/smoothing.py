"""Temporal smoothing of a tracked face's box and landmarks: a One-Euro filter (Casiez, Roussel and Vogel, CHI 2012)
over 2-D points, so an anonymized face in a video does not shimmer with the landmark detector's frame-to-frame noise.

Written here rather than taken from PyPI's ``OneEuroFilter`` (0.2.1): that one filters one scalar per object (140
objects per face, each with its own speed, which bends the face's shape) and knows no image scale. This one filters
every point of a face at once, measures speed per point in units of the face's size (so one setting fits small and
large faces), and never lets its output lag more than ``max_lag`` face sizes behind the measurement (a face that
moves fast keeps its anonymized face on it: privacy is not traded for smoothness).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OneEuroFilter"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The smoothing factor of a first-order low-pass filter with ``cutoff`` Hz sampled every ``dt`` seconds."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Smooths a sequence of point sets (N, 2): little cutoff (strong smoothing) while a point rests, more as it
    moves. Speeds are in face sizes per second (``scale`` of each call, e.g. the face box's width in pixels).

    ``min_cutoff`` (Hz): the cutoff at rest; lower removes more jitter. ``beta``: how fast the cutoff rises with speed;
    higher lags less. ``d_cutoff`` (Hz): the cutoff of the speed estimate. ``max_lag``: the largest distance, in face
    sizes, between the output and the measurement (None: no bound).
    """

    def __init__(self, *, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0,
                 max_lag: float | None = 0.04) -> None:
        if min(min_cutoff, d_cutoff) <= 0 or beta < 0 or (max_lag is not None and max_lag < 0):
            raise ValueError("min_cutoff and d_cutoff must be > 0, beta and max_lag >= 0")
        self.min_cutoff, self.beta, self.d_cutoff, self.max_lag = min_cutoff, beta, d_cutoff, max_lag
        self._x: np.ndarray | None = None  # the last output
        self._dx: np.ndarray | None = None  # the last smoothed speed (face sizes per second)
        self._t: float | None = None

    def __call__(self, points: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """The smoothed (N, 2) points at time ``t`` (seconds, increasing) for the measured ``points``."""
        x = np.asarray(points, np.float64)
        if self._x is None or self._t is None or t <= self._t or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt, scale = t - self._t, max(float(scale), 1e-6)
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * ((x - self._x) / (dt * scale) - self._dx)
        speed = np.linalg.norm(self._dx, axis=-1, keepdims=True)
        out = self._x + _alpha(self.min_cutoff + self.beta * speed, dt) * (x - self._x)
        if self.max_lag is not None:
            lag = out - x
            norm = np.linalg.norm(lag, axis=-1, keepdims=True)
            limit = self.max_lag * scale
            out = x + lag * np.minimum(1.0, limit / np.maximum(norm, 1e-12))
        self._x, self._t = out, t
        return out.copy()
