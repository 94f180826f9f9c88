"""Video: anonymize a clip frame by frame, every face tracked so that each person stays one stranger throughout.

``anonymize_frames`` streams: it takes frames (RGB arrays) one at a time and yields each anonymized, keeping one record
per tracked person and never the clip (only the few frames of a look-ahead, below); ``anonymize_video`` runs it between
PyAV's decoder and encoder (FFmpeg ships inside PyAV's wheel), copying the audio through as it is (remuxed, not
re-encoded).

Per frame: faces are detected (every frame, or every ``detect_every``-th) and associated with the live tracks by the IoU
of their boxes (Hungarian matching, scipy). A live track the whole-frame detection missed, or that was not run in this
frame, is followed: the detector looks again, with a lower bar, in the small region where the face should now be (much
cheaper than the whole frame). Boxes and landmarks are smoothed over time (a One-Euro filter, ``anon_model.smoothing``)
so the anonymized face does not shimmer. Each track keeps one delegate draw (``face_draws=``), its S-bar refitted to
each frame's landmarks and rendered with the retry effort it passed at (``DelegateDraw.effort``), so it stays one
stranger; in a frame where that draw fails the guard the face is obscured, never shown as a second stranger (its
naturalness limit has a little slack, ``plausibility.KEPT_SLACK``, so that the landmarker's wander from frame to frame
does not blink a kept stranger to a mosaic where it sits near the limit). Which draw: as the face moves, a try that
passed the guard by a hair fails it in many later frames, so a passing try is kept only with room to spare
(``KEEP_DISTANCE``, ``KEEP_ERROR``), or, after ``AUDITION_FRAMES`` passing frames without one, the sturdiest seen. Until
then each frame draws afresh from a seed of the track's seed and the frame index (with the guard's redraws), so a hard
face meets new delegates in every frame instead of the same failing ones; a frame where that face ended obscured is held
back (up to ``LOOK_AHEAD`` frames) and, once a draw is kept, its face is rendered again with it (and obscured again
where it fails the guard there), so the audition costs the person a delay, not their frames. Privacy does not blink: a
face followed is anonymized like a detected one, and where following fails too the track's predicted box is obscured,
until the track ends.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from anon_model.errors import AnonModelError
from anon_model.fallback import (MASK_SCALE, box_iou, face_region, obscure, obscure_box, obscured_region,
                                 obscuring_method)
from anon_model.imageio import atomic_write, load_image
from anon_model.keep import KeepDecision, follow
from anon_model.output import TREATMENTS
from anon_model.perception.detect import Detection
from anon_model.smoothing import OneEuroFilter
from anon_model.videofile import CONTAINERS

if TYPE_CHECKING:
    from anon_model.output import FaceRecord
    from anon_model.perception.face import Face
    from anon_model.pipeline import AnonPipeline, Timer
    from anon_model.vca import DelegateDraw

#: ``__call__`` options that perception reads (the rest go to the call only).
PERCEPTION_OPTIONS = ("detect_threshold", "max_faces")
#: A face followed between whole-frame detections is looked for in its predicted box widened by this much of its
#: size on each side ...
FOLLOW_MARGIN = 0.5
#: ... with this detector confidence (MTCNN's own last-stage bar): lower than a new face needs, since the track says
#: a face is there; a face not found even so is obscured at its predicted box.
FOLLOW_THRESHOLD = 0.7
#: What each stage of a frame is timed as (``timer``): whole-frame detection, following the faces it did not find,
#: landmarks, alignment, then the pipeline's own stages.
VIDEO_STAGES = ("detect", "follow", "landmarks", "align", "triage", "ifa", "vca", "synthesis", "guard", "paste_back")
#: A draw is kept for a whole track only with room to spare, as the face will move and change: at least this much
#: beyond the guard's distance limit ...
KEEP_DISTANCE = 0.03
#: ... and a naturalness landmark error at most this share of the check's limit.
KEEP_ERROR = 0.8
#: When no passing draw of a track is that sturdy within this many frames, the sturdiest one seen is kept.
AUDITION_FRAMES = 12
#: A frame whose face was obscured while its track had no kept draw waits up to this many frames (2 s at 25 fps) for
#: one, and is then rendered again with it ...
LOOK_AHEAD = 50
#: ... as long as the frames waiting (each held as it came and as first anonymized) take at most this much memory.
LOOK_AHEAD_BYTES = 1 << 30


class IoUTracker:
    """Track ids for each frame's detected face boxes: matched by IoU (Hungarian assignment) to where the live tracks
    should now be (their last box moved as it last moved), a new id for each face left over. A track whose face is
    found otherwise is ``move``d; one not found is told so (``miss``) and ends after more than `max_missed` frames
    in a row."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5) -> None:
        self.min_iou, self.max_missed = min_iou, max_missed
        self._boxes: dict[int, np.ndarray] = {}
        self._steps: dict[int, np.ndarray] = {}  # each track's box motion per frame, when last found
        self._missed: dict[int, int] = {}
        self._next_id = 0

    @property
    def boxes(self) -> dict[int, np.ndarray]:
        """Each live track's last box."""
        return dict(self._boxes)

    def update(self, boxes: list[np.ndarray]) -> list[int]:
        """The track id of each box (in the boxes' order) found by the detector in this frame; the live tracks left
        unmatched stay as they are until ``move`` or ``miss``."""
        live = list(self._boxes)
        ids = [-1] * len(boxes)
        if live and boxes:
            iou = np.array([[box_iou(b, self.predicted(t)) for t in live] for b in boxes])
            for row, col in zip(*linear_sum_assignment(iou, maximize=True)):
                if iou[row, col] >= self.min_iou:
                    ids[row] = live[col]
        for row, track in enumerate(ids):
            if track < 0:
                ids[row], self._next_id = self._next_id, self._next_id + 1
        for track, box in zip(ids, boxes):
            self.move(track, box)
        return ids

    def predicted(self, track: int) -> np.ndarray:
        """Where a live track's face should be in this frame: its last box moved on by its last motion per frame."""
        return self._boxes[track] + self._steps[track] * (self._missed[track] + 1)

    def move(self, track: int, box: np.ndarray) -> None:
        """Where a track's face is in this frame (found by the detector or otherwise)."""
        box = np.asarray(box, np.float64)
        last = self._boxes.get(track)
        self._steps[track] = np.zeros(4) if last is None else (box - last) / (self._missed[track] + 1)
        self._boxes[track], self._missed[track] = box, 0

    def miss(self, track: int) -> None:
        """Note a frame where a live track's face was not found; after more than `max_missed` in a row it ends."""
        self._missed[track] += 1
        if self._missed[track] > self.max_missed:
            del self._boxes[track], self._steps[track], self._missed[track]


