"""Regenerate docs/k_curve.md: how much identity IFA leaves in f_x for K = 1..10 (paper Fig. 6), offline.

Faces: every face FaceAnalyzer finds in the bundled photos and insightface's group photo (11 faces, 9 people).
Psi: the dlib ResNet port. Classes: a leave-one-out codebook (the other 10 faces' embeddings), optionally plus
the input's own identity. A face "still matches" when L2(f_x, f) < 0.6, dlib's verification threshold.
    python docs/k_curve.py            (about 5 CPU-minutes)
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from chip_window import photos
from anon_model.identity.codebook import IdentityCodebook
from anon_model.identity.dlib_resnet import DlibResNet
from anon_model.ifa import IdentityFeatureAnonymizer, distract, grad_cam
from anon_model.imageio import load_image
from anon_model.perception import FaceAnalyzer

KS = range(1, 11)
# (column label, ifa_layer, IFA keyword arguments); the first is the default configuration
CONFIGS = [
    ("default: 256x4x4, w=scores", "256x4x4", {}),
    ("+ own identity as a class", "256x4x4", {"include_self": True}),
    ("w=uniform", "256x4x4", {"weights": "uniform"}),
    ("w=ones", "256x4x4", {"weights": "ones"}),
    ("A at 128x8x8", "128x8x8", {}),
]


def load_faces() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Aligned crops (N,3,256,256) in [0,1], their crop landmarks and a person label per face."""
    analyzer, crops, landmarks, people = FaceAnalyzer(), [], [], []
    for path in photos():
        for j, face in enumerate(analyzer(load_image(path))):
            crops.append(torch.from_numpy(face.crop).permute(2, 0, 1).float() / 255)
            landmarks.append(torch.from_numpy(face.crop_landmarks).float())
            people.append("obama" if path.stem.startswith("obama") else f"{path.stem}#{j}")
    return torch.stack(crops), torch.stack(landmarks), people


def curve(net: DlibResNet, crops: torch.Tensor, landmarks: torch.Tensor, **kwargs) -> list[tuple[float, float, float]]:
    """Per K: fraction of faces whose f_x still matches, mean L2(f_x, f), mean |f_x|."""
    with torch.inference_mode():
        embeddings = net.embed(crops, landmarks=landmarks)
    rows = []
    for k in KS:
        distances, norms = [], []
        for i in range(len(crops)):
            others = [j for j in range(len(crops)) if j != i]
            ifa = IdentityFeatureAnonymizer(net, codebook=IdentityCodebook(embeddings[others]), k_top=k,
                                            **{"include_self": False, **kwargs})
            result = ifa(crops[i : i + 1], landmarks=landmarks[i : i + 1])[0]
            distances.append(result.distance)
            norms.append(float(result.feature_distracted.norm()))
        d = torch.tensor(distances)
        rows.append((float((d < net.threshold).float().mean()), float(d.mean()), sum(norms) / len(norms)))
    return rows


def spread(net: DlibResNet, crops: torch.Tensor, landmarks: torch.Tensor, people: list[str], k: int, **kwargs) -> tuple[float, float]:
    """Mean L2 between the f_x of faces of the same person and of different people."""
    with torch.inference_mode():
        embeddings = net.embed(crops, landmarks=landmarks)
    fx = []
    for i in range(len(crops)):
        others = [j for j in range(len(crops)) if j != i]
        ifa = IdentityFeatureAnonymizer(net, codebook=IdentityCodebook(embeddings[others]), k_top=k, **kwargs)
        fx.append(ifa(crops[i : i + 1], landmarks=landmarks[i : i + 1])[0].feature_distracted)
    return _same_different(torch.stack(fx), people)


def alignment(net: DlibResNet, crops: torch.Tensor, landmarks: torch.Tensor, k: int = 5) -> dict[str, torch.Tensor]:
    """Mean cos(alpha_1, alpha_i) of the top-k classes, and each class's attention left after Eq. 5, alpha_i A_hat /
    |alpha_i A| summed over locations, for normalized-score and unit weights."""
    with torch.no_grad():
        a = net.features(net.to_input(crops, landmarks=landmarks))
        embeddings = net.head(a)
    cosines, left = [], {"scores": [], "ones": []}
    for i in range(len(crops)):
        book = IdentityCodebook(embeddings[[j for j in range(len(crops)) if j != i]])
        head = lambda t: book(net.head(t))  # noqa: E731
        logits = head(a[i : i + 1])
        classes = logits.topk(k, dim=1).indices
        _, alphas, _ = grad_cam(head, a[i : i + 1], classes)
        unit = F.normalize(alphas[0], dim=1)
        cosines.append((unit @ unit.T)[0])
        probs = logits.softmax(1).gather(1, classes)
        before = torch.einsum("bkc,bchw->bk", alphas, a[i : i + 1]).abs()
        for name, w in (("scores", probs / probs.sum()), ("ones", torch.ones_like(probs))):
            left[name].append((torch.einsum("bkc,bchw->bk", alphas, distract(a[i : i + 1], alphas, w)) / before)[0])
    return {"cos": torch.stack(cosines).mean(0), **{n: torch.stack(v).mean(0) for n, v in left.items()}}


def _same_different(features: torch.Tensor, people: list[str]) -> tuple[float, float]:
    d = torch.cdist(features, features)
    same = torch.tensor([[a == b for b in people] for a in people]) & ~torch.eye(len(people), dtype=torch.bool)
    different = torch.tensor([[a != b for b in people] for a in people])
    return float(d[same].mean()), float(d[different].mean())


