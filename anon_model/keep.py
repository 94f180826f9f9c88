"""Keep who you choose (issue 24): faces of reference people are left exactly as they were; every other face is
anonymized as usual.

When unsure, anonymize. A face is kept only when both offline recognizers agree, with room to spare, that it is one
reference person: dlib's ResNet (the pipeline's Psi, same person below 0.6) closer than ``DLIB_KEEP`` and FaceNet-CASIA
(another architecture, training set and crop; same person below 1.0) closer than ``CASIA_KEEP``. A face too small or
turned too far to judge (``fallback.unsuitable``) is never kept. The margins and what they were measured on:
``docs/keep.md`` (``docs/keep_rates.py``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
from PIL import Image

from anon_model.errors import AnonModelError
from anon_model.fallback import unsuitable
from anon_model.identity.facenet_casia import THRESHOLD
from anon_model.imageio import ImageLike, find_images, load_image

if TYPE_CHECKING:
    from anon_model.identity.base import IdentityNetwork
    from anon_model.identity.facenet_casia import FaceNetCasia
    from anon_model.perception.face import Face

__all__ = ["Reference", "ReferenceLike", "KeepDecision", "KeepJudge", "CHOSEN", "DLIB_KEEP", "CASIA_KEEP", "reference_photos",
           "load_reference_photo", "follow", "restore_kept"]

#: dlib's verification threshold (same person below) ...
DLIB_THRESHOLD = 0.6
#: ... and the distance a face must be under to be kept: 0.1 of room (docs/keep.md).
DLIB_KEEP = 0.5
#: FaceNet-CASIA's verification threshold ...
CASIA_THRESHOLD = THRESHOLD
#: ... and the distance a face must be under to be kept: 0.15 of room (docs/keep.md).
CASIA_KEEP = 0.85


@dataclass(frozen=True)
class Reference:
    """One person to keep: where their photo came from and its face's embeddings under both recognizers."""

    name: str  # the photo's path, or "reference N" for an image given in memory
    dlib: np.ndarray  # (128,) Psi's embedding
    casia: np.ndarray  # (512,) FaceNet-CASIA's embedding


@dataclass(frozen=True)
class KeepDecision:
    """Whether one face is kept, the reference it came nearest to, its distances to that reference, and why."""

    kept: bool
    reference: str = ""  # the nearest reference ("" when the face could not be judged)
    dlib_distance: float | None = None
    casia_distance: float | None = None
    reason: str = ""

    def contradicts(self) -> bool:
        """Whether either recognizer calls this face someone other than its nearest reference (a judged face at or
        beyond a verification threshold): a track that was kept is then no longer trusted."""
        return self.dlib_distance is not None and (self.dlib_distance >= DLIB_THRESHOLD
                                                   or self.casia_distance >= CASIA_THRESHOLD)


#: A face kept because the user chose it (``keep_faces=``, the app's per-face toggle), not by a reference.
CHOSEN = KeepDecision(True, reason="kept as you chose")


#: What ``keep=`` takes: references from ``AnonPipeline.reference``, photos, or paths of photos or folders of them.
ReferenceLike = Union[Reference, ImageLike]


