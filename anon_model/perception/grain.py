"""The photo's grain on a face that paste-back enlarges.

A face larger in the photo than in its 256-px crop comes back through an enlargement: smoother than the skin, hair
and background around it, which hold detail finer than a crop pixel (sensor noise, JPEG texture, pores). That
smoothness is a tell. ``add_grain`` gives the pasted face noise whose fine detail is as strong as the photo's own
there: noise, so it carries nothing of x (the identity guard judged the crop without it, and recognizers look at
faces below the crop's resolution anyway).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["add_grain", "fine_detail", "MIN_ENLARGEMENT"]

#: Faces enlarged less than this on paste-back are left as they are: the crop holds about all the detail they had.
MIN_ENLARGEMENT = 1.5
#: Robust standard deviation from the median absolute deviation (exact for normally distributed values).
_MAD_TO_STD = 1.4826


def fine_detail(image: np.ndarray, enlargement: float) -> np.ndarray:
    """The part of ``image`` (float32, H x W x C) finer than a crop pixel enlarged ``enlargement`` times: what the
    crop could not hold."""
    return image - cv2.GaussianBlur(image, (0, 0), 0.5 * enlargement)


def _spread(values: np.ndarray) -> np.ndarray:
    """Per channel (N, C): the robust standard deviation (edges of features do not count as grain)."""
    return _MAD_TO_STD * np.median(np.abs(values - np.median(values, axis=0)), axis=0)


def add_grain(pasted: np.ndarray, original: np.ndarray, inside: np.ndarray, enlargement: float, *,
              seed: int = 0) -> np.ndarray:
    """``pasted`` (float32 H x W x 3, the enlarged face region) with fine-grained noise added, so that its fine
    detail (``fine_detail``) is as strong as ``original``'s (the photo there) over the bool mask ``inside``; the same
    ``seed``, the same grain. Unchanged when the face is enlarged less than ``MIN_ENLARGEMENT`` or ``inside`` is
    nearly empty."""
    if enlargement < MIN_ENLARGEMENT or int(inside.sum()) < 64:
        return pasted
    want = _spread(fine_detail(original, enlargement)[inside])
    have = _spread(fine_detail(pasted, enlargement)[inside])
    missing = np.sqrt(np.maximum(want**2 - have**2, 0.0))
    noise = fine_detail(np.random.default_rng(seed).standard_normal(pasted.shape[:2]).astype(np.float32), enlargement)
    scale = missing / max(float(_spread(noise[inside][:, None])[0]), 1e-6)
    return pasted + noise[..., None] * scale  # one grain for the three channels: luminance noise, as sensors mostly make