def main() -> None:
    crops, landmarks, people = load_faces()
    nets = {layer: DlibResNet.from_dlib_file(ifa_layer=layer) for layer in {c[1] for c in CONFIGS}}
    curves = [curve(nets[layer], crops, landmarks, **kwargs) for _, layer, kwargs in CONFIGS]
    with torch.inference_mode():
        base = _same_different(nets["256x4x4"].embed(crops, landmarks=landmarks), people)
    lines = [
        "# IFA's K curve (paper Fig. 6), measured offline",
        "",
        "Generated by `python docs/k_curve.py`. Psi = dlib's face-recognition ResNet ported to torch",
        "(`anon_model.identity.DlibResNet`), A at its 256x4x4 stage unless said otherwise. Faces: the",
        f"{len(people)} faces FaceAnalyzer finds in the bundled photos and insightface's group photo",
        f"({len(set(people))} people). Classes: leave-one-out codebook of the other faces' embeddings",
        "(`IdentityCodebook`), the stand-in for FaceNet's VGGFace2 classes. Each cell: fraction of faces",
        "whose recast feature f_x still matches the original (L2 < 0.6, dlib's threshold) / mean",
        "L2(f_x, f) / mean |f_x| (|f| is about 1.45).",
        "",
        "| K | " + " | ".join(label for label, _, _ in CONFIGS) + " |",
        "|---" * (len(CONFIGS) + 1) + "|",
    ]
    for i, k in enumerate(KS):
        cells = [f"{m:.2f} / {d:.2f} / {n:.2f}" for m, d, n in (c[i] for c in curves)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "Spread of the features (default configuration unless said): mean L2 between faces of the same person /"
              " of different people.", "", "| features | same person | different people |", "|---|---|---|",
              f"| original f | {base[0]:.2f} | {base[1]:.2f} |"]
    for label, k, kwargs in (("f_x, K = 1", 1, {}), ("f_x, K = 3", 3, {}), ("f_x, K = 10", 10, {}),
                             ("f_x, K = 1, own identity as a class", 1, {"include_self": True})):
        same, different = spread(nets["256x4x4"], crops, landmarks, people, k, **kwargs)
        lines.append(f"| {label} | {same:.2f} | {different:.2f} |")
    aligned = alignment(nets["256x4x4"], crops, landmarks)
    lines += ["", "How aligned the top-5 classes' Grad-CAM weights are, and the attention each class keeps after Eq. 5"
              " with K = 5 (alpha_i A_hat / |alpha_i A| summed over A's locations; 0 = Eq. 3 holds exactly, < 0 = flipped):",
              "", "| rank i | 1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|"]
    for label, key in (("cos(alpha_1, alpha_i)", "cos"), ("kept, w = scores", "scores"), ("kept, w = ones", "ones")):
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in aligned[key].tolist()) + " |")
    out = Path(__file__).with_suffix(".md")
    out.write_text("\n".join(lines) + "\n" + FINDINGS)
    print(out.read_text())


FINDINGS = """
## Reading

(Written from the numbers above; rerun the script after changing IFA and check that it still holds.)

* **Top-1 already removes the identity.** With A at the 256x4x4 stage, distracting the top class alone moves
  f_x beyond dlib's threshold for every face (mean L2 about 1.1, where different people are 0.81 apart).
  The paper reports that top-1 removes over 75 % of the identity; here it is all of it, on 11 faces.
* **The curve is flat after K of about 4, as in the paper, but it does not keep falling.** With the default
  weights (normalized top-K scores) the distance falls slightly as K grows (1.09 at K = 1 to 0.95 at K = 10)
  while staying far beyond the threshold. The top-K classes' Grad-CAM weights point nearly the same way
  (cos 0.79-0.86 with the top class), so weights that sum to 1 share one distraction among similar
  directions: every class keeps about 13 % of its attention at K = 5 instead of 0 at K = 1.
* **Unit weights (w_i = 1) give the paper's falling identity curve, at a price.** The distance grows with K
  (1.09 to 4.82), but because the directions are aligned the terms add up: every class's attention is
  flipped and amplified (-3.2 x at K = 5), and |f_x| grows to 2.7 times a real descriptor's norm, far
  outside the space of real faces. That is why the default is the normalized scores; ``weights="ones"``
  remains available.
* **The input's own identity as a class collapses f_x.** With it, the top class is always the face itself,
  |f_x| halves and the f_x of different people end up 0.38 apart (originally 0.81): they all look alike.
  Without it (the default, as in the paper, where the classes are other, pre-trained identities), f_x keeps
  the structure of a face space: the same person's f_x stay closer than different people's (0.65 vs 0.96 at
  K = 1), matching the paper's t-SNE remark that intra-class spread grows but clusters remain.
* **A at 128x8x8 is too early:** the three residual blocks after it restore the identity (every face still
  matches, L2 about 0.2). The default is the 256x4x4 stage (the last one with spatial extent beyond 2x2).
* Caveats: 11 faces of 9 people, a codebook of 10 prototypes instead of FaceNet's 8631 VGGFace2 classes, and
  f_x measured directly, whereas the paper measures re-identification on generated images with other
  recognizers. With FaceNet (the paper's Psi, weights online only) this table has not been measured.
"""

if __name__ == "__main__":
    main()
