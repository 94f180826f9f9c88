"""Regenerate docs/guard_margin.md: how far from the original the guard must hold a result (ORIGINAL_MARGIN).

For each margin, the pipeline anonymizes insightface's t1.jpg, the astronaut photo and Grace Hopper's portrait with
seeds 0-5; every face the guard passed is then judged by the independent FaceNet-CASIA (L2 < 1.0 to the original, at
the original's landmarks). The guard's bank margin stays at MARGIN.
    python docs/guard_margin.py            (about 3 CPU-minutes; writes docs/guard_margin.md)
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import anon_model.pipeline
from anon_model import AnonPipeline
from anon_model.evaluation.recognizers import FaceNetCasiaRecognizer
from anon_model.guard import IdentityGuard
from antiface import photos

HERE = Path(__file__).resolve().parent
MARGINS, SEEDS = (0.05, 0.10), range(6)


def main() -> None:
    pipe, judge = AnonPipeline.from_pretrained(), FaceNetCasiaRecognizer()
    pipe.set_progress_bar_config(disable=True)
    images = [image for _, image in photos()]
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
                at = [SimpleNamespace(landmarks=r.landmarks)]
                d = judge.score(judge.embed(images[r.image_index], at), judge.embed(np.asarray(out.images[r.image_index]), at))
                if d[0, 0] < 1.0:
                    recognized += 1
                    close.append(f"{r.identity_distance:.3f}")
        rows.append(f"| {margin:.2f} | {faces} | {anonymized} | {recognized} | {', '.join(close) or '-'} |")
        print(rows[-1], flush=True)
    anon_model.pipeline.IdentityGuard = IdentityGuard
    text = (HERE / "guard_margin.md").read_text()
    head, _, rest = text.partition("<!-- table -->")
    _, _, tail = rest.partition("<!-- /table -->")
    table = "\n".join(["| margin from the original | face draws | anonymized | of those, recognized by FaceNet-CASIA "
                       "| their dlib distance to the original |", "|---|---|---|---|---|", *rows])
    (HERE / "guard_margin.md").write_text(f"{head}<!-- table -->\n{table}\n<!-- /table -->{tail}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
