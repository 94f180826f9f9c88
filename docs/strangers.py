"""Strangers, not mosaics, measured: the offline default on people it has never seen, judged by two recognizers also
after the simple things an attacker does first.

    python docs/strangers.py            # -> docs/strangers.md (about 25 minutes on 2 cores)

The bank is the 800 portraits less the 100 held-out people (``docs/congress_bank.py``); the photos are those 100
(one frontal portrait each), the same turned grey (an old photo's case: the guard judges a greyscale face at the
recognizers' greyscale thresholds, ``anon_model.guard.GREYSCALE_THRESHOLDS``), plus the group photos of
``docs/second_judge.py`` (insightface's t1.jpg, Grace Hopper: faces nobody tuned on, several small). Per face: what
it got (anonymized, or obscured and why); for the anonymized ones, whether dlib (dlib's own ResNet, not the port the pipeline runs) and FaceNet-CASIA still find the original in
the output, for the photos as they are, brightened, darkened, histogram-equalized and rotated by 15 degrees either way
(the same done to the original and the output; for the obscured faces too, as the mosaic leaves
them); whether the output comes nearer to a bank person than the bank's calibrated
limit, against the strangers' own rate; gender, age and skin tone (CIELAB of the skin, Delta E 1976) kept; and
whether the new face looks like part of the photo, measured as ``anon-model evaluate`` does
(``anon_model.evaluation.naturalness``): seam, colour step added at the border, dlib's HOG, landmark error.

FaceNet-CASIA is also one of the guard's two recognizers now, so its figures are not an independent check: no third
recognizer ships offline (ArcFace and the VGGFace2 FaceNet download their weights).
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, build, split  # noqa: E402
from second_judge import HERE, photos, write_table  # noqa: E402

from anon_model import AnonPipeline  # noqa: E402
from anon_model.attributes import AgeGenderEstimator, skin_lab  # noqa: E402
from anon_model.evaluation.recognizers import DlibRecognizer, FaceNetCasiaRecognizer  # noqa: E402
from anon_model.fallback import box_iou  # noqa: E402
from anon_model.evaluation.metrics import hog_found, hog_score, load_hog_detector  # noqa: E402
from anon_model.evaluation.naturalness import colour_added, measure, replaced_region  # noqa: E402
from anon_model.guard import brighten  # noqa: E402
from anon_model.perception import FaceAnalyzer  # noqa: E402

def brightened(image: Image.Image) -> Image.Image:
    """The photo brightened as the guard's view does (``anon_model.guard.brighten``: up to x1.6, as far as its
    highlights allow)."""
    t = torch.from_numpy(np.asarray(image)).permute(2, 0, 1)[None].float() / 255.0
    return Image.fromarray((brighten(t)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


ATTACKS = {
    "as is": lambda im: im,
    "brightened": brightened,
    "darkened": lambda im: Image.eval(im, lambda v: int(v * 0.4)),
    "equalized": ImageOps.equalize,
    "rotated 15": lambda im: im.rotate(15, resample=Image.BICUBIC, expand=True),
    "rotated -15": lambda im: im.rotate(-15, resample=Image.BICUBIC, expand=True),
}
JUDGES = {"dlib": 0.6, "facenet-casia": 1.0}
AGE_TOLERANCE = 10.0


class Judge:
    """The recognizers, the detector the attacker uses, and the attribute estimators."""

    def __init__(self) -> None:
        self.analyzer = FaceAnalyzer()
        self.recognizers = {"dlib": DlibRecognizer(), "facenet-casia": FaceNetCasiaRecognizer()}
        self.attributes = AgeGenderEstimator()
        self.hog = load_hog_detector()  # a detector of another kind than the one that found the face

    def find(self, image: np.ndarray, near: np.ndarray):
        """The face of ``image`` nearest the box ``near`` (IoU >= 0.3), or None."""
        faces = self.analyzer(image)
        best = max(faces, key=lambda f: box_iou(tuple(f.box), tuple(near)), default=None)
        return best if best is not None and box_iou(tuple(best.box), tuple(near)) >= 0.3 else None

    def reid(self, original: Image.Image, output: Image.Image, box: np.ndarray) -> dict[str, dict[str, bool | None]]:
        """Per attack and recognizer: is the original's face found again in the output (None: no face to compare)."""
        found = {}
        for attack, apply in ATTACKS.items():
            a, b = np.asarray(apply(original)), np.asarray(apply(output))
            where = _moved_box(box, attack, original.size)
            x = self.find(a, where)
            if x is None:
                found[attack] = dict.fromkeys(JUDGES)
                continue
            y = self.find(b, x.box) or x  # the attacker knows where the face was
            found[attack] = {name: bool(rec.score(rec.embed(a, [x]), rec.embed(b, [y]))[0, 0] < JUDGES[name])
                             for name, rec in self.recognizers.items()}
        return found


