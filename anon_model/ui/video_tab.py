"""The app's Video tab without gradio: a clip's limits checked from its container header, the run, a summary per person.

``probe_clip`` refuses a clip that is longer, larger or has more frames than the page states from its header (PyAV),
before any frame is decoded; ``anonymize_clip`` writes the anonymized clip as an MP4 a browser plays (H.264, the audio
copied when browsers play it in MP4); ``summary`` says, per tracked person, in which frames they were and what they
got there, and why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av

from anon_model.output import TREATMENTS
from anon_model.ui.options import RunOptions
from anon_model.ui.wording import count, figure
from anon_model.video import TrackRecord, VideoOutput, anonymize_video
from anon_model.videofile import VIDEO_SUFFIXES

#: The limits the page states: a clip's length, its size (720p, either way up) and its number of frames.
MAX_SECONDS = float(os.environ.get("ANON_APP_MAX_VIDEO_SECONDS", 10))  # a clip holds the pipeline while it runs
MAX_SIZE = (1280, 720)
MAX_FRAMES = int(os.environ.get("ANON_APP_MAX_VIDEO_FRAMES", 300))
LIMITS = (f"at most {MAX_SECONDS:g} seconds, {MAX_SIZE[1]}p ({MAX_SIZE[0]}×{MAX_SIZE[1]}, either way up) and "
          f"{MAX_FRAMES} frames")
#: Audio codecs copied into the MP4 result: those browsers play in MP4 (a clip's other audio is dropped, and said).
MP4_AUDIO = frozenset({"aac", "mp3", "opus"})
NOTE = (f"**Short clips:** {LIMITS} (MP4, MOV, MKV, WebM or AVI). Every face is tracked across the frames and each "
        "person stays one stranger throughout; a face that cannot be anonymized in a frame is obscured there. "
        "The settings on the left apply. **Privacy:** your clip is deleted from the server as soon as it has been "
        "processed, and the anonymized clip within minutes, like the photos' results. "
        "No webcam mode: on 2 CPU cores the pipeline anonymizes about 3 frames per second of 720p video, too slow "
        "for live video.")


class ClipRefused(Exception):
    """A clip the app will not process; the message is one plain sentence for the visitor."""


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's header says: its length in seconds, size (w, h), number of frames and audio codec (or None)."""

    seconds: float
    size: tuple[int, int]
    frames: int
    audio: str | None


