"""``anon-model bench``: time each stage of the pipeline on a batch of photos, per device, with peak memory.

The stages are those of ``AnonPipeline.__call__`` itself (``anon_model.pipeline.STAGES``), timed through its ``timer``
hook: detect, landmarks, align, IFA, VCA (delegate draws, redraws included), synthesis (every try), the identity
guard's verification, paste-back. The end-to-end time is a second, untimed pass of one ``pipe(image)`` call per
photo; ``seconds_per_face`` is taken from it. ``startup_seconds`` is what a fresh process pays before its first photo:
importing anon_model and loading the pipeline (``from_pretrained``), measured in a new Python process.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from anon_model.imageio import IMAGE_SUFFIXES, load_image
from anon_model.pipeline import STAGES

__all__ = ["STAGES", "BenchResult", "bench", "measure_startup", "add_bench_arguments", "run_bench"]


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
    startup_seconds: float | None = None  # a fresh process: import anon_model + from_pretrained (None: not measured)

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

    def __init__(self, device: str, stages: Sequence[str] = STAGES) -> None:
        self.cuda = device.startswith("cuda")
        self.totals = {s: 0.0 for s in stages}

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


def bench_images(args: argparse.Namespace) -> list[str]:
    """The photos ``anon-model bench`` times (the bundled examples unless given), once ``--threads`` is applied."""
    from anon_model.evaluation.dataset import EXAMPLES_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    return args.images or sorted(str(p) for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def bench(images: Sequence[str | Path | np.ndarray], *, model: str | None = None, device: str = "cpu", repeats: int = 1,
          seed: int = 0, startup: bool = False) -> BenchResult:
    """Time every stage and the whole pipeline on `images` (after one untimed warm-up pass) on `device`; with
    `startup`, also a fresh process's import and load (``measure_startup``)."""
    from anon_model import AnonPipeline

    startup_seconds = measure_startup(model, device) if startup else None
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
        step2=str(getattr(pipe, "step2_name", "")), startup_seconds=startup_seconds,
    )


def measure_startup(model: str | None = None, device: str = "cpu") -> float:
    """Seconds a new Python process takes to import anon_model and load the pipeline `model` on `device` (what every
    command-line run and script pays before its first photo), with this process's torch thread count."""
    code = ("import sys, time; t0 = time.perf_counter(); import torch; torch.set_num_threads(int(sys.argv[3])); "
            "from anon_model import AnonPipeline; "
            "AnonPipeline.from_pretrained(sys.argv[1] or None, device=sys.argv[2]); print(time.perf_counter() - t0)")
    done = subprocess.run([sys.executable, "-c", code, model or "", device, str(torch.get_num_threads())],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"loading the pipeline in a new process failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.split()[-1])


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
    parser.add_argument("--video", action="store_true", help="time video instead: frames/s on generated 720p clips of "
                        "the photos sliding (1 and 4 faces; detection every frame and every 5th)")
    parser.add_argument("--batch-sizes", default=None, metavar="LIST", help="time batching instead: faces/s with "
                        "LIST photos per pipeline call, e.g. 1,8,32 (the photos repeated to the largest size)")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``anon-model bench``; the JSON's top level is the last device's result, ``runs`` holds every device's."""
    if args.video:
        from anon_model.evaluation.bench_video import run_bench_video

        return run_bench_video(args)
    if args.batch_sizes:
        from anon_model.evaluation.throughput import run_bench_batches

        return run_bench_batches(args)
    images = bench_images(args)
    runs = [bench(images, model=args.model, device=d, repeats=args.repeat, seed=args.seed, startup=True)
            for d in _devices(args.device)]
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
        if r.startup_seconds is not None:
            print(f"  startup     {r.startup_seconds:8.3f} s  (a new process: import + from_pretrained)")
        cuda = f", CUDA peak {r.peak_cuda_mb:.0f} MB" if r.peak_cuda_mb is not None else ""
        print(f"  peak memory: RSS {r.peak_rss_mb:.0f} MB{cuda}")
    return 0
