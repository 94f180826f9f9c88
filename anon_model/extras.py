"""The optional parts of anon_model and the pip extra that installs each, so a missing one is one clear line.

The core install anonymizes photos and videos from Python and the command line; ``pyproject.toml`` declares the
extras (``app``, ``train``, ``eval``, ``datasets``; ``test`` pulls all of them) and ``tests/test_packaging.py`` checks
that this table and it agree.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from anon_model.errors import AnonModelError

#: Top-level import name -> the extra that installs it.
EXTRAS = {
    "gradio": "app",
    "accelerate": "train", "torchvision": "train", "diffusers": "train",
    "matplotlib": "eval", "h5py": "eval", "insightface": "eval", "face_alignment": "eval", "onnx": "eval",
    "datasets": "datasets",
}


class MissingExtraError(AnonModelError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the pip extra that installs it."""


def install_hint(module: str | None) -> str:
    """What to run to get `module` (a top-level import name): the extra that has it, else the module itself."""
    top = (module or "").split(".")[0]
    extra = EXTRAS.get(top)
    return f"pip install 'anon_model[{extra}]'" if extra else f"pip install {top or 'anon_model'}"


def missing_message(feature: str, module: str) -> str:
    """One line: `feature` cannot run because `module` is not installed, and how to install it."""
    return f"{feature} needs {module}, which is not installed: {install_hint(module)}"


def installed(module: str) -> bool:
    """Whether the top-level package of `module` is installed (found without importing it)."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def require(module: str, feature: str) -> ModuleType:
    """Import `module` for `feature`, or raise ``MissingExtraError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "anon_model":  # our own module missing: a bug, not an extra
            raise
        raise MissingExtraError(missing_message(feature, exc.name or module), name=exc.name) from None
