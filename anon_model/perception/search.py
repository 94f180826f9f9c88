"""Looking for faces the way an attacker would: besides the photo as it is, an exposure-normalized copy and the photo
turned by quarter turns, each face reported once, in the photo's coordinates, with the view it was best found in.

Modes (``SEARCH_MODES``): "upright" looks at the photo as it is; "auto" (the pipeline's default) adds the normalized
copy (``views.normalize``) when the photo is poorly exposed or heavily compressed, then the quarter turns (of the
photo, and of the normalized copy when it was made) when nothing sure was found or one of the largest faces found shows
upright only turned (``orientation.py``); "thorough" always looks at all eight. The normalized copy is made only for
photos that need it: MTCNN is slow on equalized textures (docs/recall.py's dull brick texture, 3000x2000: 7-9 s per
normalized pass against 1 s on the photo as it is).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from anon_model.perception.nms import nms
from anon_model.perception.orientation import upright_turns
from anon_model.perception.views import View, needs_normalizing, renderer

if TYPE_CHECKING:  # the CLI imports this module for its choices: keep it free of the detectors (torch)
    from anon_model.perception.detect import Detection

SEARCH_MODES = ("upright", "auto", "thorough")
#: A detection at least this confident is sure: upright, well-exposed faces score 0.998-1.0 with MTCNN; turned faces
#: it still finds mostly score lower (0.7-0.98), but not always, hence the orientation check of the largest faces.
SURE_SCORE = 0.995

#: How many of the largest faces found have their orientation checked ("auto").
ORIENTATION_CHECKS = 3

#: A detector run on one view: its detections in that view's pixels.
Detect = Callable[[np.ndarray], "list[Detection]"]


def search_faces(detect: Detect, image: np.ndarray, mode: str, *, merge_iou: float) -> list[Detection]:
    """Every face ``detect`` finds in the views of ``image`` that ``mode`` looks at, biggest first; a face found in
    several views (boxes overlapping by more than ``merge_iou``) is kept once, from the view where it scored
    highest (the photo as it is on a tie)."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"face search must be one of {', '.join(SEARCH_MODES)}, not {mode!r}")
    render = renderer(image)
    found = _look(detect, image, render, [View()])
    if mode == "upright":
        return found
    flawed = mode == "thorough" or needs_normalizing(image)
    if flawed:
        found += _look(detect, image, render, [View(normalized=True)])
    largest = _merge(found, merge_iou)[:ORIENTATION_CHECKS]
    if mode == "thorough" or not _sure(found) or _turned(largest, image.shape, render):
        copies = (False, True) if flawed else (False,)
        found += _look(detect, image, render, [View(turns, normalized) for turns in (1, 2, 3) for normalized in copies])
    return _merge(found, merge_iou)


def _look(detect: Detect, image: np.ndarray, render: Callable[[View], np.ndarray],
          views: list[View]) -> list[Detection]:
    """What ``detect`` finds in each view, as boxes of the photo tagged with their view."""
    found = []
    for view in views:
        found += [dataclasses.replace(d, box=view.box_to_photo(d.box, image.shape), view=view)
                  for d in detect(render(view))]
    return found


def _sure(found: list[Detection]) -> bool:
    return any(d.score >= SURE_SCORE for d in found)


def _turned(found: list[Detection], shape: tuple[int, ...], render: Callable[[View], np.ndarray]) -> bool:
    """Whether any of these faces shows upright only when turned (the photo is probably turned)."""
    return any(upright_turns(render(d.view), d.view.box_from_photo(d.box, shape)) for d in found)


def _merge(found: list[Detection], iou: float) -> list[Detection]:
    """One detection per face (non-maximum suppression over all views), biggest first."""
    if not found:
        return []
    keep = nms(np.stack([d.box for d in found]), np.array([d.score for d in found]), iou)
    kept = [found[i] for i in keep]
    return sorted(kept, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
