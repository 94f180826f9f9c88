"""Video: anonymize a clip frame by frame, every face tracked so that each person stays one stranger throughout.

Decoding and encoding use PyAV (FFmpeg ships inside its wheel). Faces are associated between consecutive frames by
the IoU of their boxes (Hungarian matching, scipy); each track draws its delegates from its own seed (``track_seed``:
one whose first draw the identity guard passes), so its draw repeats in every frame. Privacy does not blink: in a
frame where the detector misses a live track's face, its last box is obscured by the fallback. Audio is copied
through as it is (remuxed, not re-encoded).
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from anon_model.errors import AnonModelError
from anon_model.fallback import box_iou, obscure_box, obscuring_method
from anon_model.imageio import atomic_write
from anon_model.output import TREATMENTS

if TYPE_CHECKING:
    from anon_model.output import FaceRecord
    from anon_model.perception.face import Face
    from anon_model.pipeline import AnonPipeline

#: File suffixes read as video (the CLI routes them here).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
#: Containers written as they came (FFmpeg muxer names); others become Matroska, which takes any audio codec as is.
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: ``__call__`` options that perception reads (the rest go to the call only).
PERCEPTION_OPTIONS = ("detect_threshold", "max_faces")
#: A track's candidate seeds are this far apart, so no two tracks of a clip share one.
SEED_STRIDE = 1 << 20


def is_video(path: str | os.PathLike) -> bool:
    """Whether `path` is a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(path: str | os.PathLike) -> str:
    """The suffix of a video's result: its own container when we write it (.mp4, .mov, .mkv), else .mkv."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in CONTAINERS else ".mkv"


class IoUTracker:
    """Track ids for each frame's face boxes: matched to the live tracks by box IoU (Hungarian assignment), a new
    id for each face left over; a track unseen for more than `max_missed` frames ends."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou, self.max_missed = min_iou, max_missed
        self._boxes: dict[int, np.ndarray] = {}
        self._missed: dict[int, int] = {}
        self._next_id = 0

    def update(self, boxes: list[np.ndarray]) -> list[int]:
        """The track id of each box (in the boxes' order)."""
        live = list(self._boxes)
        ids = [-1] * len(boxes)
        if live and boxes:
            iou = np.array([[box_iou(b, self._boxes[t]) for t in live] for b in boxes])
            for row, col in zip(*linear_sum_assignment(iou, maximize=True)):
                if iou[row, col] >= self.min_iou:
                    ids[row] = live[col]
        for row, track in enumerate(ids):
            if track < 0:
                ids[row], self._next_id = self._next_id, self._next_id + 1
        for track in set(live) - set(ids):
            self._missed[track] += 1
            if self._missed[track] > self.max_missed:
                del self._boxes[track], self._missed[track]
        for track, box in zip(ids, boxes):
            self._boxes[track], self._missed[track] = np.asarray(box, np.float64), 0
        return ids

    def missing(self) -> dict[int, np.ndarray]:
        """The live tracks not seen in the last frame, with their last box (the face is probably still there)."""
        return {t: self._boxes[t] for t, missed in self._missed.items() if missed > 0}


def track_seed(pipe: AnonPipeline, rgb: np.ndarray, face: Face, seed: int, **options) -> int:
    """The seed a new track keeps: the first of seed, seed + SEED_STRIDE, ... whose first draw the identity guard
    passes on this frame (the guard's own redraws would give each frame its own stranger); `seed` if none does."""
    if options.get("replace_with", "anonymize") != "anonymize":
        return seed
    attempts = pipe.preprocessor.resolve(guard_attempts=options.get("guard_attempts")).guard_attempts
    for candidate in range(seed, seed + attempts * SEED_STRIDE, SEED_STRIDE):
        probe = pipe(rgb, faces=[face], face_seeds=[candidate], **{**options, "guard_attempts": 1})
        if probe.faces[0].treatment == "anonymized":
            return candidate
    return seed


@dataclass
class TrackRecord:
    """One tracked person: its seed, the frames it appears in and, per frame, what its face got."""

    track: int
    seed: int
    frames: list[int] = field(default_factory=list)
    treatments: list[str] = field(default_factory=list)
    mixtures: list[list[int]] = field(default_factory=list)  # the bank faces mixed into its appearance, per frame
    boxes: list[np.ndarray] = field(default_factory=list)
    distances: list[float | None] = field(default_factory=list)  # the guard's distance to the original, per frame

    def add(self, frame: int, record: FaceRecord) -> None:
        """Note the face record of one frame."""
        self.frames.append(frame)
        self.treatments.append(record.treatment)
        self.mixtures.append(list(record.delegate_mixture))
        self.boxes.append(record.box)
        self.distances.append(record.identity_distance)

    def add_missed(self, frame: int, box: np.ndarray, treatment: str) -> None:
        """Note a frame where the detector missed this face and its last box got ``treatment``."""
        self.frames.append(frame)
        self.treatments.append(treatment)
        self.mixtures.append([])
        self.boxes.append(box)
        self.distances.append(None)


