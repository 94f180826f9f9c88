"""Each recognizer's verification threshold for greyscale faces, measured: the guard's two recognizers see less of a
greyscale face, so at their colour thresholds they call different people the same far more often, and a guard that
asks a greyscale result to be farther from x than nearly every stranger is obscures most greyscale faces.

    python docs/greyscale.py            # -> docs/greyscale.md (about 6 minutes on 2 cores)

The people are the 700 Congress portraits outside the held-out 100 (``docs/congress_bank.py``), each seen as it is and
turned grey (PIL's ``convert("L")``), embedded as the guard embeds an original (the aligned crop, framed by its
landmarks). Per recognizer: how often two different people are closer than its colour threshold, in colour and in
grey, and the distance at which grey pairs are called the same as often as colour pairs are at the colour threshold
(on all pairs, and on each half of the people, to show how stable it is). ``anon_model.guard.GREYSCALE_THRESHOLDS``
holds the values rounded to 0.01.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, split  # noqa: E402
from second_judge import HERE, write_table  # noqa: E402

from anon_model import AnonPipeline  # noqa: E402
from anon_model.identity.facenet_casia import FaceNetCasia  # noqa: E402
from anon_model.perception import FaceAnalyzer  # noqa: E402
from tqdm import tqdm  # noqa: E402


def largest_faces(names: list[str]) -> dict[str, list]:
    """Per portrait found a face both as it is and grey: that face's (crop, crop landmarks) in each (largest face)."""
    analyzer, found = FaceAnalyzer(), {}
    for name in tqdm(names, desc="faces"):
        image = Image.open(IMAGES / f"{name}.jpg").convert("RGB")
        views = [analyzer.perceive(np.asarray(im)) for im in (image, image.convert("L").convert("RGB"))]
        if all(views):
            found[name] = [max(faces, key=lambda f: f.box[2] - f.box[0]) for faces in views]
    return {name: [(f.crop, f.crop_landmarks) for f in faces] for name, faces in found.items()}


def embeddings(faces: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per recognizer (N, D): the faces as the guard embeds an original."""
    facenet, psi = FaceNetCasia(), AnonPipeline.default().preprocessor.identity
    crops, points = [c for c, _ in faces], [p for _, p in faces]
    out = {"facenet-casia": np.concatenate([facenet.embed(crops[j:j + 32], points[j:j + 32])
                                            for j in range(0, len(crops), 32)])}
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
        s = torch.from_numpy(np.stack(points)).float()
        out["dlib"] = torch.cat([psi.embed(x[j:j + 64], landmarks=s[j:j + 64])
                                 for j in range(0, len(x), 64)]).float().numpy()
    return out


def pair_distances(e: np.ndarray) -> np.ndarray:
    """The distances of all pairs of different people."""
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    return d[np.triu_indices(len(e), 1)]


def main() -> None:
    held = set(split()["held-out"])
    faces = largest_faces(sorted(p.stem for p in IMAGES.glob("*.jpg") if p.stem not in held))
    names = list(faces)
    colour, grey = (embeddings([faces[n][view] for n in names]) for view in (0, 1))
    thresholds = {"dlib": AnonPipeline.default().preprocessor.identity.threshold, "facenet-casia": FaceNetCasia.threshold}
    halves = (slice(0, len(names) // 2), slice(len(names) // 2, None))
    rows = []
    for net, threshold in thresholds.items():
        dc, dg = pair_distances(colour[net]), pair_distances(grey[net])
        rate = (dc < threshold).mean()
        parts = []
        for half in halves:
            hc, hg = pair_distances(colour[net][half]), pair_distances(grey[net][half])
            parts.append(f"{np.quantile(hg, (hc < threshold).mean()):.3f}")
        same = np.linalg.norm(colour[net] - grey[net], axis=1)
        rows.append(f"| {net} | {threshold:.2f} | {100 * rate:.1f} % | {100 * (dg < threshold).mean():.1f} % | "
                    f"**{np.quantile(dg, rate):.3f}** ({' / '.join(parts)}) | {np.median(same):.3f} |")
    header = ["recognizer", "colour threshold", "different people under it: colour",
              "different people under it: grey", "grey distance with the colour rate (each half of the people)",
              "one person, colour to grey (median)"]
    write_table("greyscale.md", header, rows)
    print(f"{len(names)} people with a face found both ways")
    print((HERE / "greyscale.md").read_text())


if __name__ == "__main__":
    main()