@dataclass
class TrackRecord:
    """One tracked person: its seed and kept delegate draw, the frames it appears in and, per frame, how it was found
    and what it got."""

    track: int
    seed: int
    draw: DelegateDraw | None = field(default=None, repr=False)  # the kept draw (see the module), reused in every frame
    frames: list[int] = field(default_factory=list)
    found: list[str] = field(default_factory=list)  # "detected", "followed" (found near its last place) or "lost"
    treatments: list[str] = field(default_factory=list)
    mixtures: list[list[int]] = field(default_factory=list)  # the bank faces mixed into its appearance, per frame
    boxes: list[np.ndarray] = field(default_factory=list)
    distances: list[float | None] = field(default_factory=list)  # the guard's distance to the original, per frame

    def draw_seed(self, frame: int) -> int:
        """The seed of this frame's delegate draws while the track has none kept (the same for the same clip and seed)."""
        return int(np.random.SeedSequence([self.seed, frame]).generate_state(1, np.uint64)[0] >> 1)

    def add(self, frame: int, found: str, record: FaceRecord) -> None:
        """Note the face record of one frame."""
        self.frames.append(frame)
        self.found.append(found)
        self.treatments.append(record.treatment)
        self.mixtures.append(list(record.delegate_mixture))
        self.boxes.append(record.box)
        self.distances.append(record.identity_distance)

    def redo(self, frame: int, record: FaceRecord) -> None:
        """Replace what frame ``frame`` got by ``record``: its face rendered again with the draw kept since."""
        at = self.frames.index(frame)
        self.treatments[at], self.mixtures[at] = record.treatment, list(record.delegate_mixture)
        self.boxes[at], self.distances[at] = record.box, record.identity_distance

    def add_lost(self, frame: int, box: np.ndarray, treatment: str) -> None:
        """Note a frame where the face was neither detected nor followed and its predicted box got ``treatment``."""
        self.frames.append(frame)
        self.found.append("lost")
        self.treatments.append(treatment)
        self.mixtures.append([])
        self.boxes.append(box)
        self.distances.append(None)