@dataclass
class VideoOutput:
    """What ``anonymize_video`` wrote: the file, its frame count, rate and size, whether audio was kept, the tracks."""

    path: Path
    frames: int
    fps: float
    size: tuple[int, int]
    audio: bool
    tracks: list[TrackRecord]

    def counts(self) -> dict[str, int]:
        """Faces per treatment, counted once per frame they appear in."""
        return {t: sum(r.treatments.count(t) for r in self.tracks) for t in TREATMENTS}


def anonymize_video(pipe: AnonPipeline, src: str | os.PathLike, dest: str | os.PathLike, *, seed: int | None = 0,
                    audio: bool = True, codec: str = "libx264", crf: int = 18, progress: bool = True,
                    **options) -> VideoOutput:
    """Anonymize every frame of `src` into `dest` (same frame count, rate and size; H.264 at `crf`; audio copied
    unless ``audio=False``), each tracked face drawing from its track's seed (``track_seed``). `options` go to
    ``pipe(...)``.

    `dest` appears only when complete (written beside it, then moved); `src` is only read. A face the call reports
    as failed (``fallback="none"``) stops the run: nothing is written.
    """
    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise ValueError(f"{dest}: the output would overwrite its input")
    tracked = _TrackedFrames(pipe, src, seed if seed is not None else secrets.randbits(62), options)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, atomic_write(dest) as fh:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if audio and inp.streams.audio else None
        with av.open(fh, "w", format=CONTAINERS.get(dest.suffix.lower(), "matroska")) as out:
            vout = out.add_stream(codec, rate=vin.average_rate, options={"crf": str(crf)})
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 == vout.height % 2 else "yuv444p"  # 4:2:0 needs even sides
            vout.codec_context.time_base = vin.time_base
            aout = out.add_stream_from_template(ain) if ain is not None else None
            bar = tqdm(total=vin.frames or None, unit="frame", desc=src.name, leave=False, disable=not progress,
                       file=sys.stderr)
            index = 0
            for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
                if packet.stream is ain:
                    if packet.dts is not None:  # the demuxer's final empty packet carries nothing
                        packet.stream = aout
                        out.mux(packet)
                    continue
                for frame in packet.decode():
                    image = tracked(frame.to_ndarray(format="rgb24"), index)
                    anonymized = av.VideoFrame.from_ndarray(image, format="rgb24")
                    anonymized.pts, anonymized.time_base = frame.pts, frame.time_base
                    out.mux(vout.encode(anonymized))
                    index += 1
                    bar.update()
            out.mux(vout.encode(None))
            bar.close()
    return VideoOutput(path=dest, frames=index, fps=float(vin.average_rate), size=(vout.width, vout.height),
                       audio=aout is not None, tracks=[tracked.tracks[t] for t in sorted(tracked.tracks)])


class _TrackedFrames:
    """Anonymizes a clip's frames in order: perceives, tracks, gives each new track its seed, runs the pipeline, and
    obscures the last box of a live track the detector missed in this frame."""

    def __init__(self, pipe: AnonPipeline, src: Path, base: int, options: dict) -> None:
        self.pipe, self.src, self.base, self.options = pipe, src, base, options
        self.cfg = pipe.preprocessor.resolve(**{k: options[k] for k in PERCEPTION_OPTIONS if k in options})
        self.method = obscuring_method(options.get("replace_with", "anonymize"), options.get("fallback", "mosaic"))
        self.tracker, self.tracks = IoUTracker(), {}  # track id -> its record

    def __call__(self, rgb: np.ndarray, index: int) -> np.ndarray:
        """Frame ``index`` anonymized (RGB uint8)."""
        faces = self.pipe.perceive(rgb, self.cfg)
        ids = self.tracker.update([f.box for f in faces])
        for face, track in zip(faces, ids):
            if track not in self.tracks:
                self.tracks[track] = TrackRecord(track, track_seed(self.pipe, rgb, face, self.base + track,
                                                                   **self.options))
        result = self.pipe(rgb, faces=faces, face_seeds=[self.tracks[t].seed for t in ids], **self.options)
        for track, record in zip(ids, result.faces):
            if record.treatment == "failed":
                raise AnonModelError(f"{self.src}: frame {index}: a face could not be anonymized and the fallback is "
                                     "none: not written")
            self.tracks[track].add(index, record)
        image = np.asarray(result.image)
        for track, box in self.tracker.missing().items():  # missed in this frame: its last box, obscured
            if self.method == "none":
                raise AnonModelError(f"{self.src}: frame {index}: a tracked face was not detected and the fallback "
                                     "is none: not written")
            image = obscure_box(image, box, self.method)
            self.tracks[track].add_missed(index, box, "obscured")
        return image
