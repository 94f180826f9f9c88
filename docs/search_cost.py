"""What the face search modes cost (perception/search.py): seconds of detection per mode on the bundled photos, a
two-person photo made of them, and that photo dark and upside down, with the number of detector passes and faces.

    python docs/search_cost.py        (about a minute on 2 cores; writes docs/search_cost.md)
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the two-person photo of the test suite

from _photos import two_people

from anon_model.imageio import load_image
from anon_model.perception import FaceAnalyzer
from anon_model.perception.orientation import upright_turns
from anon_model.perception.search import SEARCH_MODES

REPEATS = 3


def photos() -> dict[str, np.ndarray]:
    """The bundled photos, two_people, and two_people at 1/8 exposure and turned 180 degrees."""
    found = {p.name: load_image(p) for p in sorted((ROOT / "anon_model" / "assets" / "examples").glob("*.jpg"))}
    people = two_people()
    found["two_people"] = people
    found["two_people, 1/8 exposure"] = (people // 8).astype(np.uint8)
    found["two_people, turned 180 deg"] = np.ascontiguousarray(people[::-1, ::-1])
    return found


def main() -> None:
    """Time each search mode on each photo (median of REPEATS), counting detector passes; write the table."""
    torch.set_num_threads(2)
    analyzer = FaceAnalyzer(detector="mtcnn")
    start = time.perf_counter()
    upright_turns(np.zeros((64, 64, 3), np.uint8), np.array([16.0, 16.0, 48.0, 48.0]))
    load = time.perf_counter() - start
    passes: list[int] = []
    detector = analyzer.detector
    analyzer.detector = lambda image, **kw: passes.append(1) or detector(image, **kw)
    lines = ["# What the face search costs (docs/search_cost.py)", "", __doc__.split("\n\n")[0].strip(), "",
             f"Seconds of detection (median of {REPEATS}), detector passes and faces found per mode; "
             f"{torch.get_num_threads()} CPU threads on a machine other developers share. The first orientation "
             f"check of a process loads dlib's HOG detector: {load:.2f} s, once.", "",
             "| photo | " + " | ".join(f"{m}: s (passes, faces)" for m in SEARCH_MODES) + " |",
             "|---|" + "---|" * len(SEARCH_MODES)]
    for name, image in photos().items():
        cells = []
        for mode in SEARCH_MODES:
            seconds = []
            for _ in range(REPEATS):
                passes.clear()
                start = time.perf_counter()
                faces = analyzer.detect(image, search=mode)
                seconds.append(time.perf_counter() - start)
            cells.append(f"{statistics.median(seconds):.3f} ({len(passes)}, {len(faces)})")
        lines.append(f"| {name} {image.shape[1]}x{image.shape[0]} | " + " | ".join(cells) + " |")
    Path(__file__).with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