def probe_clip(path: str | os.PathLike) -> ClipInfo:
    """The header of the clip at ``path``, read without decoding its frames; ``ClipRefused`` when it is no video or is
    over the stated limits."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ClipRefused(f"This upload is not a clip the app takes: please choose a video file ({_suffixes()}).")
    try:
        with av.open(str(path)) as clip:
            if not clip.streams.video:
                raise ClipRefused("This file has no video track: please choose a video clip.")
            video = clip.streams.video[0]
            size = (video.codec_context.width, video.codec_context.height)
            if video.duration is not None:
                seconds = float(video.duration * video.time_base)
            elif clip.duration is not None:
                seconds = clip.duration / av.time_base
            else:
                raise ClipRefused("This clip's length cannot be read from its header: please re-save it as an MP4.")
            frames = video.frames or round(seconds * float(video.average_rate or 0))
            audio = clip.streams.audio[0].codec_context.codec.canonical_name if clip.streams.audio else None
    except av.FFmpegError as err:
        raise ClipRefused(f"This upload cannot be read as a video ({err.strerror}): please choose another "
                          "clip.") from None
    if seconds > MAX_SECONDS:
        raise ClipRefused(f"This clip is {seconds:.1f} seconds long, longer than the {MAX_SECONDS:g} seconds the app "
                          f"takes: please trim it (clips of {LIMITS}).")
    if max(size) > max(MAX_SIZE) or min(size) > min(MAX_SIZE):
        raise ClipRefused(f"This clip is {size[0]}×{size[1]}, larger than 720p: please scale it down (clips of "
                          f"{LIMITS}).")
    if frames > MAX_FRAMES:
        raise ClipRefused(f"This clip has {frames} frames, more than the {MAX_FRAMES} the app takes: please lower "
                          f"its frame rate or trim it (clips of {LIMITS}).")
    return ClipInfo(seconds, size, frames, audio)


def _suffixes() -> str:
    """'AVI, MKV, MOV, MP4, WEBM': the video files the app takes."""
    return ", ".join(s.removeprefix(".").upper() for s in sorted(VIDEO_SUFFIXES))


def anonymize_clip(pipe, src: str | os.PathLike, folder: str | os.PathLike,
                   options: RunOptions) -> tuple[VideoOutput, ClipInfo]:
    """Anonymize the clip at ``src`` (checked first by ``probe_clip``) into a new folder of its own under ``folder``, as
    ``anonymized.mp4``, with the visitor's ``options``; `src` is only read. Progress goes to a tqdm bar (the app's
    gr.Progress follows it). Raises ``ClipRefused`` or ``AnonModelError`` with a sentence for the visitor."""
    info = probe_clip(src)
    out_dir = Path(tempfile.mkdtemp(prefix="video-", dir=folder))
    try:
        out = anonymize_video(pipe, src, out_dir / "anonymized.mp4", audio=info.audio in MP4_AUDIO,
                              **options.settings())
    except BaseException as err:
        shutil.rmtree(out_dir, ignore_errors=True)
        if isinstance(err, av.FFmpegError):
            raise ClipRefused(f"This clip cannot be read to its end ({err.strerror}): please re-save it and try "
                              "again.") from None
        raise
    return out, info


def summary(out: VideoOutput, info: ClipInfo) -> str:
    """Markdown: the clip (frames, size, rate, audio), then per tracked person the frames they are in, how many of
    those they were anonymized and obscured in and why, and how far their anonymized face is from the original."""
    w, h = out.size
    audio = ("audio kept" if out.audio else "no audio" if info.audio is None else
             f"audio dropped (its {info.audio} sound does not play in browsers in an MP4)")
    head = (f"{out.frames} frames, {w}×{h} at {out.fps:g} fps; {audio}. "
            + (f"**{count(len(out.tracks), 'person', 'people')} tracked:**" if out.tracks else
               "**No face found** in any frame, so nothing was anonymized."))
    return "\n".join([head, *(_person(i + 1, t) for i, t in enumerate(out.tracks))])


def _person(number: int, track: TrackRecord) -> str:
    """'- **Person 1**, in frames 1–6 (6 frames): anonymized in 5, obscured in 1. Why obscured: …'"""
    counts = {t: n for t in TREATMENTS if (n := track.treatments.count(t))}
    line = (f"- **Person {number}**, in frames {track.frames[0] + 1}–{track.frames[-1] + 1} "
            f"({count(len(track.frames), 'frame')}): " + ", ".join(f"{t} in {n}" for t, n in counts.items()) + ".")
    why = _obscured_why(track)
    if why:
        line += f" Why obscured: {why}."
    distances = [d for d, t in zip(track.distances, track.treatments) if t == "anonymized" and d is not None]
    strangers = {tuple(m) for m, t in zip(track.mixtures, track.treatments) if t == "anonymized" and m}
    said = []
    if len(strangers) == 1:
        said.append(f"one stranger throughout (a blend of {count(len(next(iter(strangers))), 'bank face')})")
    if distances:
        said.append(f"at least {figure(min(distances))} from the original person in identity distance, beyond the "
                    "identity check's limit in every such frame")
    return line + (f" Anonymized: {'; '.join(said)}." if said else "")


def _obscured_why(track: TrackRecord) -> str:
    """Why a person was obscured in the frames they were: the face lost for a moment, too small or turned to be
    replaced, or no new face passing the identity check (the new-face step ran exactly when a distance was measured)."""
    reasons = {"lost": 0, "unsuitable": 0, "rejected": 0}
    for found, treatment, distance in zip(track.found, track.treatments, track.distances):
        if treatment == "obscured":
            reasons["lost" if found == "lost" else "unsuitable" if distance is None else "rejected"] += 1
    words = {"lost": "the face was lost for a moment, so its expected place was obscured",
             "unsuitable": "the face was too small, turned too far or not located reliably enough to be replaced",
             "rejected": "no new face was both far enough from the person and natural-looking"}
    return "; ".join(f"in {count(n, 'frame')}, {words[r]}" for r, n in reasons.items() if n)