def _moved_box(box: np.ndarray, attack: str, size: tuple[int, int]) -> np.ndarray:
    """The face box after the attack's geometry (PIL's rotate(degrees, expand) turns counter-clockwise about the
    centre)."""
    if not attack.startswith("rotated"):
        return np.asarray(box, np.float64)
    w, h = size
    angle = np.radians(float(attack.split()[1]))
    c, s = np.cos(angle), np.sin(angle)
    new_w, new_h = abs(w * c) + abs(h * s), abs(w * s) + abs(h * c)
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) - [w / 2, h / 2]
    moved = corners @ np.array([[c, -s], [s, c]]) + [new_w / 2, new_h / 2]
    return np.concatenate([moved.min(0), moved.max(0)])


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """CIE 1976 colour difference."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def main() -> None:
    held = split()["held-out"]
    limit = int(os.environ.get("STRANGERS", len(held)))
    bank = build(without=("held-out",))
    pipe = AnonPipeline.from_pretrained(None, bank=bank)
    pipe.set_progress_bar_config(disable=True)
    judge = Judge()
    bank_embeddings = bank.embeddings.numpy()
    portraits = [Image.open(IMAGES / f"{p}.jpg").convert("RGB") for p in held[:limit]]
    sets = {"held-out portraits": portraits,
            "held-out portraits in greyscale": [im.convert("L").convert("RGB") for im in portraits],
            "group photos (t1, Grace Hopper)": [Image.fromarray(im) for im in photos()[::2]]}
    rows = []
    for name, images in sets.items():
        n = Counter()
        reasons, reid, intrusion, base, gender, age, tone = Counter(), Counter(), Counter(), Counter(), [], [], []
        hidden = Counter()  # the obscured faces' ReID: what the mosaic leaves (hair, head, clothes, background)
        seams, colours, hog, landmark_errors = [], [], Counter(), []
        for i, image in enumerate(images):
            out = pipe(image, seed=0)
            result = out.image
            for face in out.faces:
                n[face.treatment] += 1
                if face.treatment != "anonymized":
                    reasons[face.treatment_reason.split(" (")[0].split(" after")[0]] += 1
                    _count(hidden, judge.reid(image, result, face.box))
                    continue
                _count(reid, judge.reid(image, result, face.box))
                a, b = np.asarray(image), np.asarray(result)
                y = judge.find(b, face.box)
                at = y if y is not None else face
                emb = {k: judge.recognizers["dlib"].embed(im, [f])[0] for k, im, f in (("x", a, face), ("y", b, at))}
                for key, counter in (("y", intrusion), ("x", base)):
                    nearest = np.linalg.norm(bank_embeddings - emb[key], axis=1).min()
                    counter["in"] += bool(nearest < bank.intrusion.limit)
                ax, ay = judge.attributes(a, [face.landmarks])[0], judge.attributes(b, [at.landmarks])[0]
                gender.append(ax.gender == ay.gender)
                age.append(abs(ax.age - ay.age) <= AGE_TOLERANCE)
                tone.append(delta_e(skin_lab(a, face.landmarks), skin_lab(b, at.landmarks)))
                figures = measure(a, b, replaced_region(face.landmarks_anon, a.shape),
                                  found=None if y is None else y.landmarks, intended=face.landmarks_anon)
                seams.append(figures["seam"])
                colours.append(colour_added(figures))
                for key, im in (("x", a), ("y", b)):
                    hog[key] += hog_found(hog_score(judge.hog(im), face.landmarks))
                if figures["landmark_error"] is not None:
                    landmark_errors.append(figures["landmark_error"])
            print(f"{name}: {i + 1}/{len(images)} {dict(n)}", file=sys.stderr)
        total, done = sum(n.values()), n["anonymized"]
        rows.append(f"| {name} | {total} | {done} ({100 * done / max(total, 1):.0f} %) | "
                    + "; ".join(f"{k}: {v}" for k, v in reasons.most_common()) + " | "
                    + " / ".join(_pct(reid[a, r, "same"], reid[a, r, "n"]) for a in ATTACKS for r in JUDGES) + " | "
                    + f"{_pct(intrusion['in'], done)} (strangers: {_pct(base['in'], done)}) | "
                    + f"{_pct(sum(gender), len(gender))} | {_pct(sum(age), len(age))} | "
                    + f"{_median_p90(tone, 1)} | {_median_p90(seams, 2)} | {_median_p90(colours, 1)} | "
                    + f"{_pct(hog['y'], done)} (originals: {_pct(hog['x'], done)}) | "
                    + (f"{np.median(landmark_errors):.3f} |" if landmark_errors else "n/a |"))
        rows.append(f"| {name}: the obscured faces, as the mosaic leaves them | {total - done} | | | "
                    + " / ".join(_pct(hidden[a, r, "same"], hidden[a, r, "n"]) for a in ATTACKS for r in JUDGES)
                    + " |" + " |" * 8)
    rows.append(_stranger_pairs(judge, sets["held-out portraits"], "two different held-out people"))
    rows.append(_stranger_pairs(judge, sets["held-out portraits in greyscale"], "the same pairs in greyscale"))
    header = ["photos", "faces", "anonymized", "obscured, why",
              "ReID dlib / FaceNet-CASIA: " + ", ".join(ATTACKS), "into the bank", "gender kept",
              f"age kept (±{AGE_TOLERANCE:.0f} y)", "skin ΔE median / 90th pct",
              "seam: edge along the border vs the original's, median / 90th pct (1 = none)",
              "colour step added at the border, ΔE00 median / 90th pct (0 = none)",
              "dlib HOG still finds a face", "landmark error on the output vs S-hat (IOD, median)"]
    write_table("strangers.md", header, rows)
    print((HERE / "strangers.md").read_text())


def _count(reid: Counter, verdicts: dict[str, dict[str, bool | None]]) -> None:
    """Add one face's ``Judge.reid`` verdicts to the per attack and recognizer counts."""
    for attack, verdict in verdicts.items():
        for rec, same in verdict.items():
            reid[attack, rec, "n"] += same is not None
            reid[attack, rec, "same"] += bool(same)


def _stranger_pairs(judge: Judge, images: list[Image.Image], who: str) -> str:
    """The table row of the false-match base rate: each held-out original "found" in the next person's portrait,
    per attack and recognizer (what ReID would be for a result that is simply someone else)."""
    reid = Counter()
    for a, b in zip(images, images[1:]):
        faces = judge.analyzer(np.asarray(a))
        if not faces:
            continue
        _count(reid, judge.reid(a, b, faces[0].box))
    cells = " / ".join(_pct(reid[a, r, "same"], reid[a, r, "n"]) for a in ATTACKS for r in JUDGES)
    return f"| stranger pairs (base rate: {who}) | {len(images) - 1} | | | {cells} |" + " |" * 8


def _median_p90(values: list[float | None], digits: int) -> str:
    """"median / 90th percentile" of the measured values (None: not measured)."""
    known = [v for v in values if v is not None]
    return f"{np.median(known):.{digits}f} / {np.percentile(known, 90):.{digits}f}" if known else "n/a"


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f} % ({k}/{n})" if n else "n/a"


if __name__ == "__main__":
    main()
