"""A face's skin tone checked against its identity features, as the bank's faces with such features show it (ours).

VAA draws delegates of x's skin tone (ITA degrees). Measured from the photo's pixels, a tone follows the exposure:
biden.jpg, in dim indoor light, measures -24 (brown) and got Black delegates' features; obama.jpg, in warm light,
+30 (tan) and got white ones; a photo darkened x0.6 moves a bank face's measured tone by 66 degrees (median). The
bank's portraits are lit alike, so their measured tones compare with each other, not with a user's photo. The
recognizer's features hardly change with exposure, so the bank also reads a tone from them: a ridge regression of its
faces' measured tones on their embeddings (``ToneModel.fit``). The reading is coarse (it pulls towards the bank's
middle), so x's measured tone stands unless it lies farther from the reading than most bank faces' own tones lie
from theirs (``ToneModel.settle``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ToneModel", "MIN_FACES", "RIDGE", "AGREEMENT"]

#: The least number of bank faces with a measured tone to fit on; a smaller bank leaves x's tone measured in the photo.
MIN_FACES = 200
#: The ridge penalty (embeddings are unit-scale; 0.01-1 gave the same fit in 5-fold cross-validation on the 800).
RIDGE = 0.1
#: The share of bank faces whose measured tone lies within ``ToneModel.spread`` of the reading from their features
#: (cross-validated): a measurement farther off than that is taken for the photo's light, not the person's skin.
AGREEMENT = 0.8


def _ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights (D,) and bias of the ridge regression of ``y`` (N,) on ``x`` (N,D), the bias unpenalized."""
    mean_x, mean_y = x.mean(0), y.mean()
    centred = x - mean_x
    weights = np.linalg.solve(centred.T @ centred + RIDGE * np.eye(x.shape[1]), centred.T @ (y - mean_y))
    return weights, float(mean_y - mean_x @ weights)


@dataclass(frozen=True)
class ToneModel:
    """Skin tone (ITA degrees) as a linear function of a face's embedding in the bank's space, and how far the bank's
    own measured tones lie from it (``spread``: the ``AGREEMENT`` quantile, 5-fold cross-validated)."""

    weights: np.ndarray  # (D,)
    bias: float
    spread: float

    @classmethod
    def fit(cls, embeddings: torch.Tensor, tones: torch.Tensor) -> "ToneModel | None":
        """Fit on the faces of ``embeddings`` (N,D) with a measured tone in ``tones`` (N,; NaN: greyscale, left out);
        None when fewer than ``MIN_FACES`` have one."""
        known = ~torch.isnan(tones)
        if int(known.sum()) < MIN_FACES:
            return None
        x, y = embeddings[known].double().numpy(), tones[known].double().numpy()
        fold = np.arange(len(y)) % 5
        residuals = []
        for k in range(5):
            weights, bias = _ridge(x[fold != k], y[fold != k])
            residuals.append(np.abs(y[fold == k] - x[fold == k] @ weights - bias))
        weights, bias = _ridge(x, y)
        return cls(weights, bias, float(np.quantile(np.concatenate(residuals), AGREEMENT)))

    def __call__(self, embedding: torch.Tensor) -> float:
        """The tone (ITA degrees) read from a face's embedding (D,)."""
        return float(embedding.double().reshape(-1).numpy() @ self.weights + self.bias)

    def settle(self, embedding: torch.Tensor, measured: float) -> float:
        """x's tone: ``measured`` in its photo where it agrees with the reading from its ``embedding`` (within
        ``spread``), else the reading (a photo too dark, too bright or tinted; a greyscale photo measures NaN)."""
        read = self(embedding)
        return measured if not math.isnan(measured) and abs(measured - read) <= self.spread else read
