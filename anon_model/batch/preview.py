"""``--preview``: a dry run that draws what the detector found instead of anonymizing it.

Each face gets its box and number (with ``--draw-scores``, its detection score): yellow when step 2 would take it,
red when it would go straight to the fallback (too small, turned away, landmarks off the box or not fitting the face;
the JSON says why).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from anon_model.ui.render import COLOR_BOX, COLOR_CHOSEN, draw_boxes

if TYPE_CHECKING:
    from anon_model.pipeline import AnonPipeline
    from anon_model.preprocessor import PreprocessorConfig

__all__ = ["preview"]


def preview(pipe: AnonPipeline, rgb: np.ndarray, cfg: PreprocessorConfig, *, draw_scores: bool = False,
            search: str = "auto") -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``rgb`` with its detections drawn (the views of ``search``, as the run would look), and per face: box, score
    and why step 2 would not take it (None: it would)."""
    faces = pipe.perceive(rgb, cfg, search=search)
    reasons = [pipe.triage(f) for f in faces]  # the run's own triage
    entries = [{"face": i, "box": [round(float(v), 1) for v in f.box], "score": round(float(f.score), 4),
                "step2": why is None, "reason": why or ""} for i, (f, why) in enumerate(zip(faces, reasons))]
    out = rgb
    for step2, color in ((True, COLOR_BOX), (False, COLOR_CHOSEN)):
        chosen = [e for e in entries if e["step2"] is step2]
        labels = [f"{e['face'] + 1}" + (f" {e['score']:.2f}" if draw_scores else "") for e in chosen]
        if chosen:
            out = draw_boxes(out, [e["box"] for e in chosen], color=color, labels=labels)
    return out, entries
