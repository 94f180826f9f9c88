"""``anon-model report OUTDIR``: what a batch run did, read from its manifest (parts not merged yet included).

Files done and failed, faces per treatment and why faces were not anonymized, the smallest face, the guard's closest
call among anonymized faces, the pipelines used and the failed files with their errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from anon_model.batch.manifest import MANIFEST, PARTS, read_groups

__all__ = ["summarize", "add_report_arguments", "run_report"]


def summarize(outdir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of ``outdir`` summed up (JSON-ready)."""
    groups = read_groups(outdir)
    closing = [lines[-1] for lines in groups.values()]
    faces = [line for lines in groups.values() for line in lines if line.get("record") == "face"]
    tracks = [line for lines in groups.values() for line in lines if line.get("record") == "track"]
    smallest = min(faces, key=_side, default=None)
    guarded = [f for f in faces if f.get("treatment") == "anonymized" and f.get("guard")]
    closest = min(guarded, key=lambda f: f["guard"]["distance"] - f["guard"]["threshold"], default=None)
    video_frames: Counter = Counter()
    for track in tracks:
        video_frames.update(track.get("treatments", {}))
    return {
        "files": len(closing),
        "done": sum(c.get("status") == "done" for c in closing),
        "failed": sum(c.get("status") == "failed" for c in closing),
        "videos": sum(c.get("kind") == "video" for c in closing),
        "faces": len(faces),
        "treatments": dict(Counter(f.get("treatment") for f in faces)),
        "reasons": dict(Counter(f["reason"].split(" (")[0] for f in faces if f.get("reason")).most_common()),
        "video_tracks": len(tracks),
        "video_frames": dict(video_frames),
        "smallest_face": None if smallest is None else
        {"source": smallest["source"], "face": smallest["face"], "side_px": round(_side(smallest), 1)},
        "closest_guard": None if closest is None else
        {"source": closest["source"], "face": closest["face"], **closest["guard"]},
        "pipelines": sorted({json.dumps(f.get("pipeline"), sort_keys=True) for f in faces + tracks}),
        "failures": [{"source": c.get("source"), "error": c.get("error")} for c in closing
                     if c.get("status") == "failed"],
    }


def _side(face: dict[str, Any]) -> float:
    """The shorter side of a face's box, in pixels."""
    x0, y0, x1, y1 = face["box"]
    return min(x1 - x0, y1 - y0)


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anon-model report``."""
    parser.add_argument("outdir", metavar="OUTDIR", help="the output folder of an anonymize run (holds manifest.jsonl)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run_report(args: argparse.Namespace) -> int:
    """Print the summary of OUTDIR's manifest; exit code 1 when a file failed, 2 when there is no manifest."""
    outdir = Path(args.outdir)
    if not (outdir / MANIFEST).is_file() and not (outdir / PARTS).is_dir():
        print(f"error: {outdir} holds no {MANIFEST}: not the output folder of an anonymize run", file=sys.stderr)
        return 2
    s = summarize(outdir)
    if args.json:
        print(json.dumps(s))
        return 1 if s["failed"] else 0
    print(f"{outdir}: {s['files']} file(s): {s['done']} done, {s['failed']} failed ({s['videos']} video(s))")
    print(f"faces in photos: {s['faces']}" + "".join(f"; {n} {t}" for t, n in s["treatments"].items()))
    for reason, n in s["reasons"].items():
        print(f"  {n} x {reason}")
    if s["video_tracks"]:
        print(f"videos: {s['video_tracks']} tracked face(s); frames per treatment: "
              + ", ".join(f"{n} {t}" for t, n in s["video_frames"].items()))
    if s["smallest_face"]:
        f = s["smallest_face"]
        print(f"smallest face: {f['side_px']:.0f} px ({f['source']}, face {f['face'] + 1})")
    if s["closest_guard"]:
        g = s["closest_guard"]
        print(f"closest call of the identity guard among anonymized faces: distance {g['distance']:.3f} "
              f"(threshold {g['threshold']:.3f}; {g['source']}, face {g['face'] + 1})")
    for pipeline in s["pipelines"]:
        print(f"pipeline: {pipeline}")
    for failure in s["failures"]:
        print(f"failed: {failure['error']}")
    return 1 if s["failed"] else 0
