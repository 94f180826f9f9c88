"""Regenerate docs/before_after.jpg, the README's picture: each bundled photo beside its anonymized version.

    python docs/before_after.py        (the offline default pipeline, seed 0; a few seconds on a CPU)
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from anon_model import AnonPipeline
from anon_model.evaluation.dataset import EXAMPLES_DIR
from anon_model.imageio import IMAGE_SUFFIXES
from anon_model.imageio import save_image_atomic

TILE, GAP = 192, 6


def face_square(faces, size: tuple[int, int], zoom: float = 2.4) -> tuple[int, int, int, int]:
    """A square around all faces' boxes, `zoom` times their extent, kept inside the photo."""
    boxes = [f.box for f in faces]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    side = min(zoom * max(x1 - x0, y1 - y0), *size)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - side / 2, 0), size[0] - side)
    top = min(max(cy - side / 2, 0), size[1] - side)
    return round(left), round(top), round(left + side), round(top + side)


def main() -> None:
    pipe = AnonPipeline.from_pretrained(None)
    paths = sorted(p for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    sheet = Image.new("RGB", (len(paths) * (TILE + GAP) - GAP, 2 * TILE + GAP), "white")
    for i, path in enumerate(paths):  # top row: the photos, bottom row: anonymized, cropped around the faces
        before = Image.open(path).convert("RGB")
        out = pipe(before, seed=0)
        box = face_square(out.faces, before.size)
        for row, image in enumerate((before, out.image)):
            sheet.paste(image.crop(box).resize((TILE, TILE), Image.LANCZOS), (i * (TILE + GAP), row * (TILE + GAP)))
    out = save_image_atomic(sheet, Path(__file__).with_name("before_after.jpg"))
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
