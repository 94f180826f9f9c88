"""A seeded generator of hard inputs (issue 23's fuzz test): the bundled faces pasted at known boxes onto textures
(docs/recall.py's scenes), then cut, squashed, turned, darkened, compressed or stored in an unusual mode. Each case
is a file to anonymize and the boxes of the faces in it, in the file's pixels (EXIF-free: what load_image sees)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: Kinds of hard input, in the order a run of n cases cycles through them.
KINDS = ("cut at the border", "squashed", "stretched", "turned", "tilted", "dark", "washed out", "low contrast",
         "jpeg quality 3", "cmyk", "palette", "1-bit", "alpha", "tiny", "panorama", "overlapping")


@dataclass
class Case:
    """One generated input: its file name, the image (any Pillow mode) and its face boxes (N, 4)."""

    name: str
    image: Image.Image
    boxes: np.ndarray
    suffix: str = ".png"
    quality: int | None = None  # JPEG quality, for the JPEG cases

    def save(self, folder: Path) -> Path:
        """Write the case to ``folder`` in its format; returns the path."""
        path = folder / f"{self.name}{self.suffix}"
        self.image.save(path, **({"quality": self.quality} if self.quality else {}))
        return path


Edit = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def cases(recall, cutouts: list, seed: int, n: int) -> list[Case]:
    """``n`` cases from ``seed`` (the kinds in turn); ``recall`` is docs/recall.py as a module, ``cutouts`` its
    face_cutouts."""
    rng = np.random.default_rng(seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    return [_case(recall, cutouts, kind, f"{seed:03d}-{i:02d}-{kind.replace(' ', '-')}", rng)
            for i, kind in enumerate(kinds)]


def _case(recall, cutouts: list, kind: str, name: str, rng: np.random.Generator) -> Case:
    if kind == "tiny":  # a whole photo a few dozen pixels across, one face filling it
        scene = recall.make_scene(name, 200, 200, [80], cutouts, int(rng.integers(1 << 30)))
        side = int(rng.integers(16, 48))
        return _rgb(name, cv2.resize(scene.image, (side, side), interpolation=cv2.INTER_AREA), scene.boxes * side / 200)
    if kind == "panorama":
        scene = recall.make_scene(name, 240, 2400, list(rng.integers(50, 110, 6)), cutouts, int(rng.integers(1 << 30)))
        return _rgb(name, scene.image, scene.boxes)
    if kind == "overlapping":
        return _overlapping(recall, cutouts, name, rng)
    scene = recall.make_scene(name, 360, 480, list(rng.integers(70, 130, 2)), cutouts, int(rng.integers(1 << 30)))
    image, boxes = scene.image, scene.boxes
    edits = _edits(recall)
    if kind in edits:
        image, boxes = edits[kind](image, boxes, rng)
        return _rgb(name, image, boxes)
    if kind == "jpeg quality 3":
        return Case(name, Image.fromarray(image), boxes, ".jpg", quality=3)
    mode, suffix = MODES[kind]
    pil = Image.fromarray(image)
    if kind == "alpha":  # half transparent over a gradient of opacity: load_image composes it on white
        alpha = np.linspace(128, 255, image.shape[1], dtype=np.uint8)[None].repeat(image.shape[0], axis=0)
        pil = Image.fromarray(np.dstack([image, alpha]), "RGBA")
    elif mode != "RGB":
        pil = pil.convert(mode)
    return Case(name, pil, boxes, suffix)


def _rgb(name: str, image: np.ndarray, boxes: np.ndarray) -> Case:
    return Case(name, Image.fromarray(np.ascontiguousarray(image)), np.asarray(boxes, np.float64).reshape(-1, 4))


def _cut(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The photo cut through its first face: 40-70 % of that face's width kept at the left border."""
    x0, _, x1, _ = boxes[0]
    left = int(x0 + rng.uniform(0.3, 0.6) * (x1 - x0))
    kept = boxes - [left, 0, left, 0]
    kept[:, [0, 2]] = kept[:, [0, 2]].clip(0, image.shape[1] - left)
    return image[:, left:], kept[kept[:, 2] - kept[:, 0] > 1]


def _resized(fx: float, fy: float) -> Edit:
    def edit(image, boxes, rng):
        h, w = image.shape[:2]
        size = (round(w * fx), round(h * fy))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), boxes * [fx, fy, fx, fy]
    return edit


def _tilted(image, boxes, rng):
    """Turned 15-35 degrees about the photo's centre on a canvas that holds all of it; each face box keeps its
    size, centred where the face went (as docs/recall.py labels turned faces)."""
    angle = float(rng.uniform(15, 35) * rng.choice([-1, 1]))
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(w * cos + h * sin), int(w * sin + h * cos))
    matrix[:, 2] += [(size[0] - w) / 2, (size[1] - h) / 2]
    out = cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REFLECT101)
    centres = np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, np.ones(len(boxes))] @ matrix.T
    half = np.c_[boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] / 2
    return out, np.c_[centres - half, centres + half]


def _edits(recall) -> dict[str, Edit]:
    """The kinds made by changing a whole scene: this module's, and docs/recall.py's hard variants."""
    def turned(image, boxes, rng):  # 90, 180 or 270 degrees
        return recall.turned_by(int(rng.integers(1, 4)))(image, boxes, rng)
    return {"cut at the border": _cut, "squashed": _resized(0.6, 1.0), "stretched": _resized(1.0, 0.6),
            "turned": turned, "tilted": _tilted, "dark": recall.VARIANTS["1/8 exposure"],
            "washed out": recall.VARIANTS["washed out"], "low contrast": recall.VARIANTS["low contrast"]}
#: Pillow mode and file format of the mode cases.
MODES = {"cmyk": ("CMYK", ".jpg"), "palette": ("P", ".png"), "1-bit": ("1", ".png"), "alpha": ("RGBA", ".png")}


def _overlapping(recall, cutouts: list, name: str, rng: np.random.Generator) -> Case:
    """Two faces of about 100 px, the second pasted over a third of the first (a crowd, a photo of a photo)."""
    scene = recall.make_scene(name, 360, 480, [100], cutouts, int(rng.integers(1 << 30)))
    crop, inner = cutouts[int(rng.integers(len(cutouts)))]
    scale = 100 / (inner[3] - inner[1])
    small = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    first = scene.boxes[0]
    inner = inner * scale
    x = int(first[0] + 0.65 * (first[2] - first[0]) - inner[0])
    y = int(first[1] + rng.uniform(-0.2, 0.2) * (first[3] - first[1]) - inner[1])
    canvas = scene.image.copy()
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + small.shape[1], w), min(y + small.shape[0], h)
    canvas[y0:y1, x0:x1] = small[y0 - y:y1 - y, x0 - x:x1 - x]
    second = inner + [x, y, x, y]
    return _rgb(name, canvas, np.stack([first, second]))
