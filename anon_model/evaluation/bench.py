"""``anon-model bench``: time each stage of the pipeline on a batch of photos, per device, with peak memory.

The stages are those of ``AnonPipeline.__call__`` itself (``anon_model.pipeline.STAGES``), timed through its ``timer``
hook: detect, landmarks, align, IFA, VCA (delegate draws, redraws included), synthesis (every try), the identity
guard's verification, paste-back. The end-to-end time is a second, untimed pass of one ``pipe(image)`` call per
photo; ``seconds_per_face`` is taken from it.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from anon_model.imageio import IMAGE_SUFFIXES, load_image
from anon_model.pipeline import STAGES

__all__ = ["STAGES", "BenchResult", "bench", "add_bench_arguments", "run_bench"]


@dataclass
class BenchResult:
    """Timings of one device: seconds per stage (summed over the batch), end to end, and peak memory."""

    device: str
    photos: int
    faces: int
    repeats: int
    stages: dict[str, float] = field(default_factory=dict)  # seconds per repeat of the batch
    end_to_end: float = 0.0  # seconds per repeat of the batch (pipe(image) for every photo)
    peak_rss_mb: float = 0.0  # process peak resident memory (models included)
    peak_cuda_mb: float | None = None  # torch.cuda.max_memory_allocated during the timed runs
    step2: str = ""

    @property
    def seconds_per_face(self) -> float:
        return self.end_to_end / max(self.faces, 1)

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.end_to_end if self.end_to_end > 0 else float("nan")

    def as_dict(self) -> dict:
        """JSON-ready, with the derived rates."""
        return {**asdict(self), "seconds_per_face": self.seconds_per_face, "faces_per_second": self.faces_per_second,
                "stage_seconds_per_face": {k: v / max(self.faces, 1) for k, v in self.stages.items()}}


class _Clock:
    """Adds up wall time per stage; synchronizes CUDA so asynchronous kernels are counted where they run."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.totals = {s: 0.0 for s in STAGES}

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._sync()
        t0 = time.perf_counter()
        yield
        self._sync()
        self.totals[name] += time.perf_counter() - t0


def bench(images: Sequence[str | Path | np.ndarray], *, model: str | None = None, device: str = "cpu", repeats: int = 1,
          seed: int = 0) -> BenchResult:
    """Time every stage and the whole pipeline on `images` (after one untimed warm-up pass) on `device`."""
    from anon_model import AnonPipeline

    photos = [load_image(p) for p in images]
    pipe = AnonPipeline.from_pretrained(model, device=device)
    for image in photos:  # warm-up: lazy loads, codebook, allocator, cuDNN autotuning
        pipe(image, seed=seed)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    clock = _Clock(device)
    faces = 0
    for _ in range(repeats):
        faces = sum(len(pipe(image, seed=seed, timer=clock.stage).faces) for image in photos)
    clock._sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        for image in photos:
            pipe(image, seed=seed)
    clock._sync()
    end_to_end = (time.perf_counter() - t0) / repeats
    return BenchResult(
        device=device, photos=len(photos), faces=faces, repeats=repeats,
        stages={k: v / repeats for k, v in clock.totals.items()}, end_to_end=end_to_end,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        peak_cuda_mb=torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None,
        step2=str(getattr(pipe, "step2_name", "")),
    )


def _devices(choice: str) -> list[str]:
    """ "auto": the CPU, plus the GPU when there is one; otherwise the named device."""
    if choice == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [choice]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anon-model bench``."""
    parser.add_argument("images", nargs="*", help="photos to time (default: the bundled example photos)")
    parser.add_argument("--model", default=None, metavar="ID|DIR", help="pipeline (default: built-in offline)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (CPU, then GPU when present; default)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="timed passes over the batch (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (with seconds_per_face) instead of a table")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``anon-model bench``; the JSON's top level is the last device's result, ``runs`` holds every device's."""
    from anon_model.evaluation.dataset import EXAMPLES_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    images = args.images or sorted(str(p) for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    runs = [bench(images, model=args.model, device=d, repeats=args.repeat, seed=args.seed) for d in _devices(args.device)]
    if args.json:
        print(json.dumps({**runs[-1].as_dict(), "threads": torch.get_num_threads(),
                          "runs": {r.device: r.as_dict() for r in runs}}))
        return 0
    for r in runs:
        print(f"device {r.device} ({torch.get_num_threads()} CPU threads): {r.photos} photo(s), {r.faces} face(s); "
              f"step 2: {r.step2}")
        for stage in STAGES:
            print(f"  {stage:<11} {r.stages[stage]:8.3f} s  ({r.stages[stage] / max(r.faces, 1):.3f} s/face)")
        print(f"  end to end  {r.end_to_end:8.3f} s  -> {r.seconds_per_face:.3f} s/face, {r.faces_per_second:.2f} faces/s")
        cuda = f", CUDA peak {r.peak_cuda_mb:.0f} MB" if r.peak_cuda_mb is not None else ""
        print(f"  peak memory: RSS {r.peak_rss_mb:.0f} MB{cuda}")
    return 0