class KeepJudge:
    """Embeds faces under both recognizers and decides, face by face, whether each is a reference person."""

    def __init__(self, identity: IdentityNetwork) -> None:
        self.identity = identity

    @property
    def casia(self) -> FaceNetCasia:
        """FaceNet-CASIA: the identity guard's second recognizer, loaded once per device on first use."""
        from anon_model.guard import default_second

        return default_second(str(next(self.identity.parameters()).device))

    def embed(self, rgb: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, np.ndarray]:
        """The faces' embeddings (N,128) under Psi, from their aligned crops, and (N,512) under FaceNet-CASIA."""
        if not faces:
            return np.zeros((0, 128)), np.zeros((0, 512))
        device = next(self.identity.parameters()).device
        crops = torch.from_numpy(np.stack([f.crop for f in faces])).permute(0, 3, 1, 2).float().div(255.0)
        landmarks = torch.from_numpy(np.stack([f.crop_landmarks for f in faces])).float()
        with torch.inference_mode():
            dlib = self.identity.embed(crops.to(device), landmarks=landmarks.to(device)).double().cpu().numpy()
        return dlib, self.casia.embed([rgb] * len(faces), [f.landmarks for f in faces])

    def reference(self, name: str, rgb: np.ndarray, faces: Sequence[Face]) -> Reference:
        """The reference of a photo's one face; a clear error naming the photo when it has none, several, or one
        too small or turned too far to judge."""
        if not faces:
            raise AnonModelError(f"{name}: no face found in this reference photo")
        if len(faces) > 1:
            raise AnonModelError(f"{name}: {len(faces)} faces in this reference photo; a reference shows one person: "
                                 "crop the photo to the person to keep")
        why = faces[0].failure or unsuitable(faces[0])
        if why:
            raise AnonModelError(f"{name}: the face of this reference photo cannot be judged ({why}): give a larger, "
                                 "more frontal photo of the person")
        dlib, casia = self.embed(rgb, faces)
        return Reference(name, dlib[0], casia[0])

    def decide(self, rgb: np.ndarray, faces: Sequence[Face], references: Sequence[Reference]) -> list[KeepDecision]:
        """Per face of ``rgb``: kept when it can be judged and some reference is within both margins (the one with
        the most room when several are), else not, with its nearest reference and distances."""
        judged = [i for i, f in enumerate(faces) if not (f.failure or unsuitable(f))]
        decisions = [KeepDecision(False, reason=f"not judged, anonymized: {f.failure or unsuitable(f)}")
                     for f in faces]
        if not references or not judged:
            return decisions
        dlib, casia = self.embed(rgb, [faces[i] for i in judged])
        ref_dlib = np.stack([r.dlib for r in references])
        ref_casia = np.stack([r.casia for r in references])
        for i, d, c in zip(judged, _distances(dlib, ref_dlib), _distances(casia, ref_casia)):
            room = np.minimum(DLIB_KEEP - d, CASIA_KEEP - c)  # the nearer margin, per reference
            best = int(np.argmax(room))
            name, dd, dc = references[best].name, float(d[best]), float(c[best])
            kept = bool(room[best] > 0)
            reason = (f"kept: matches reference {name} under both recognizers (dlib {dd:.2f} < {DLIB_KEEP}, "
                      f"FaceNet-CASIA {dc:.2f} < {CASIA_KEEP})" if kept else
                      f"not a reference person with room to spare (nearest {name}: dlib {dd:.2f}, FaceNet-CASIA "
                      f"{dc:.2f}; keeping needs < {DLIB_KEEP} and < {CASIA_KEEP})")
            decisions[i] = KeepDecision(kept, name, dd, dc, reason)
        return decisions


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,M) L2 distances between embeddings (N,D) and (M,D)."""
    return np.linalg.norm(np.asarray(a, np.float64)[:, None] - np.asarray(b, np.float64)[None], axis=-1)


def reference_photos(keep: ReferenceLike | Sequence[ReferenceLike]) -> list[tuple[str, Reference | ImageLike]]:
    """The references and photos of ``keep`` one by one, each with the name errors and records use: a folder gives
    each of its images, an image in memory is "reference N"."""
    items = [keep] if isinstance(keep, (str, os.PathLike, Reference, Image.Image, np.ndarray)) else list(keep)
    named: list[tuple[str, Reference | ImageLike]] = []
    for n, item in enumerate(items, 1):
        if isinstance(item, Reference):
            named.append((item.name, item))
        elif isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
            photos = find_images(item)[0]
            if not photos:
                raise AnonModelError(f"{item}: no reference photos in this folder")
            named += [(str(p), p) for p in photos]
        else:
            named.append((str(item) if isinstance(item, (str, os.PathLike)) else f"reference {n}", item))
    return named


def load_reference_photo(name: str, photo: ImageLike) -> np.ndarray:
    """A reference photo as RGB (an unreadable file is an error naming it)."""
    try:
        return load_image(photo)
    except AnonModelError as exc:
        text = str(exc)
        raise type(exc)(text if text.startswith(name) else f"{name}: {text}") from None


def follow(kept: KeepDecision | None, now: KeepDecision, frame: int) -> KeepDecision:
    """A video track's decision in this frame, given the decision that first kept it (``kept``, or None): a track
    kept once stays kept through frames it cannot be judged in or judged without room, until either recognizer calls
    it someone else (``contradicts``: a tracker mix-up), so the person does not flicker between kept and
    anonymized."""
    if now.kept or kept is None or now.contradicts():
        return now
    return KeepDecision(True, kept.reference, now.dlib_distance, now.casia_distance,
                        f"kept along its track (matched reference {kept.reference} in frame {frame}); here {now.reason}")


def restore_kept(out: np.ndarray, original: np.ndarray, faces: Sequence[Face],
                 decisions: Sequence[KeepDecision | None]) -> np.ndarray:
    """``out`` with each kept face (its box and landmarks) put back pixel for pixel from ``original``, so that no
    neighbour's obscuring or blend reaches into it, except where it overlaps the box of a face not kept (whose
    treatment wins: when unsure, anonymize)."""
    keep = np.zeros(out.shape[:2], bool)
    kept = [decision is not None and decision.kept for decision in decisions]
    for face, is_kept in zip(faces, kept):
        if is_kept:  # its box and its landmarks' extent, as the obscuring covers a face
            points = np.asarray(face.landmarks, np.float64)
            _mark(keep, np.r_[np.minimum(face.box[:2], points.min(0)), np.maximum(face.box[2:], points.max(0))], True)
    for face, is_kept in zip(faces, kept):
        if not is_kept:
            _mark(keep, face.box, False)
    if not keep.any():
        return out
    out = out.copy()
    out[keep] = original[keep]
    return out


def _mark(mask: np.ndarray, box: np.ndarray, value: bool) -> None:
    """Set ``mask`` inside ``box`` (x0, y0, x1, y1, clipped; outward to whole pixels) to ``value``."""
    h, w = mask.shape
    x0, y0 = (max(0, int(np.floor(v))) for v in box[:2])
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    mask[y0:y1, x0:x1] = value
