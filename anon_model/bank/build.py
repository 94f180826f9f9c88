"""Building a delegate bank from photos: detect, align, embed every face (in bounded batches) and estimate its gender
and age (``anon_model.attributes``; skipped, with a warning, when the estimator cannot be loaded).

The functions here return a bank's contents (``DelegateBank``'s constructor arguments); ``DelegateBank.build`` and
``DelegateBank.from_faces`` wrap them, so this module never needs the bank class.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from anon_model.attributes import optional_estimator
from anon_model.bank.embedder import Embedder, load_embedder
from anon_model.errors import AnonModelError, ImageError
from anon_model.imageio import find_images, load_image
from anon_model.perception.face import Face

__all__ = ["BankBuilder", "BankContents", "from_faces", "from_folder"]

#: The keyword arguments of ``DelegateBank(...)``: embeddings, landmarks, poses, crops, sources, embedder, attributes, ...
BankContents = dict[str, Any]


def from_faces(faces: Iterable[Face], sources: Iterable[str], *, identity: Embedder | str = "auto",
               jpeg_quality: int = 95, batch_size: int = 32, info: dict[str, Any] | None = None,
               attributes: bool = True) -> BankContents:
    """A bank from analyzed faces (``FaceAnalyzer`` records) and a source label for each (``attributes``: estimate
    each face's gender and age)."""
    builder = BankBuilder(as_embedder(identity), jpeg_quality, batch_size, attributes=attributes)
    for face, source in zip(faces, sources):
        builder.add(face, source)
    return builder.finish(info)


def from_folder(folder: str | os.PathLike, *, analyzer=None, identity: Embedder | str = "auto",
                jpeg_quality: int = 95, min_size: float = 48.0, batch_size: int = 32,
                progress: bool = True, attributes: bool = True) -> BankContents:
    """Detect, align and embed every face (box side >= ``min_size`` px) of every photo under ``folder``
    (``attributes``: also estimate each face's gender and age)."""
    folder = Path(folder)
    files = find_images(folder, recursive=True)[0]
    if not files:
        raise AnonModelError(f"no images under {folder}")
    analyzer = analyzer or default_analyzer()
    builder = BankBuilder(as_embedder(identity), jpeg_quality, batch_size, attributes=attributes)
    skipped = []
    for path in tqdm(files, desc="bank build", unit="photo", disable=not progress):
        try:
            faces = analyzer(load_image(path))
        except ImageError as err:
            skipped.append(f"{path.name}: {err}")
            continue
        for j, face in enumerate(faces):
            if min(face.box[2] - face.box[0], face.box[3] - face.box[1]) >= min_size:
                builder.add(face, f"{path.relative_to(folder).as_posix()}#{j}")
    for line in skipped:
        warnings.warn(f"bank build skipped {line}", stacklevel=2)
    return builder.finish({"built_from": folder.name, "photos": len(files), "skipped": len(skipped)})


class BankBuilder:
    """Accumulates faces, embedding them in batches so memory stays bounded for large folders."""

    def __init__(self, embedder: Embedder, jpeg_quality: int, batch_size: int, *, attributes: bool = True) -> None:
        """``attributes``: estimate each face's gender and age (warns and builds without them if the estimator is
        missing; VAA then cannot match them)."""
        self.embedder, self.quality, self.batch_size = embedder, jpeg_quality, batch_size
        self.crops, self.sources, self.landmarks, self.poses, self.embeddings = [], [], [], [], []
        self.estimator = optional_estimator("bank faces get no gender/age estimates, so delegates will not match "
                                            "them") if attributes else None
        self.attributes: list = []
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.crop_size: int | None = None

    def __len__(self) -> int:
        return len(self.crops)

    def add(self, face: Face, source: str) -> None:
        """Store one face's crop (JPEG), landmarks and pose; its embedding is computed with its batch."""
        size = face.crop.shape[0]
        if self.crop_size not in (None, size):
            raise ValueError(f"all crops of a bank must have one size, got {size} and {self.crop_size}")
        self.crop_size = size
        bgr = np.ascontiguousarray(face.crop[..., ::-1])
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise AnonModelError(f"could not encode the crop of {source}")
        self.crops.append(jpeg.tobytes())
        self.sources.append(source)
        self.landmarks.append(np.asarray(face.crop_landmarks, np.float32) / size)
        self.poses.append(np.asarray(face.pose, np.float32))
        if self.estimator is not None:
            self.attributes.append(self.estimator(face.crop, [face.crop_landmarks])[0])
        self._pending.append((face.crop, np.asarray(face.crop_landmarks, np.float32)))
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            crops, landmarks = map(np.stack, zip(*self._pending))
            self.embeddings.append(self.embedder(crops, landmarks))
            self._pending = []

    def finish(self, info: dict[str, Any] | None) -> BankContents:
        """The bank's contents once the last batch is embedded."""
        self._flush()
        if not self.crops:
            raise AnonModelError("no face found: the delegate bank would be empty")
        return dict(
            embeddings=torch.cat(self.embeddings), landmarks=torch.from_numpy(np.stack(self.landmarks)),
            poses=torch.from_numpy(np.stack(self.poses)), crops=self.crops, sources=self.sources,
            embedder=self.embedder.name, threshold=self.embedder.threshold, crop_size=self.crop_size, info=info,
            attributes=self.attributes if self.estimator is not None else None,
            attributes_by=self.estimator.name if self.estimator is not None else None,
        )


def as_embedder(identity: Embedder | str) -> Embedder:
    """An embedder given as such or by name (``load_embedder``)."""
    return identity if isinstance(identity, Embedder) else load_embedder(identity)


def default_analyzer():
    """The default perception stack (imported late: building a bank from given faces needs none)."""
    from anon_model.perception import FaceAnalyzer

    return FaceAnalyzer()
