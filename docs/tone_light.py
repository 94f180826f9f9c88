"""The skin tone VAA matches, when the photo's light changes: the 100 held-out portraits darkened x0.5, brightened
x1.5 and warmed (red x1.15, blue x0.8), each against the tone measured on the portrait as it is (lit as the bank's
portraits are). "measured": ITA on the cheeks of the changed photo (what VAA matched before 2026-12-07); "settled":
``DelegateBank.tone_of`` (the measured tone unless it lies too far from the one read from the face's features).

    python docs/tone_light.py        (about 2 minutes on 2 cores; prints a markdown table)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, build, split  # noqa: E402

from anon_model.attributes import skin_tone  # noqa: E402
from anon_model.perception import FaceAnalyzer  # noqa: E402

LIGHTS = {"darkened x0.5": (0.5, 0.5, 0.5), "brightened x1.5": (1.5, 1.5, 1.5), "warmed": (1.15, 1.0, 0.8)}


def main() -> None:
    bank, analyzer = build(without=("held-out",)), FaceAnalyzer()
    gaps: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in LIGHTS}
    for person in split()["held-out"]:
        rgb = np.asarray(Image.open(IMAGES / f"{person}.jpg").convert("RGB"), np.float32)
        faces = analyzer(rgb.astype(np.uint8))
        as_lit = skin_tone(faces[0].crop, faces[0].crop_landmarks) if faces else float("nan")
        if np.isnan(as_lit):  # no face, or a greyscale portrait: nothing to compare with
            continue
        for name, gain in LIGHTS.items():
            changed = analyzer(np.clip(rgb * np.asarray(gain), 0, 255).astype(np.uint8))
            if not changed:
                continue
            face = changed[0]
            measured = skin_tone(face.crop, face.crop_landmarks)
            settled = bank.tone_of(bank.embed(face.crop[None], face.crop_landmarks[None])[0], measured)
            gaps[name][0].append(abs(measured - as_lit))
            gaps[name][1].append(abs(settled - as_lit))
    print("| light | faces | measured: off by (median / 90th pct), within 10 deg | settled: off by, within 10 deg |")
    print("|---|---|---|---|")
    for name, (measured, settled) in gaps.items():
        m, s = np.array(measured), np.array(settled)
        print(f"| {name} | {len(m)} | {np.median(m):.0f} / {np.percentile(m, 90):.0f} deg, {np.mean(m <= 10):.0%} | "
              f"{np.median(s):.0f} / {np.percentile(s, 90):.0f} deg, {np.mean(s <= 10):.0%} |")


if __name__ == "__main__":
    main()
