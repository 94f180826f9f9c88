"""The app's example photos and clips: the one place to change them (each file's source is in the folder's README)."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "assets" / "examples"
#: The Anonymize tab's example photos, in the order shown (files in ``FOLDER``).
PHOTOS = ("astronaut.jpg", "biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg")
#: The Video tab's example clips (files in ``FOLDER``); none bundled yet, so the tab shows no examples row.
CLIPS: tuple[str, ...] = ()


def paths(names: tuple[str, ...]) -> list[Path]:
    """The files of ``names`` in ``FOLDER``."""
    return [FOLDER / name for name in names]
