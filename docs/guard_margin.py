"""Regenerate docs/guard_margin.md: how far from the original the guard must hold a result (ORIGINAL_MARGIN).

For each margin, the pipeline anonymizes insightface's t1.jpg, the astronaut photo and Grace Hopper's portrait with
seeds 0-5; every face the guard passed is then judged by the independent FaceNet-CASIA (L2 < 1.0 to the original, at
the original's landmarks). The guard's bank margin stays at MARGIN.
    python docs/guard_margin.py            (about 3 CPU-minutes; writes docs/guard_margin.md)
"""
from __future__ import annotations

import os

import numpy as np

import anon_model.pipeline
from anon_model import AnonPipeline
from anon_model.evaluation.recognizers import FaceNetCasiaRecognizer
from anon_model.guard import IdentityGuard
from second_judge import facenet_distance, photos, write_table

MARGINS, SEEDS = (0.05, 0.10), range(6)


def main() -> None:
    pipe, judge = AnonPipeline.from_pretrained(), FaceNetCasiaRecognizer()
    pipe.set_progress_bar_config(disable=True)
    images = photos()
    rows = []
    for margin in MARGINS:
        anon_model.pipeline.IdentityGuard = lambda *a, m=margin, **k: IdentityGuard(*a, original_margin=m, **k)
        faces, anonymized, recognized, close = 0, 0, 0, []
        for seed in SEEDS:
            out = pipe(images, seed=seed)
            for r in out.faces:
                faces += 1
                if r.treatment != "anonymized":
                    continue
                anonymized += 1
                if facenet_distance(judge, images[r.image_index], np.asarray(out.images[r.image_index]), r) < 1.0:
                    recognized += 1
                    close.append(f"{r.identity_distance:.3f}")
        rows.append(f"| {margin:.2f} | {faces} | {anonymized} | {recognized} | {', '.join(close) or '-'} |")
        print(rows[-1], flush=True)
    anon_model.pipeline.IdentityGuard = IdentityGuard
    write_table("guard_margin.md", ["margin from the original", "face draws", "anonymized",
                                    "of those, recognized by FaceNet-CASIA", "their dlib distance to the original"], rows)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
