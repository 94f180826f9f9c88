"""Whether loaders may download pretrained weights: a local pipeline folder means local files only.

``AnonPipeline.from_pretrained(local_dir)`` loads its components inside ``downloads_allowed(False)`` (unless the user
passes ``allow_downloads=True``); the few loaders that can download (FaceNet, S3FD, FAN, ArcFace, a Hub bank) call
``require_download`` right before they would, which then raises instead of going online. Elsewhere downloads are on.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from anon_model.errors import MissingWeightsError

_ALLOWED: ContextVar[bool] = ContextVar("anon_model_downloads_allowed", default=True)


@contextmanager
def downloads_allowed(allowed: bool) -> Iterator[None]:
    """Within the block, loaders may (True) or may not (False) download weights."""
    token = _ALLOWED.set(allowed)
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def require_download(what: str, instead: str) -> None:
    """Called by a loader about to download `what`: raises MissingWeightsError (saying `instead`) when downloads are off."""
    if not _ALLOWED.get():
        raise MissingWeightsError(f"{what} would have to be downloaded, but a local pipeline folder loads local files "
                                  f"only: {instead}, or load it with allow_downloads=True")
