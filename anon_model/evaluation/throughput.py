"""Faces per second by batch size (``anon-model bench --batch-sizes 1,8,32``): the same photos through the pipeline
``b`` at a time (one list call per batch, the faces of a batch sharing the networks' batches), after a warm-up."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from anon_model.imageio import load_image

__all__ = ["throughput", "parse_batch_sizes"]


def parse_batch_sizes(text: str) -> list[int]:
    """"1,8,32" -> [1, 8, 32] (each at least 1), or a clear error."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--batch-sizes takes whole numbers separated by commas, e.g. 1,8,32, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch-sizes needs numbers of at least 1, not {text!r}")
    return sizes


def throughput(images: Sequence[str | Path | np.ndarray], batch_sizes: Sequence[int], *, model: str | None = None,
               device: str | None = None, seed: int = 0) -> list[dict[str, float]]:
    """Per batch size: photos, faces, seconds and faces per second over ``max(batch_sizes)`` photos (``images``
    repeated to that many), each size timed on the same photos."""
    from anon_model import AnonPipeline

    photos = [load_image(p) for p in images]
    n = max(max(batch_sizes), len(photos))
    photos = [photos[i % len(photos)] for i in range(n)]
    pipe = AnonPipeline.from_pretrained(model, device=device)
    pipe.set_progress_bar_config(disable=True)
    pipe(photos[:2], seed=seed)  # warm-up: lazy loads, codebook, allocator
    cuda = pipe.device.type == "cuda"
    rows = []
    for b in batch_sizes:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        faces = sum(len(pipe(photos[i:i + b], seed=seed).faces) for i in range(0, n, b))
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        rows.append({"batch_size": b, "photos": n, "faces": faces, "seconds": seconds,
                     "faces_per_second": faces / seconds if seconds > 0 else float("nan")})
    return rows


def run_bench_batches(args) -> int:
    """``anon-model bench --batch-sizes ...``: a line per batch size (or, with --json, one object with ``batches``)."""
    import json
    import sys

    from anon_model.evaluation.bench import bench_images

    try:
        sizes = parse_batch_sizes(args.batch_sizes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    images = bench_images(args)
    device = None if args.device == "auto" else args.device
    rows = throughput(images, sizes, model=args.model, device=device, seed=args.seed)
    if args.json:
        print(json.dumps({"batches": rows, "threads": torch.get_num_threads()}))
        return 0
    for r in rows:
        print(f"batch {r['batch_size']:>3}: {r['faces']} face(s) of {r['photos']} photo(s) in {r['seconds']:.2f} s "
              f"-> {r['faces_per_second']:.2f} faces/s")
    return 0