@dataclass
class _Live:
    """What a live track carries between frames: its detector score and its smoothing filters."""

    score: float
    box_filter: OneEuroFilter = field(default_factory=OneEuroFilter)
    point_filter: OneEuroFilter = field(default_factory=OneEuroFilter)
    auditioned: int = 0  # frames in which a passing draw was tried and not yet kept
    candidate: DelegateDraw | None = None  # the sturdiest of them so far ...
    candidate_room: float = float("-inf")  # ... and its room (see ``FrameStream._room``)


@dataclass
class _Waiting:
    """A frame anonymized but not yet yielded: as it came, as anonymized so far, the region each face and lost box of
    it was worked in (by track), and its faces obscured while their tracks had no kept draw (track -> the face and
    its keep decision)."""

    index: int
    rgb: np.ndarray
    image: np.ndarray
    regions: dict[int, tuple[int, int, int, int]]
    auditioned: dict[int, tuple[Face, KeepDecision | None]]


class FrameStream(Iterator[np.ndarray]):
    """The anonymized frames of ``frames``, one at a time (see ``anonymize_frames``); ``tracks`` holds one record per
    tracked person so far, ``frames_done`` the number of frames yielded."""

    def __init__(self, pipe: AnonPipeline, frames: Iterable[np.ndarray], *, seed: int | None = 0, fps: float = 25.0,
                 detect_every: int = 1, smooth: bool = True, look_ahead: int = LOOK_AHEAD, timer: Timer | None = None,
                 **options) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1 (every frame), not {detect_every}")
        if look_ahead < 0:
            raise ValueError(f"look_ahead must be 0 (no frame held back) or more, not {look_ahead}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.references = pipe.reference(options.pop("keep")) if options.get("keep") is not None else []
        self.pipe, self._frames, self.options, self.timer = pipe, iter(frames), options, timer
        self.fps, self.detect_every, self.smooth = float(fps), detect_every, smooth
        self.base = seed if seed is not None else secrets.randbits(62)
        self.cfg = pipe.preprocessor.resolve(**{k: options[k] for k in PERCEPTION_OPTIONS if k in options})
        self.method = obscuring_method(options.get("replace_with", "anonymize"), options.get("fallback", "mosaic"))
        self.area = {"mask_scale": options.get("mask_scale", MASK_SCALE), "boxes": options.get("boxes", False)}
        self.tracker, self.frames_done = IoUTracker(), 0
        # frames held back for a re-render once their auditioning tracks keep a draw (none unless step 2 runs)
        self.look_ahead = look_ahead if options.get("replace_with", "anonymize") == "anonymize" else 0
        self._waiting: deque[_Waiting] = deque()
        self._read, self._ended = 0, False
        self._live: dict[int, _Live] = {}
        self._records: dict[int, TrackRecord] = {}
        self._kept: dict[int, tuple[KeepDecision, int]] = {}  # track -> the decision that kept it and its frame

    @property
    def tracks(self) -> list[TrackRecord]:
        """One record per tracked person so far, in the order they appeared."""
        return [self._records[t] for t in sorted(self._records)]

    def __next__(self) -> np.ndarray:
        while not self._ready():
            frame = next(self._frames, None)
            if frame is None:
                self._ended = True
            else:
                self._waiting.append(self._anonymize(load_image(frame), self._read))
                self._read += 1
        if not self._waiting:
            raise StopIteration
        image = self._rerender(self._waiting.popleft())
        self.frames_done += 1
        return image

    def _ready(self) -> bool:
        """Whether the oldest frame read can go (or the clip has ended): none of its auditioned faces' tracks can
        still keep a draw, or the look-ahead is full."""
        if self._ended or not self._waiting:
            return self._ended
        first = self._waiting[0]
        held = min(self.look_ahead, LOOK_AHEAD_BYTES // (2 * first.rgb.nbytes))
        return len(self._waiting) > held or not any(
            self._records[t].draw is None and t in self._live for t in first.auditioned)

    def _rerender(self, frame: _Waiting) -> np.ndarray:
        """A frame's final image: each face obscured while its track auditioned, rendered again with the draw the
        track has kept since, where its region touches no other face's (so the original put back under it cannot
        uncover a neighbour)."""
        image = frame.image
        for track, (face, keep) in frame.auditioned.items():
            record, region = self._records[track], frame.regions[track]
            others = [r for t, r in frame.regions.items() if t != track]
            if record.draw is None or any(box_iou(region, r) > 0 for r in others):
                continue
            result = self.pipe(frame.rgb, faces=[face], face_seeds=[record.seed], face_draws=[record.draw],
                               face_keeps=None if keep is None else [keep], timer=self.timer, **self.options)
            redone = np.asarray(result.image)
            x0, y0, x1, y1 = region
            take = (redone != frame.rgb).any(-1)
            take[y0:y1, x0:x1] = True
            for ox0, oy0, ox1, oy1 in others:  # the paste's feathered edge may reach a neighbour: its original is there
                take[oy0:oy1, ox0:ox1] = False
            image = np.where(take[..., None], redone, image)
            record.redo(frame.index, result.faces[0])
        return image

    def _stage(self, name: str) -> AbstractContextManager:
        return self.timer(name) if self.timer else nullcontext()

    def _anonymize(self, rgb: np.ndarray, index: int) -> _Waiting:
        """Frame ``index`` anonymized (RGB uint8) with what a re-render of it needs."""
        analyzer = self.pipe.preprocessor.analyzer
        found: dict[int, tuple[np.ndarray, np.ndarray, float, str]] = {}  # track -> box, landmarks, score, how
        if index % self.detect_every == 0:
            with self._stage("detect"):
                detections = analyzer.detect(rgb, threshold=self.cfg.detect_threshold, max_faces=self.cfg.max_faces)
            ids = self.tracker.update([d.box for d in detections])
            with self._stage("landmarks"):
                points = analyzer.landmark(rgb, detections)
            found = {t: (d.box, p, d.score, "detected") for t, d, p in zip(ids, detections, points)}
        for track in set(self._live) - set(self.tracker.boxes):  # ended: missed too long
            del self._live[track]
            self._kept.pop(track, None)
        lost: dict[int, np.ndarray] = {}
        for track in sorted(set(self._live) - set(found)):  # missed by the detector, or not looked for in this frame
            live = self._live[track]
            with self._stage("follow"):
                fit = self._follow(rgb, self.tracker.predicted(track), live.score, [f[0] for f in found.values()])
            if fit is None:
                lost[track] = self.tracker.predicted(track)
                self.tracker.miss(track)
            else:
                found[track] = (*fit, live.score, "followed")
                self.tracker.move(track, fit[0])
        tracks, faces = list(found), []
        with self._stage("align"):
            for track in tracks:
                faces.append(self._face(rgb, track, *found[track][:3], index))
        for track in tracks:
            self._records.setdefault(track, TrackRecord(track, self.base + track))
        records = [self._records[t] for t in tracks]
        seeds = [r.seed if r.draw is not None else r.draw_seed(index) for r in records]
        draws, keeps = [r.draw for r in records], self._keep_decisions(rgb, tracks, faces, index)
        result = self.pipe(rgb, faces=faces, face_seeds=seeds, face_draws=draws, face_keeps=keeps, timer=self.timer,
                           **self.options)
        image, auditioned = np.asarray(result.image), {}
        for i, (track, face, record) in enumerate(zip(tracks, faces, result.faces)):
            if record.treatment == "failed":
                raise AnonModelError(f"frame {index}: a face could not be anonymized and the fallback is none")
            if record.treatment == "anonymized" and self._records[track].draw is None and not self._keep(track, record):
                with self._stage("paste_back"):  # only the stranger kept for the track is ever shown
                    image = obscure(image, face, self.method, **self.area)  # as the pipeline obscures a face
                record.treatment, record.treatment_reason = "obscured", (
                    "this try passed the guard, but with too little room to be kept as the person's stranger for the "
                    "whole clip (its frames until one is kept are rendered again with it, or obscured)")
            if draws[i] is None and record.treatment == "obscured" and self.look_ahead:
                auditioned[track] = (face, None if keeps is None else keeps[i])
            self._records[track].add(index, found[track][3], record)
        for track, box in lost.items():  # neither detected nor followed: its predicted box, obscured
            if self.method == "none":
                raise AnonModelError(f"frame {index}: a tracked face was lost and the fallback is none")
            with self._stage("paste_back"):
                image = obscure_box(image, box, self.method, **self.area)
            self._records[track].add_lost(index, box, "obscured")
        scale = self.area["mask_scale"]
        regions = {t: obscured_region(f, rgb.shape, scale) for t, f in zip(tracks, faces)}
        regions.update({t: obscured_region(box, rgb.shape, scale) for t, box in lost.items()})
        return _Waiting(index, rgb, image, regions, auditioned)

    def _keep_decisions(self, rgb: np.ndarray, tracks: list[int], faces: list[Face],
                        index: int) -> list[KeepDecision | None] | None:
        """With references to keep, each face's decision in this frame (``keep.follow``: a track once kept stays
        kept until a recognizer calls it someone else); None without references."""
        if not self.references:
            return None
        decisions = []
        for track, now in zip(tracks, self.pipe.keep_judge.decide(rgb, faces, self.references)):
            first = self._kept.get(track)
            decision = follow(None if first is None else first[0], now, -1 if first is None else first[1])
            if not decision.kept:
                self._kept.pop(track, None)
            elif first is None:
                self._kept[track] = (decision, index)
            decisions.append(decision)
        return decisions

    def _room(self, record: FaceRecord) -> float:
        """How sturdily a passing try passed, in units of the room a kept draw needs (>= 1: enough): the smaller of
        its distance beyond the guard's limits over ``KEEP_DISTANCE`` and its naturalness error below the check's
        limit over the share ``KEEP_ERROR`` leaves free."""
        room = record.guard_room / KEEP_DISTANCE
        if record.landmark_error is not None:
            limit = self.pipe.plausibility.max_error
            room = min(room, (limit - record.landmark_error) / (limit * (1.0 - KEEP_ERROR)))
        return float(room)

    def _keep(self, track: int, record: FaceRecord) -> bool:
        """Whether this frame's passing try of a track without a kept draw becomes its draw (and is shown): when it
        has the room (``_room`` >= 1), or after ``AUDITION_FRAMES`` frames when it is the sturdiest seen; in that
        case an earlier frame's sturdier draw is kept instead and this frame is obscured. With fallback "none" (nothing
        to obscure with) the first pass is kept."""
        if self.method == "none":
            self._records[track].draw = record.delegate_draw
            return True
        live, room = self._live[track], self._room(record)
        if room > live.candidate_room:  # a try with room >= 1 always is: every earlier one had less
            live.candidate, live.candidate_room = record.delegate_draw, room
        live.auditioned += 1
        if room >= 1.0 or live.auditioned >= AUDITION_FRAMES:
            self._records[track].draw = live.candidate
        return self._records[track].draw is record.delegate_draw

    def _face(self, rgb: np.ndarray, track: int, box: np.ndarray, points: np.ndarray, score: float,
              index: int) -> Face:
        """The track's face in this frame (crop, pose, mask) from its box and landmarks, smoothed over time."""
        analyzer = self.pipe.preprocessor.analyzer
        live = self._live.setdefault(track, _Live(score=score))
        live.score = score
        if self.smooth:
            t, scale = index / self.fps, float(box[2] - box[0])
            box = live.box_filter(box.reshape(2, 2), t, scale).reshape(4)
            points = live.point_filter(points, t, scale)
        return analyzer.align(rgb, [Detection(box, score)], [points])[0]

    def _follow(self, rgb: np.ndarray, predicted: np.ndarray, score: float,
                taken: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """A face's box and landmarks in this frame without a whole-frame detection: the detector run on the region
        around where the face should be (``predicted``), with the lower ``FOLLOW_THRESHOLD``; None when it finds no
        face there, or only one another track already has (``taken`` boxes)."""
        analyzer = self.pipe.preprocessor.analyzer
        x0, y0, x1, y1 = face_region(predicted, rgb.shape, FOLLOW_MARGIN)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        threshold = min(self.cfg.detect_threshold, FOLLOW_THRESHOLD)
        boxes = [d.box + (x0, y0, x0, y0) for d in analyzer.detect(rgb[y0:y1, x0:x1], threshold=threshold)]
        overlap = [box_iou(b, predicted) for b in boxes]
        if not boxes or max(overlap) < self.tracker.min_iou:
            return None
        box = boxes[int(np.argmax(overlap))]
        if any(box_iou(box, other) >= self.tracker.min_iou for other in taken):
            return None
        return box, analyzer.landmark(rgb, [Detection(box, score)])[0]


def anonymize_frames(pipe: AnonPipeline, frames: Iterable[np.ndarray], *, seed: int | None = 0, fps: float = 25.0,
                     detect_every: int = 1, smooth: bool = True, look_ahead: int = LOOK_AHEAD,
                     timer: Timer | None = None, **options) -> FrameStream:
    """Anonymize a clip given as frames (RGB uint8 arrays, in order), streaming: frames are read as the anonymized
    ones are asked for, so the clip is never held in memory. The result iterates over the anonymized frames and keeps
    one ``TrackRecord`` per tracked person (``.tracks``; a frame's entry may change until the frame is yielded).

    `fps` times the smoothing; `detect_every` n runs the detector on every n-th frame only and follows the faces in
    between (a face entering the picture may then wait n - 1 frames to be found); `smooth` False turns the One-Euro
    filter off; `look_ahead` n holds a frame back while a face in it auditions for its stranger, at most n frames
    (and ``LOOK_AHEAD_BYTES``), so that it can be rendered with the draw kept (0: each frame is yielded before the
    next is read, and audition frames stay obscured); `timer` is ``AnonPipeline.__call__``'s, around each of
    ``VIDEO_STAGES``; `options` go to ``pipe(...)``; with ``keep=`` (reference people) a tracked face matched once
    stays kept along its track until a recognizer calls it someone else (``keep.follow``). A face reported as failed
    (``fallback="none"``) raises ``AnonModelError``.
    """
    return FrameStream(pipe, frames, seed=seed, fps=fps, detect_every=detect_every, smooth=smooth,
                       look_ahead=look_ahead, timer=timer, **options)


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
                    detect_every: int = 1, smooth: bool = True, timer: Timer | None = None,
                    **options) -> VideoOutput:
    """Anonymize every frame of `src` into `dest` (same frame count, rate, size and timestamps; H.264 at `crf`; audio
    copied unless ``audio=False``) with ``anonymize_frames`` (`seed`, `detect_every`, `smooth`, `timer`, `options`,
    among them `look_ahead`).

    `dest` appears only when complete (written beside it, then moved); `src` is only read. A face the call reports
    as failed (``fallback="none"``) stops the run: nothing is written.
    """
    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise ValueError(f"{dest}: the output would overwrite its input")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, atomic_write(dest) as fh:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if audio and inp.streams.audio else None
        with av.open(fh, "w", format=CONTAINERS.get(dest.suffix.lower(), "matroska")) as out:
            vout = out.add_stream(codec, rate=vin.average_rate, options={"crf": str(crf)})
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = "yuv420p" if vout.width % 2 == 0 == vout.height % 2 else "yuv444p"  # 4:2:0 needs even sides
            rate, size = vin.average_rate, (vout.width, vout.height)  # read while open (PyAV 18.1.1 refuses it after)
            vout.codec_context.time_base = vin.time_base
            aout = out.add_stream_from_template(ain) if ain is not None else None
            stamps: deque[tuple[int | None, object]] = deque()

            bar = tqdm(total=vin.frames or None, unit="frame", desc=src.name, leave=False, disable=not progress,
                       file=sys.stderr)

            def decoded() -> Iterator[np.ndarray]:
                """The clip's frames in order; audio packets met on the way are copied to the output. The progress
                bar counts a frame once the next is asked for (anonymized, maybe not yet written: the look-ahead)."""
                for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
                    if packet.stream is ain:
                        if packet.dts is not None:  # the demuxer's final empty packet carries nothing
                            packet.stream = aout
                            out.mux(packet)
                        continue
                    for frame in packet.decode():
                        stamps.append((frame.pts, frame.time_base))
                        yield frame.to_ndarray(format="rgb24")
                        bar.update()

            stream = anonymize_frames(pipe, decoded(), seed=seed, fps=float(vin.average_rate or 25), timer=timer,
                                      detect_every=detect_every, smooth=smooth, **options)
            with bar:
                try:
                    for image in stream:
                        anonymized = av.VideoFrame.from_ndarray(image, format="rgb24")
                        anonymized.pts, anonymized.time_base = stamps.popleft()
                        out.mux(vout.encode(anonymized))
                except AnonModelError as err:
                    raise AnonModelError(f"{src}: {err}: not written") from None
            out.mux(vout.encode(None))
    return VideoOutput(path=dest, frames=stream.frames_done, fps=float(rate), size=size, audio=aout is not None,
                       tracks=stream.tracks)
