"""Which inputs are videos, and the container each one's result is written in: what the CLI needs to list its inputs,
without loading the video code (and the models it uses)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["VIDEO_SUFFIXES", "CONTAINERS", "is_video", "output_suffix"]

#: File suffixes read as video (the CLI routes them here).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
#: Containers written as they came (FFmpeg muxer names); others become Matroska, which takes any audio codec as is.
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


def is_video(path: str | os.PathLike) -> bool:
    """Whether `path` is a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(path: str | os.PathLike) -> str:
    """The suffix of a video's result: its own container when we write it (.mp4, .mov, .mkv), else .mkv."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in CONTAINERS else ".mkv"
