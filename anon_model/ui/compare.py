"""The Compare tab: the same faces under several anonymization methods, with identity distances.

Every method's output photo is cut into the aligned crops of the ORIGINAL faces (same similarity
transform), and each crop is compared with the original crop in the delegate bank's identity space
(``bank.embed``, l2), so all methods are measured alike; a face counts as recognized below the limit the identity
guard applied to it (its record's ``guard_checks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from anon_model.output import AnonOutput, FaceRecord
from anon_model.perception.align import alignment_matrix, warp_to_crop
from anon_model.ui import wording

#: A baseline: (photo RGB uint8, the pipeline's output for it, i.e. where the faces are) -> anonymized photo.
Method = Callable[[np.ndarray, AnonOutput], np.ndarray]


@dataclass
class MethodResult:
    """One method's photo, its aligned face crops and their identity distances to the original crops."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    crops: list[np.ndarray]  # per face, (S, S, 3) uint8
    distances: list[float]  # per face, l2 in the bank's identity space


def face_crops(image: np.ndarray, faces: list[FaceRecord]) -> list[np.ndarray]:
    """The aligned crop of each face of ``faces`` cut out of ``image`` with the face's own alignment."""
    return [warp_to_crop(image, alignment_matrix(f.landmarks, f.crop.shape[0]), f.crop.shape[0]) for f in faces]


def identity_distances(bank, faces: list[FaceRecord], crops: list[np.ndarray]) -> list[float]:
    """l2 distance, in the bank's identity space, between each face's original crop and ``crops``."""
    if not faces:
        return []
    marks = np.stack([np.asarray(f.landmarks_crop, np.float32) for f in faces])
    original = bank.embed(np.stack([f.crop for f in faces]), marks)
    other = bank.embed(np.stack(crops), marks)
    return [float(d) for d in (original - other).norm(dim=1)]


def compare(bank, rgb: np.ndarray, out: AnonOutput, methods: dict[str, Method]) -> list[MethodResult]:
    """Original, ours (``out``) and every baseline in ``methods``, each with per-face identity distances."""
    photos = {"original": rgb, "ours": np.asarray(out.image)}
    photos.update({name: np.asarray(fn(rgb, out), np.uint8) for name, fn in methods.items()})
    results = [MethodResult("original", rgb, [f.crop for f in out.faces], [0.0] * len(out.faces))]
    for name, photo in list(photos.items())[1:]:
        crops = face_crops(photo, out.faces)
        results.append(MethodResult(name, photo, crops, identity_distances(bank, out.faces, crops)))
    return results


def compare_gallery(results: list[MethodResult], *, limits: Sequence[float | None],
                    face: int | None = None) -> list[tuple[np.ndarray, str]]:
    """Gallery tiles: each method's whole photo (``face=None``) or one face's crop, captioned with distances; a face
    closer to its original than its ``limits`` entry (the identity guard's, None: the guard did not run) is marked."""
    items = []
    for r in results:
        shown = range(len(r.distances)) if face is None else [face]
        text = ", ".join(_distance(r.distances[i], limits[i]) for i in shown)
        caption = r.name if r.name == "original" else f"{r.name} · identity distance {text or '–'}"
        items.append((r.image if face is None else r.crops[face], caption))
    return items


def _distance(value: float, limit: float | None) -> str:
    """'0.75', or '0.41 ⚠ recognized' when closer to the original than the limit."""
    recognized = limit is not None and value < limit
    return wording.distance(value, limit) + (" ⚠ recognized" if recognized else "")


def available_methods() -> dict[str, Method]:
    """The obfuscation baselines of the evaluation package (blur, pixelate, mask; not "copy", which changes nothing)."""
    from anon_model.evaluation.dataset import Sample
    from anon_model.evaluation.methods import BASELINES

    unlabelled = Sample(Path("upload"), "upload", "")  # region baselines ignore which dataset sample they get

    def bind(method) -> Method:
        return lambda rgb, out: method(rgb, out.faces, sample=unlabelled, seed=0)

    return {name: bind(make()) for name, make in BASELINES.items() if name != "copy"}
