"""Does training learn? Overfit the tiny config on 8 faces and print the reconstruction SSIM before and after.

    python train/overfit_check.py [--steps 300] [--output runs/overfit]

The 8 faces are made from the bundled example photos (flips, crops, colour changes), so it runs offline.
On a shared CPU, run it with OMP_NUM_THREADS=1: oversubscribed OpenMP threads slow training down many times.
SSIM is measured on the 256x256 crops between x and the reconstruction x-hat = G(f_x, Z_a(x), Z_g(x)).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data import FaceDataset  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"


def example_face_folder(folder: str | Path, *, count: int = 8) -> Path:
    """Write ``count`` distinct face photos made from the bundled examples (mirror, crop, colour) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(EXAMPLES.glob("*.jpg"))
    for i in range(count):
        image = Image.open(sources[i % len(sources)]).convert("RGB")
        variant = i // len(sources)
        if variant % 2 == 1:
            image = ImageOps.mirror(image)
        w, h = image.size
        margin = 0.04 * variant
        image = image.crop((int(w * margin), int(h * margin), int(w * (1 - margin)), int(h * (1 - margin))))
        image = ImageEnhance.Color(image).enhance(1.0 - 0.3 * variant)
        image = ImageEnhance.Brightness(image).enhance(1.0 + 0.1 * variant)
        image.save(folder / f"face_{i:02d}.png")
    return folder


def reconstruction_ssim(exported: str | Path, cache: str | Path) -> float:
    """Mean SSIM between each cached face x and G(f_x, Z_a(x), Z_g(x)) of the exported generator."""
    from skimage.metrics import structural_similarity

    from anon_model.models import FaceAnonGenerator

    folder = Path(exported)
    step2 = next((folder / name for name in ("synthesizer", "generator") if (folder / name).is_dir()), folder)
    generator = FaceAnonGenerator.from_pretrained(step2)
    dataset = FaceDataset(cache)
    scores = []
    for i in range(len(dataset)):
        item = dataset[i]
        with torch.inference_mode():
            x_hat = generator(item["z_id"][None], item["z_a"][None], item["z_g"][None])[0]
        scores.append(structural_similarity(
            item["x"].permute(1, 2, 0).numpy(), x_hat.permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0))
    return float(np.mean(scores))


def run(*, steps: int, output: Path, config: str = "tiny") -> tuple[float, float]:
    """Export ``config`` untrained (step 0) and after ``steps`` steps; return the SSIM before and after."""
    from train.train import main

    data = example_face_folder(output / "faces")
    cache = output / "cache"
    common = ["--config", config, "--data", str(data), "--cache", str(cache)]
    before_dir = main([*common, "--output", str(output / "untrained"), "--max-steps", "0"])
    after_dir = main([*common, "--output", str(output / "trained"), "--max-steps", str(steps)])
    (spec_cache,) = [p for p in cache.iterdir() if p.is_dir()]
    return reconstruction_ssim(before_dir, spec_cache), reconstruction_ssim(after_dir, spec_cache)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--config", default="tiny", help="training config name or JSON path")
    parser.add_argument("--output", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before, after = run(steps=args.steps, output=Path(args.output or tmp), config=args.config)
    print(f"reconstruction SSIM on 8 faces: before {before:.3f}, after {args.steps} steps {after:.3f} "
          f"(gain {after - before:+.3f})")
