"""The audit manifest of a batch run: ``OUTDIR/manifest.jsonl``, what was done to every face, never the face itself.

One JSON line per face (``"record": "face"``: source, box, treatment and why, the guard's distance and threshold, the
delegates' bank indices, with ``--keep`` the keep decision, seed, pipeline id and version), one per tracked person of a video (``"track"``), and after
them one line per file (``"record": "file"``: done or failed, face counts, output size). No pixels, landmarks or
identity embeddings: a manifest must not become a leak.

Each process appends to its own part (``OUTDIR/.manifest/part-<rank>.jsonl``), a file's lines in one write with the
file line last, so a run killed mid-write leaves at most one incomplete file, which is redone. The main process merges
the parts into ``manifest.jsonl`` (a file done again replaces its earlier lines). A file is finished when its file line
says done and its output is there with the size recorded.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from anon_model.imageio import atomic_write

if TYPE_CHECKING:
    from anon_model.output import FaceRecord
    from anon_model.video import TrackRecord

__all__ = ["MANIFEST", "ManifestPart", "face_entry", "track_entry", "file_entry", "read_groups", "merge", "finished"]

MANIFEST = "manifest.jsonl"
PARTS = ".manifest"


def face_entry(record: FaceRecord, index: int) -> dict[str, Any]:
    """What the manifest (and ``--json``) says about face ``index`` of a photo: where, what it got and why, the guard's
    verdict, the delegates drawn (bank indices) and, with ``--keep``, the keep decision (kept or not, the nearest
    reference, both recognizers' distances to it)."""
    guard = None
    if record.identity_distance is not None:
        guard = {"distance": round(float(record.identity_distance), 4),
                 "threshold": round(float(record.identity_threshold), 4),
                 "greyscale": record.greyscale, "passed": record.guard_passed, "attempts": record.attempts}
    keep = None if record.keep is None else {
        "kept": record.keep.kept, "reference": record.keep.reference,
        "dlib": None if record.keep.dlib_distance is None else round(record.keep.dlib_distance, 4),
        "facenet_casia": None if record.keep.casia_distance is None else round(record.keep.casia_distance, 4)}
    return {"face": index, "box": [round(float(v), 1) for v in record.box], "score": round(float(record.score), 4),
            "treatment": record.treatment, "reason": record.treatment_reason, "guard": guard,
            "delegates": {"appearance": [int(i) for i in record.delegate_mixture],
                          "geometry": None if record.geometry_delegate is None else int(record.geometry_delegate)},
            "keep": keep}


def track_entry(track: TrackRecord) -> dict[str, Any]:
    """What the manifest says about one tracked person of a video: its seed, first box, frames per treatment."""
    return {"track": track.track, "track_seed": track.seed, "frames": len(track.frames),
            "treatments": dict(Counter(track.treatments)),
            "box": [round(float(v), 1) for v in track.boxes[0]] if track.boxes else None}


def file_entry(source: str, output: str, *, status: str, counts: dict[str, int] | None = None, error: str = "",
               size: int | None = None, kind: str = "image", settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The line that closes a file's lines: done (with the output's size in bytes) or failed (with the error), and
    the run's settings (a rerun with other settings redoes the file)."""
    return {"record": "file", "source": source, "output": output, "kind": kind, "status": status,
            "counts": counts or {}, "error": error, "bytes": size, "settings": settings or {}}


class ManifestPart:
    """This process's part of the manifest, appended to by any thread (a file's lines in one write, then fsync)."""

    def __init__(self, outdir: str | os.PathLike, rank: int) -> None:
        folder = Path(outdir) / PARTS
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"part-{rank}.jsonl"
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None

    def __enter__(self) -> "ManifestPart":
        self._fh = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()

    def add(self, lines: list[dict[str, Any]]) -> None:
        """Append one file's lines (the file line last) so that they reach the disk together."""
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        with self._lock:
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of one file; a line cut short by a kill (not JSON) is left out."""
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict):
                yield line


def _groups(lines: Iterable[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(output, its lines) for every file whose file line came; lines of a file cut off before it are dropped."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        output = line.get("output")
        if not isinstance(output, str):
            continue
        pending.setdefault(output, []).append(line)
        if line.get("record") == "file":
            yield output, pending.pop(output)


def read_groups(outdir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Every file's lines by output name: ``manifest.jsonl``, then the parts not merged yet (a later run's lines for
    a file replace the earlier ones)."""
    outdir = Path(outdir)
    sources = [outdir / MANIFEST] + sorted((outdir / PARTS).glob("part-*.jsonl"))
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sources:
        if path.is_file():
            groups.update(_groups(_lines(path)))
    return groups


def merge(outdir: str | os.PathLike) -> Path:
    """Fold the parts into ``manifest.jsonl`` (written atomically, files in output-name order) and remove them."""
    outdir = Path(outdir)
    parts = outdir / PARTS
    if not parts.is_dir():
        return outdir / MANIFEST
    groups = read_groups(outdir)
    with atomic_write(outdir / MANIFEST, "w") as fh:
        for output in sorted(groups):
            fh.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in groups[output])
    shutil.rmtree(parts)
    return outdir / MANIFEST


def finished(outdir: str | os.PathLike, settings: dict[str, Any] | None = None) -> set[str]:
    """Output names (relative to ``outdir``) whose file is done: recorded as done (with ``settings``, when given), and
    there with the recorded size."""
    outdir = Path(outdir)
    done = set()
    for output, lines in read_groups(outdir).items():
        line = lines[-1]
        path = outdir / output
        if (line.get("status") == "done" and (settings is None or line.get("settings") == settings)
                and path.is_file() and path.stat().st_size == line.get("bytes")):
            done.add(output)
    return done
