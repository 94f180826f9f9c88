"""Regenerate docs/contact_sheet.jpg: faces the project never tuned on, before and after the offline default.

    python docs/contact_sheet.py        (seed 0; about a minute on 2 CPU cores)

Twelve held-out Congress portraits (``docs/congress_bank.py``; the bank is the 800 less those people), chosen by what
makes step 2 hard rather than by how well it does: the four women, the three darkest skin tones (ITA) and the three
greyscale photos among the held-out people by the bank's own estimates, then the first two others; plus two faces of
insightface's group photo t1.jpg shrunk to 36 and 48 px wide (about 20-30 px as the detector boxes them). Each tile is
the face before (left) and after (right), with what it got underneath: an obscured face is shown obscured, as the CLI
writes it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, build, split  # noqa: E402

from anon_model import AnonPipeline  # noqa: E402
from anon_model.bank import DelegateBank  # noqa: E402
from anon_model.imageio import save_image_atomic  # noqa: E402

HERE = Path(__file__).resolve().parent
TILE, LABEL = 160, 18
#: The group photo's faces shrunk for the small-face tiles: (box in t1.jpg, width in px after shrinking).
SMALL = (((243, 120, 400, 297), 36), ((718, 316, 869, 500), 48))


def chosen(full: DelegateBank, held: list[str]) -> list[str]:
    """The held-out people of the sheet (see the module docstring), by the full bank's attribute estimates."""
    rows = {p: full.identity_labels.index(p) for p in held if p in full.identity_labels}
    tone = {p: float(full.skin_tones[i]) for p, i in rows.items()}
    women = [p for p, i in rows.items() if full.attributes[i].gender == "female"][:4]
    grey = [p for p in rows if np.isnan(tone[p])][:3]
    dark = sorted((p for p in rows if not np.isnan(tone[p]) and p not in women), key=tone.get)[:3]
    picked = women + dark + grey
    return picked + [p for p in rows if p not in picked][:12 - len(picked)]


def small_faces() -> list[Image.Image]:
    """Two faces of t1.jpg shrunk to a small width with their surroundings (the tile enlarges them to be seen)."""
    import insightface

    group = Image.open(Path(insightface.__file__).parent / "data/images/t1.jpg").convert("RGB")
    out = []
    for box, width in SMALL:
        face = group.crop((box[0] - 40, box[1] - 40, box[2] + 40, box[3] + 40))
        face = face.resize((width * face.width // (box[2] - box[0]), width * face.height // (box[3] - box[1])),
                           Image.LANCZOS)
        canvas = Image.new("RGB", (4 * width, 4 * width), (128, 132, 136))
        canvas.paste(face, ((canvas.width - face.width) // 2, (canvas.height - face.height) // 2))
        out.append(canvas)
    return out


def tile(before: Image.Image, after: Image.Image, caption: str) -> Image.Image:
    """Before and after side by side, squared around the middle, with a caption underneath."""
    def square(im: Image.Image) -> Image.Image:
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 4
        return im.crop((left, top, left + side, top + side)).resize((TILE, TILE), Image.LANCZOS)

    out = Image.new("RGB", (2 * TILE, TILE + LABEL), "white")
    out.paste(square(before), (0, 0))
    out.paste(square(after), (TILE, 0))
    ImageDraw.Draw(out).text((4, TILE + 3), caption, fill=(0, 0, 0))
    return out


def main() -> None:
    held = split()["held-out"]
    full = DelegateBank.default()
    pipe = AnonPipeline.from_pretrained(None, bank=build(without=("held-out",)))
    pipe.set_progress_bar_config(disable=True)
    photos = [(p, Image.open(IMAGES / f"{p}.jpg").convert("RGB")) for p in chosen(full, held)]
    photos += [(f"t1.jpg, {w} px wide", im) for (_, w), im in zip(SMALL, small_faces())]
    tiles = []
    for name, photo in photos:
        out = pipe(photo, seed=0)
        what = ", ".join(f.treatment for f in out.faces) or "no face found"
        tiles.append(tile(photo, out.image, f"{name}: {what}"))
        print(f"{name}: {what}", *(f.treatment_reason for f in out.faces), file=sys.stderr)
    columns = 4
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * 2 * TILE + (columns - 1) * 8, rows * (TILE + LABEL + 8)), "white")
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % columns) * (2 * TILE + 8), (k // columns) * (TILE + LABEL + 8)))
    path = HERE / "contact_sheet.jpg"
    save_image_atomic(sheet, path, quality=88)
    print(f"wrote {path} ({path.stat().st_size // 1000} kB)")


if __name__ == "__main__":
    main()
