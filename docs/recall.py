"""Regenerate docs/recall.md (+ recall.png): which share of faces of known size the detector finds, offline.

Faces: the bundled photos' faces (and their mirror images), cut out with some context and pasted at known boxes
and heights (20-300 px) onto textures from scikit-image: a photo, a print, a crowd and a 54-megapixel canvas.
A face counts as found when a detected box overlaps its pasted face box by IoU >= 0.4.
    python docs/recall.py            (about 2 minutes on 2 cores)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch
from torchvision.ops import box_iou

from anon_model.imageio import load_image
from anon_model.perception.detect import FaceDetector

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"
HEIGHTS = (20, 24, 32, 48, 66, 100, 150, 300)
MATCH_IOU = 0.4
CONTEXT = 0.4  # a cut-out reaches this many face heights beyond the face box on each side


@dataclass
class Scene:
    """A synthetic photo and the face boxes (x0, y0, x1, y1) pasted into it."""

    name: str
    image: np.ndarray
    boxes: np.ndarray


def face_cutouts(detector: FaceDetector) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each bundled face (and its mirror image): a crop with context and the face box inside that crop."""
    cutouts = []
    for path in sorted(EXAMPLES.glob("*.jpg")):
        image = load_image(path)
        box = detector(image)[0].box
        pad = CONTEXT * (box[3] - box[1])
        x0, y0 = max(0, int(box[0] - pad)), max(0, int(box[1] - pad))
        x1, y1 = min(image.shape[1], int(box[2] + pad)), min(image.shape[0], int(box[3] + pad))
        crop, inner = image[y0:y1, x0:x1], box - [x0, y0, x0, y0]
        mirrored = np.array([crop.shape[1] - inner[2], inner[1], crop.shape[1] - inner[0], inner[3]])
        cutouts += [(crop, inner), (np.ascontiguousarray(crop[:, ::-1]), mirrored)]
    return cutouts


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A textured RGB canvas: a tinted scikit-image texture repeated at its own scale, plus a little noise."""
    texture = getattr(skimage.data, rng.choice(["grass", "gravel", "brick"]))().astype(np.float32)
    tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    reps = (height // texture.shape[0] + 1, width // texture.shape[1] + 1)
    grey = np.tile(texture, reps)[:height, :width]
    noisy = grey[..., None] * tint + rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def make_scene(name: str, height: int, width: int, face_heights: list[int], cutouts: list, seed: int) -> Scene:
    """Paste one cut-out per entry of `face_heights` (face box height in px), in rows, largest first."""
    rng = np.random.default_rng(seed)
    canvas = background(height, width, rng)
    boxes, x, y, row = [], 0, 0, 0
    for face_height in sorted(face_heights, reverse=True):
        crop, inner = cutouts[rng.integers(len(cutouts))]
        scale = face_height / (inner[3] - inner[1])
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        gap = int(rng.integers(2, 2 + face_height // 3))
        if x + gap + small.shape[1] > width:  # next row
            x, y, row = 0, y + row, 0
        x0, y0 = x + gap, y + gap
        if y0 + small.shape[0] > height:
            raise ValueError(f"{name}: {len(face_heights)} faces of these heights do not fit in {width}x{height}")
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        boxes.append(inner * scale + [x0, y0, x0, y0])
        x, row = x0 + small.shape[1], max(row, gap + small.shape[0])
    return Scene(name, canvas, np.array(boxes))


def found(scene: Scene, detected: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """For each pasted face, whether one of the detected boxes (N,4) matches it (IoU >= MATCH_IOU)."""
    detected = np.asarray(detected, np.float32).reshape(-1, 4)
    if len(detected) == 0:
        return np.zeros(len(scene.boxes), bool)
    iou = box_iou(torch.as_tensor(scene.boxes, dtype=torch.float32), torch.from_numpy(detected))
    return (iou.max(dim=1).values >= MATCH_IOU).numpy()


def full_set(cutouts: list) -> list[Scene]:
    """The measured scenes: every height on a photo and on a print, a crowd, and a 54-megapixel group photo."""
    rng = np.random.default_rng(0)
    return [
        make_scene("photo 1500x1000", 1000, 1500, [h for h in HEIGHTS[:6] for _ in range(3)], cutouts, 1),
        make_scene("print 6000x4000", 4000, 6000, [h for h in HEIGHTS for _ in range(8)], cutouts, 2),
        make_scene("crowd 3000x2000", 2000, 3000, [int(h) for h in rng.integers(24, 49, 150)], cutouts, 3),
        make_scene("54 MP 9000x6000", 6000, 9000, [int(h) for h in rng.integers(60, 101, 153)], cutouts, 4),
    ]


def measure(detector: FaceDetector, scenes: list[Scene]) -> list[tuple[Scene, np.ndarray, float]]:
    """Run the detector on each scene: (scene, found per face, seconds)."""
    results = []
    for scene in scenes:
        start = time.perf_counter()
        boxes = [d.box for d in detector(scene.image)]
        results.append((scene, found(scene, boxes), time.perf_counter() - start))
    return results


def bucket_table(results: list[tuple[Scene, np.ndarray, float]]) -> tuple[list[str], list[list[str]]]:
    """Recall per face-height bucket (rows) and scene (columns), as 'found/total' strings."""
    edges = list(HEIGHTS) + [10_000]
    header = ["face height (px)"] + [scene.name for scene, _, _ in results] + ["all"]
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        row, total = [f"{lo}-{hi - 1}" if hi < 10_000 else f">={lo}"], [0, 0]
        for scene, hit, _ in results:
            heights = scene.boxes[:, 3] - scene.boxes[:, 1]
            sel = (heights >= lo - 0.5) & (heights < hi - 0.5)
            row.append(f"{hit[sel].sum()}/{sel.sum()}" if sel.any() else "")
            total = [total[0] + hit[sel].sum(), total[1] + sel.sum()]
        rows.append(row + [f"{total[0]}/{total[1]} ({total[0] / total[1]:.2f})" if total[1] else ""])
    return header, [r for r in rows if r[-1]]


def write_report(results: list, path: Path) -> None:
    """docs/recall.md: the per-bucket table and the seconds per scene; a PNG curve beside it."""
    header, rows = bucket_table(results)
    about = __doc__.split("\n\n")[1].split("    python")[0].strip()
    lines = ["# Face detection recall (docs/recall.py)", "", about, "", "Recall (found/total) per face height:", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", f"Seconds per photo: MTCNN, {torch.get_num_threads()} CPU threads.", "",
              "| scene | faces | found | seconds |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {len(hit)} | {hit.sum()} | {sec:.1f} |" for s, hit, sec in results]
    path.write_text("\n".join(lines) + "\n")
    plot_curve(results, path.with_suffix(".png"))


def plot_curve(results: list, path: Path) -> None:
    """Recall against face height over all scenes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = np.concatenate([s.boxes[:, 3] - s.boxes[:, 1] for s, _, _ in results])
    hits = np.concatenate([hit for _, hit, _ in results])
    edges = np.array(list(HEIGHTS) + [10_000]) - 0.5
    idx = np.digitize(heights, edges) - 1
    xs = [h for i, h in enumerate(HEIGHTS) if (idx == i).any()]
    ys = [hits[idx == i].mean() for i in range(len(HEIGHTS)) if (idx == i).any()]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.semilogx(xs, ys, "o-")
    ax.set(xlabel="face height (px, bucket start)", ylabel="recall", ylim=(0, 1.02), title="MTCNN, tiled")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    """Build the set, detect, write docs/recall.md and docs/recall.png."""
    torch.set_num_threads(2)
    detector = FaceDetector("mtcnn")
    results = measure(detector, full_set(face_cutouts(detector)))
    for scene, hit, sec in results:
        print(f"{scene.name}: {hit.sum()}/{len(hit)} found in {sec:.1f} s")
    write_report(results, Path(__file__).with_suffix(".md"))


if __name__ == "__main__":
    main()
