"""Each recognizer's verification threshold for greyscale faces, measured: the guard's two recognizers see less of a
greyscale face, so at their colour thresholds they call different people the same far more often, and a guard that
holds a greyscale result to the colour thresholds obscures most greyscale faces.

    python docs/greyscale.py                    # -> docs/greyscale.md's table (about 8 minutes on 2 cores)
    python docs/greyscale.py --judge 0.86 0.94  # the judged tune probe, per FaceNet-CASIA threshold (5 min each)

The table: the 700 Congress portraits outside the held-out 100 (``docs/congress_bank.py``), every other one, each seen
as it is, turned grey (PIL's ``convert("L")``), with its colours faded to 30 % and 15 % of their saturation, and in
sepia; each face is embedded as the identity guard embeds an original, in each of the guard's views
(``anon_model.guard.ATTACKS``). Per recognizer, variant and view: the distance at which two different people of that
variant are called the same as often as two colour portraits are at the recognizer's colour threshold in the same
view (and, first, how often they are called the same at that threshold as they are). A limit below it judges the
variant more leniently than colour faces are judged there. The skin chroma column is what
``anon_model.attributes.greyscale`` looks at (under 1.0: greyscale).

``--judge``: the 60 first tune portraits turned grey, anonymized with the bank of the 700 other people, seed 0,
with FaceNet-CASIA's greyscale threshold set to each value given; each output judged as ``docs/strangers.py`` judges
(dlib's own ResNet and FaceNet-CASIA at their colour thresholds, faces re-detected, as is and after each attack), and
the base rate of the same judge on pairs of different tune people in grey. ``anon_model.guard.GREYSCALE_THRESHOLDS``
takes the smallest threshold whose outputs are found no more often than those strangers under every attack.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, build, split  # noqa: E402
from second_judge import write_table  # noqa: E402

from anon_model import AnonPipeline  # noqa: E402
from anon_model import guard as guard_module  # noqa: E402
from anon_model.attributes import skin_lab  # noqa: E402
from anon_model.guard import ATTACKS, IdentityGuard, InPhoto  # noqa: E402
from anon_model.perception import FaceAnalyzer  # noqa: E402

#: How each portrait is seen: as it is, turned grey, and three colour photos that are nearly grey but not quite.
VARIANTS = {
    "colour": lambda im: im,
    "grey": lambda im: im.convert("L").convert("RGB"),
    "colour at 30 % saturation": lambda im: ImageEnhance.Color(im).enhance(0.3),
    "colour at 15 % saturation": lambda im: ImageEnhance.Color(im).enhance(0.15),
    "sepia": lambda im: ImageOps.colorize(im.convert("L"), "#2e1a0e", "#fff3dc", mid="#a5804f"),
}


def largest_faces(names: list[str]) -> dict[str, list]:
    """Per portrait found a face in every variant: that face in each (the largest)."""
    analyzer, found = FaceAnalyzer(), {}
    for name in tqdm(names, desc="faces"):
        image = Image.open(IMAGES / f"{name}.jpg").convert("RGB")
        views = [analyzer.perceive(np.asarray(see(image))) for see in VARIANTS.values()]
        if all(views):
            found[name] = [max(faces, key=lambda f: f.box[2] - f.box[0]) for faces in views]
    return found


def guard_views(guard: IdentityGuard, faces: list) -> tuple[np.ndarray, np.ndarray]:
    """Psi's (V,N,D) and FaceNet-CASIA's (V,N,D2) embeddings of the faces as originals, in every view of the guard."""
    where = InPhoto.of(faces)
    psi, second = [], []
    for j in range(0, len(faces), 16):
        part = faces[j:j + 16]
        conds = [SimpleNamespace(x=torch.from_numpy(f.crop).permute(2, 0, 1).float() / 255.0,
                                 landmarks=torch.from_numpy(f.crop_landmarks).float()) for f in part]
        refs = guard.references(conds, where.select(list(range(j, j + len(part)))))
        psi.append(refs.psi.numpy())
        second.append(refs.second)
    return np.concatenate(psi, 1), np.concatenate(second, 1)


def pair_distances(e: np.ndarray) -> np.ndarray:
    """The distances of all pairs of different people."""
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    return d[np.triu_indices(len(e), 1)]


def table() -> None:
    """docs/greyscale.md's table."""
    held = set(split()["held-out"])
    faces = largest_faces(sorted(p.stem for p in IMAGES.glob("*.jpg") if p.stem not in held)[::2])
    names = list(faces)
    guard = IdentityGuard(AnonPipeline.default().preprocessor.identity, plausibility=False)
    seen = {variant: guard_views(guard, [faces[n][v] for n in names]) for v, variant in enumerate(VARIANTS)}
    chroma = {variant: [float(np.hypot(*skin_lab(faces[n][v].crop, faces[n][v].crop_landmarks)[1:])) for n in names]
              for v, variant in enumerate(VARIANTS)}
    rows = []
    for k, (net, threshold) in enumerate((("dlib", guard.identity.threshold), ("facenet-casia", guard.second.threshold))):
        for variant in VARIANTS:
            rate = (pair_distances(seen[variant][k][0]) < threshold).mean()
            cells = [f"{100 * rate:.1f} %"]
            for v in range(len(ATTACKS)):
                colour = pair_distances(seen["colour"][k][v])
                cells.append(f"{np.quantile(pair_distances(seen[variant][k][v]), (colour < threshold).mean()):.3f}")
            rows.append(f"| {net} ({threshold:.2f}) | {variant} | {np.percentile(chroma[variant], 5):.1f} - "
                        f"{np.percentile(chroma[variant], 95):.1f} | " + " | ".join(cells) + " |")
    write_table("greyscale.md", ["recognizer (colour threshold)", "photos", "skin chroma, 5th - 95th pct",
                                 "different people under the colour threshold, as is", *ATTACKS], rows)
    print(f"{len(names)} people with a face found in every variant")


def judged(thresholds: list[float]) -> None:
    """The judged tune probe (see the module docstring), one line per FaceNet-CASIA greyscale threshold."""
    import strangers

    tune = split()["tune"][:60]
    portraits = [Image.open(IMAGES / f"{n}.jpg").convert("L").convert("RGB") for n in tune]
    judge = strangers.Judge()
    print(strangers._stranger_pairs(judge, portraits, "tune people in grey"))
    pipe = AnonPipeline.from_pretrained(None, bank=build(without=("tune",)))
    pipe.set_progress_bar_config(disable=True)
    for value in thresholds:
        guard_module.GREYSCALE_THRESHOLDS["facenet-casia"] = value  # the guard reads it at each check
        n, reid = Counter(), Counter()
        for image in tqdm(portraits, desc=f"FaceNet-CASIA {value}"):
            out = pipe(image, seed=0)
            for face in out.faces:
                n[face.treatment] += 1
                if face.treatment == "anonymized":
                    strangers._count(reid, judge.reid(image, out.image, face.box))
        found = " / ".join(strangers._pct(reid[a, r, "same"], reid[a, r, "n"]) for a in strangers.ATTACKS
                           for r in strangers.JUDGES)
        print(f"| FaceNet-CASIA greyscale threshold {value} | {sum(n.values())} | {n['anonymized']} | {found} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judge", nargs="+", type=float, help="run the judged tune probe at these thresholds")
    args = parser.parse_args()
    judged(args.judge) if args.judge else table()
