"""``anon-model bench --video``: frames per second of ``anonymize_video`` on generated 720p clips, with the share of
each stage (``anon_model.video.VIDEO_STAGES``, timed through the same ``timer`` hook as the photo bench; the rest,
"codec and tracking", is decoding, encoding, smoothing and bookkeeping).

The clips are made here from the bundled example photos sliding across a plain background (``sliding_photos``) and
written with ``write_clip``, which the video tests use too. The bundled photos show the bundled bank's own people, so
with that bank most of their faces end obscured after every guard try: the figures are a pipeline's full work per face,
and the output says what the faces got.
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from anon_model.imageio import load_image
from anon_model.video import VIDEO_STAGES

__all__ = ["VideoBenchResult", "bench_video", "run_bench_video", "sliding_photos", "write_clip"]

#: The stages reported: the video's own, then what the timer does not see.
OTHER = "codec and tracking"


def write_clip(path: str | Path, frames: Iterable[np.ndarray], *, fps: int = 25, audio: bool = True,
               sample_rate: int = 16000) -> Path:
    """Write RGB frames (all one size) as an H.264 clip at `fps`, with a 440 Hz AAC tone along it when `audio`;
    returns `path`."""
    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    per_frame = sample_rate // fps
    with av.open(str(Path(path)), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p" if w % 2 == 0 == h % 2 else "yuv444p"
        sound = out.add_stream("aac", rate=sample_rate) if audio else None
        for i, frame in enumerate(itertools.chain([first], frames)):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            if sound is not None:
                t = (np.arange(per_frame) + i * per_frame) / sample_rate
                chunk = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                                   format="fltp", layout="mono")
                chunk.sample_rate = sample_rate
                out.mux(sound.encode(chunk))
        out.mux(video.encode(None))
        if sound is not None:
            out.mux(sound.encode(None))
    return Path(path)


def sliding_photos(photos: Sequence[np.ndarray], *, frames: int, size: tuple[int, int] = (1280, 720),
                   height: int = 300, speed: float = 4.0) -> Iterator[np.ndarray]:
    """`frames` frames of `size` (w, h) in which each photo, scaled to `height` pixels, slides right by `speed` pixels
    per frame in its own place (two rows, side by side, never overlapping), on a grey gradient."""
    w, h = size
    scaled = [np.asarray(Image.fromarray(p).resize((round(p.shape[1] * height / p.shape[0]), height))) for p in photos]
    background = np.tile(np.linspace(60, 190, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    columns = -(-len(photos) // 2)
    for i in range(frames):
        frame = background.copy()
        for k, photo in enumerate(scaled):
            x = int(k // 2 * w / columns + 20 + speed * i)
            y = 40 + (k % 2) * (h - height - 80) if len(photos) > 1 else (h - height) // 2
            part = photo[:, : max(0, min(photo.shape[1], w - x))]
            frame[y:y + height, x:x + part.shape[1]] = part
        yield frame


@dataclass
class VideoBenchResult:
    """One clip's timing: its faces and frames, seconds per stage (summed over the clip), end to end, frames/s."""

    device: str
    faces: int
    frames: int
    size: tuple[int, int]
    detect_every: int
    seconds: float  # wall time of anonymize_video on the whole clip (decode, anonymize, encode)
    cpu_seconds: float  # CPU time of this process meanwhile, all threads (compare with seconds on a busy machine)
    stages: dict[str, float] = field(default_factory=dict)
    treatments: dict[str, int] = field(default_factory=dict)  # faces per treatment, once per frame
    step2: str = ""

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict:
        """JSON-ready, with the frame rate."""
        return {**asdict(self), "frames_per_second": self.frames_per_second}


def bench_video(photos: Sequence[np.ndarray], *, faces: Sequence[int] = (1, 4), seconds: float = 2.0, fps: int = 25,
                size: tuple[int, int] = (1280, 720), detect_every: Sequence[int] = (1, 5), model: str | None = None,
                device: str = "cpu", seed: int = 0) -> list[VideoBenchResult]:
    """Time ``anonymize_video`` on a generated clip of `seconds` with each number of `faces` (the photos cycled) and
    each `detect_every`, after one untimed warm-up frame."""
    from anon_model import AnonPipeline
    from anon_model.evaluation.bench import _Clock
    from anon_model.video import anonymize_video

    pipe = AnonPipeline.from_pretrained(model, device=device)
    pipe(photos[0], seed=seed)  # warm-up: lazy loads, codebook, allocator
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in faces:
            chosen = [photos[i % len(photos)] for i in range(count)]
            clip = write_clip(Path(tmp) / f"faces{count}.mp4",
                              sliding_photos(chosen, frames=round(seconds * fps), size=size), fps=fps)
            for every in detect_every:
                clock = _Clock(device, VIDEO_STAGES)
                t0, cpu0 = time.perf_counter(), time.process_time()
                out = anonymize_video(pipe, clip, Path(tmp) / "out.mp4", seed=seed, progress=False,
                                      detect_every=every, timer=clock.stage)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                stages = {**clock.totals, OTHER: max(0.0, wall - sum(clock.totals.values()))}
                results.append(VideoBenchResult(device=device, faces=count, frames=out.frames, size=size,
                                                detect_every=every, seconds=wall, cpu_seconds=cpu, stages=stages,
                                                treatments=out.counts(), step2=pipe.step2_name))
    return results


def run_bench_video(args: argparse.Namespace) -> int:
    """``anon-model bench --video``: a table (or JSON with --json) of frames/s and stage shares per clip and device."""
    from anon_model.evaluation.bench import _devices, bench_images

    photos = [load_image(p) for p in bench_images(args)]
    runs = [r for d in _devices(args.device) for r in bench_video(photos, model=args.model, device=d, seed=args.seed)]
    if args.json:
        print(json.dumps({"threads": torch.get_num_threads(), "runs": [r.as_dict() for r in runs]}))
        return 0
    for r in runs:
        w, h = r.size
        faces = ", ".join(f"{n} {t}" for t, n in r.treatments.items() if n)
        print(f"device {r.device} ({torch.get_num_threads()} CPU threads): {w}x{h}, {r.faces} face(s), {r.frames} "
              f"frames, detection every {r.detect_every} frame(s) -> {r.frames_per_second:.2f} frames/s "
              f"({r.seconds:.1f} s wall, {r.cpu_seconds:.1f} s CPU); faces: {faces}; step 2: {r.step2}")
        for stage, t in r.stages.items():
            print(f"  {stage:<19} {t:8.2f} s  {100 * t / r.seconds:5.1f} %")
    return 0
