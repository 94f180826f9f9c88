"""What keeps a visitor's photo off the disk: a temp folder removed when the app stops, and a careful upload reader."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np

from anon_model.errors import ImageError
from anon_model.imageio import load_image


class PhotoRefused(Exception):
    """An upload the app cannot use; the message is one plain sentence for the visitor."""


def process_temp_dir(parent: str | os.PathLike | None = None) -> Path:
    """A fresh folder for the serving process's temporary files, removed at exit, on SIGINT and on SIGTERM.

    SIGTERM is turned into the KeyboardInterrupt that SIGINT raises, so a server stops the same way on both
    and the interpreter's normal exit runs the removal (a killed process, SIGKILL, cannot clean up).
    """
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="anon_model_app-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return folder


def read_photo(path: Path, *, max_pixels: int) -> np.ndarray:
    """The upload at ``path`` as RGB; its size is checked from the header before any pixel is decoded."""
    try:
        return load_image(path, max_pixels=max_pixels)
    except ImageError as err:
        reason = str(err).removeprefix(f"{path}: ")
        raise PhotoRefused(f"This upload cannot be used: {reason}; please choose a JPEG, PNG or WebP photo of at most "
                           f"{max_pixels / 1e6:g} megapixels.") from None
