"""Small copies of the bundled example photos (and the group photo of insightface's wheel) for fast CLI runs, and a
two-person photo made of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"


def small_photos(folder: Path, n: int, *, height: int = 240) -> list[Path]:
    """``n`` JPEGs in ``folder``: the example photos scaled to ``height`` pixels, repeated (p00.jpg, p01.jpg, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(EXAMPLES.glob("*.jpg"))
    paths = []
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as im:
            small = im.convert("RGB").resize((round(im.width * height / im.height), height), Image.LANCZOS)
        paths.append(folder / f"p{i:02d}.jpg")
        small.save(paths[-1], quality=92)
    return paths


def two_people(height: int = 400) -> np.ndarray:
    """obama.jpg and biden.jpg side by side at ``height`` pixels (RGB uint8): a two-person photo, faces 50-90 px."""
    halves = []
    for name in ("obama.jpg", "biden.jpg"):
        with Image.open(EXAMPLES / name) as im:
            halves.append(np.asarray(im.convert("RGB").resize((round(im.width * height / im.height), height),
                                                              Image.LANCZOS)))
    return np.concatenate(halves, axis=1)
