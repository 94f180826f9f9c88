"""Does a replaced face look like part of its photo? Measured on the output, against the original at the same place.

Per face, over the region a method replaced (our pipeline: the outline of S-hat_x with the forehead the synthesizer
replaces, ``replaced_region``):

* seam: the edges along the region's border against the original's there (``metrics.seam_strength``; 1 = none added);
* colour step: CIEDE2000 between the mean colour of a band inside the border (past a blend's soft edge) and the band
  just outside it, on the output and on the original (``metrics.border_colour_difference``); their difference is the
  step the method added (0 = none; below 0: the new face is nearer the colour around it than the old one was): a
  face of another tint pasted onto the skin around it shows up there;
* landmark error: the 68 landmarks found on the output against the S-hat_x it was asked to have (``landmark_nme``;
  the guard's naturalness check measures the same on its crop, before the face is pasted back).

Dlib's HOG detector, a detector of another kind than the one that found the face, is the fourth figure
(``metrics.hog_score``); ``evaluate.py`` and ``docs/strangers.py`` both score faces with ``measure``.
"""
from __future__ import annotations

import numpy as np

from anon_model.evaluation.metrics import border_colour_difference, seam_strength
from anon_model.perception.masks import face_mask
from anon_model.plausibility import landmark_nme
from anon_model.synthesis.warp import FOREHEAD

__all__ = ["replaced_region", "measure", "colour_added"]


def replaced_region(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bool (H, W): the face region the synthesizer replaces for these 68 landmarks (S-hat_x in photo pixels) on a
    first try: the convex hull of the jaw and the brows lifted by ``synthesis.warp.FOREHEAD`` (the guard's retries
    reach higher, up to ``RETRY_FOREHEAD``: their upper border is then measured a little inside the new face)."""
    return face_mask(landmarks, shape[:2], forehead=FOREHEAD) > 0.5


def measure(original: np.ndarray, output: np.ndarray, region: np.ndarray, *, found: np.ndarray | None = None,
            intended: np.ndarray | None = None) -> dict[str, float | None]:
    """The border figures of one replaced face (uint8 RGB photos, same size; ``region`` bool) and, given the
    landmarks ``found`` on the output and the ``intended`` S-hat_x, the landmark error (else None)."""
    if not region.any():
        return {"seam": None, "colour_step": None, "colour_step_original": None, "landmark_error": None}
    return {"seam": seam_strength(original, output, region),
            "colour_step": border_colour_difference(output, region),
            "colour_step_original": border_colour_difference(original, region),
            "landmark_error": None if found is None or intended is None else landmark_nme(found, intended)}


def colour_added(figures: dict[str, float | None]) -> float | None:
    """The colour step at the border the method added: the output's less the original's (None when unmeasured)."""
    out, before = figures.get("colour_step"), figures.get("colour_step_original")
    return None if out is None or before is None else out - before
