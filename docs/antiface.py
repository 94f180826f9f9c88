"""Regenerate docs/antiface.md: issue 12's question "should the appearance delegate be x's anti-face?", measured.

The anti-face of x (face-space adaptation studies) is the mean face plus lambda times (mean face - x): x's own
texture moved through the mean, away from x's identity. Here the mean is the delegate bank's identity-balanced mean
texture, warped to the bank's mean shape; x is warped to the same shape; the result replaces the appearance
delegate of the training-free step 2 (lambda 0 keeps the pipeline as it is: the mixture of bank faces). Judged by
the pipeline's own guard (dlib port: original and every bank identity) and by the independent FaceNet-CASIA
(L2 < 1.0 to the original at the original's landmarks), on insightface's t1.jpg, the astronaut photo and Grace
Hopper's portrait (matplotlib's sample data), seeds 0-2.
    python docs/antiface.py            (about 3 CPU-minutes; writes docs/antiface.md and docs/antiface.jpg)
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

import anon_model.synthesis.warp as step2
from anon_model import AnonPipeline
from anon_model.bank import DelegateBank
from anon_model.evaluation.recognizers import FaceNetCasiaRecognizer
from anon_model.perception.warp import control_points, piecewise_affine_warp
from second_judge import HERE, facenet_distance, photos, write_table

LAMBDAS, SEEDS, SIZE = (0.0, 0.5, 1.0), (0, 1, 2), 256


def mean_face(bank: DelegateBank) -> tuple[np.ndarray, np.ndarray]:
    """The bank's identity-balanced mean texture (S,S,3) in [0,1], warped to its mean shape (68,2)."""
    ids = bank.identities().numpy()
    shapes = bank.crop_landmarks(list(range(len(bank))), SIZE).numpy()
    shape = np.mean([shapes[ids == i].mean(0) for i in np.unique(ids)], axis=0)
    dst = control_points(shape, SIZE)
    warped = [piecewise_affine_warp(bank.crop(i, SIZE).astype(np.float32) / 255, control_points(shapes[i], SIZE), dst)
              for i in range(len(bank))]
    return np.mean([np.mean([warped[k] for k in np.flatnonzero(ids == i)], 0) for i in np.unique(ids)], 0), shape


#: Step 2's own method, which ``use_anti_face`` wraps (each lambda wraps this one, never an earlier wrapper).
_OWN = step2.TrainingFreeSynthesizer.synthesize_one


def use_anti_face(lam: float, mean: np.ndarray, shape: np.ndarray) -> None:
    """Make step 2 take x's anti-face as its appearance delegate (lambda 0: the pipeline's own mixture)."""
    dst = control_points(shape, SIZE)

    def synthesize_one(self, cond, *, effort=0.0):
        if lam > 0:
            x = cond.x.permute(1, 2, 0).float().numpy()
            tx = piecewise_affine_warp(x, control_points(cond.landmarks.numpy(), SIZE), dst)
            cond.delegate_crop = torch.from_numpy(np.clip(mean + lam * (mean - tx), 0, 1)).permute(2, 0, 1).float()
            cond.delegate_landmarks = torch.from_numpy(shape).float()
        return _OWN(self, cond, effort=effort)

    step2.TrainingFreeSynthesizer.synthesize_one = synthesize_one


def main() -> None:
    pipe, judge, images = AnonPipeline.from_pretrained(), FaceNetCasiaRecognizer(), photos()
    pipe.set_progress_bar_config(disable=True)
    mean, shape = mean_face(pipe.bank)
    rows, tiles = [], {lam: [] for lam in LAMBDAS}
    for lam in LAMBDAS:
        use_anti_face(lam, mean, shape)
        faces = anonymized = recognized = unnatural = 0
        for seed in SEEDS:
            out = pipe(images, seed=seed)
            for r in out.faces:
                faces += 1
                unnatural += "natural-looking" in r.treatment_reason
                if r.treatment != "anonymized":
                    continue
                anonymized += 1
                recognized += facenet_distance(judge, images[r.image_index], np.asarray(out.images[r.image_index]), r) < 1.0
                if seed == 0:
                    tiles[lam].append(np.concatenate([r.crop, r.anonymized], 1))
        rows.append(f"| {lam:g} | {faces} | {anonymized} | {recognized} | {unnatural} |")
        print(rows[-1], flush=True)
    strips = [np.concatenate(t, 0) for t in tiles.values() if t]
    height = max(s.shape[0] for s in strips)
    strips = [np.pad(s, ((0, height - s.shape[0]), (0, 8), (0, 0)), constant_values=255) for s in strips]
    Image.fromarray(np.concatenate(strips, 1)).resize((sum(s.shape[1] for s in strips) // 2, height // 2)).save(HERE / "antiface.jpg", quality=85)
    write_table("antiface.md", ["lambda", "face draws", "anonymized (passed the guard)",
                                "of those, recognized by FaceNet-CASIA", "obscured as not natural-looking"], rows)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
