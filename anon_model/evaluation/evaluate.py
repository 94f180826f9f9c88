"""The evaluation harness of the paper's §4: run every method on every photo and score the outputs.

Per photo the probe is its largest face (the paper's datasets hold one face per photo). For each output:

* ReID (%): the output face is verified as the same person as the original face, per recognizer and threshold;
* IDS (%): identity intrusion, the output face is verified as someone in the gallery of *other* identities
  (the original faces of every other identity of the dataset);
* detection (%): the detector finds a face overlapping the original box (IoU >= 0.5) in the output;
* SSIM / LPIPS: between the original and output aligned 256 crops (the original face's alignment);
* attributes (%): gender, age group, expression (and ethnicity / makeup when given) kept;
* pose error (degrees) and expression landmark error (NME) of the output's landmarks, over detected faces.

The recognizers embed the output face where the detector found it (its own landmarks) and, when the detector finds
nothing there, at the original face's landmarks (an attacker knows where the face was): obfuscations cannot escape
recognition merely by defeating the detector.

Per-image scores (numbers only, never images or embeddings) are appended to ``REPORT_DIR/cache/<method>.jsonl`` as
they are computed, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from anon_model.evaluation.attributes import AttributeJudge, preserved
from anon_model.evaluation.dataset import Sample
from anon_model.evaluation.methods import Method, PipelineMethod
from anon_model.evaluation.metrics import (MetricUnavailable, box_iou, expression_nme, load_lpips, percent, pose_error,
                                           ssim)
from anon_model.evaluation.recognizers import Recognizer, load_recognizers, threshold_labels
from anon_model.imageio import load_image
from anon_model.perception import Face, FaceAnalyzer
from anon_model.perception.align import warp_to_crop
from anon_model.perception.pose import head_pose

__all__ = ["Judges", "MetricValue", "EvaluationResult", "evaluate", "DETECTION_IOU", "CACHE_VERSION"]

#: A face counts as detected in the output when a detection overlaps the original box this much.
DETECTION_IOU = 0.5
#: Bump when the meaning of a cached record changes.
CACHE_VERSION = 1


@dataclass
class _Location:
    """A face position for the judges: box and 68 landmarks in photo pixels."""

    box: np.ndarray
    landmarks: np.ndarray


@dataclass
class Judges:
    """Everything that scores an output: perception, recognizers, attribute classifiers, LPIPS; and what is missing."""

    analyzer: FaceAnalyzer
    recognizers: list[Recognizer]
    attributes: AttributeJudge
    lpips: Callable[[np.ndarray, np.ndarray], float] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # recognizer / metric name -> why it is missing

    @classmethod
    def load(cls, *, arcface: str | None = None, facenet: str | None = None, adaface: str | None = None,
             expression: str | None = None, attribute_models: dict[str, str] | None = None, download: bool = False,
             device: str = "cpu", analyzer: FaceAnalyzer | None = None) -> "Judges":
        """Load every judge available here (offline: MTCNN + dlib perception, dlib recognizer, age/gender, expression)."""
        recognizers, missing = load_recognizers(arcface=arcface, facenet=facenet, adaface=adaface, download=download,
                                                device=device)
        attributes = AttributeJudge.load(expression=expression, extra=attribute_models, device=device)
        missing.update({f"attr/{k}": v for k, v in attributes.unavailable.items()})
        try:
            lpips = load_lpips(download=download, device=device)
        except MetricUnavailable as exc:
            lpips, missing["lpips"] = None, str(exc)
        return cls(analyzer or FaceAnalyzer(device=device), recognizers, attributes, lpips, missing)

    def fingerprint(self) -> str:
        """What the judges are (cached scores are reused only with the same judges)."""
        parts = [self.analyzer.backends, [(r.name, [t.label for t in r.thresholds]) for r in self.recognizers],
                 self.attributes.attributes, self.lpips is not None, CACHE_VERSION]
        return json.dumps(parts, sort_keys=True, default=str)


@dataclass
class _Reference:
    """An original photo: every face's position (what methods get), its probe face, embeddings and attributes.

    Kept in memory for the whole run, so it holds no pixels: crops are cut again from the photo when needed.
    """

    sample: Sample
    faces: list[_Location]
    probe: _Location
    matrix: np.ndarray  # (2, 3) alignment of the probe face to the 256 crop
    pose: np.ndarray  # (3,) yaw, pitch, roll of the probe face
    embeddings: dict[str, np.ndarray]
    attributes: dict[str, Any]


@dataclass
class MetricValue:
    """One number of the report (None when it could not be computed: `note` says why) and how many faces it covers."""

    value: float | None
    n: int = 0
    note: str = ""


@dataclass
class EvaluationResult:
    """Per method and metric a MetricValue, the methods' order, and facts about the run (dataset, judges, timings)."""

    methods: list[str]
    values: dict[str, dict[str, MetricValue]]
    meta: dict[str, Any]

    def get(self, method: str, metric: str) -> float | None:
        """The value, or None when missing / unavailable."""
        v = self.values.get(method, {}).get(metric)
        return None if v is None else v.value


def _largest(faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def _references(samples: Sequence[Sample], judges: Judges, progress: bool) -> tuple[list[_Reference], list[str]]:
    """Analyze the originals: probe faces with embeddings and attributes; photos without a face are skipped."""
    refs, skipped = [], []
    for sample in tqdm(samples, desc="originals", unit="img", disable=not progress):
        try:
            image = load_image(sample.path)
        except Exception as exc:  # an unreadable photo is reported, not fatal
            skipped.append(f"{sample.key}: {exc}")
            continue
        faces = judges.analyzer(image)
        if not faces:
            skipped.append(f"{sample.key}: no face found")
            continue
        probe = _largest(faces)
        refs.append(_Reference(
            sample, [_Location(f.box, f.landmarks) for f in faces], _Location(probe.box, probe.landmarks),
            probe.matrix, probe.pose, {r.name: r.embed(image, [probe])[0] for r in judges.recognizers},
            judges.attributes(image, [probe])[0]))
    return refs, skipped


def _score(image: np.ndarray, output: np.ndarray, ref: _Reference, gallery: "_Gallery", judges: Judges) -> dict[str, Any]:
    """All per-face scores of one output (numbers only)."""
    probe = ref.probe
    detections = judges.analyzer.detector(output)
    ious = [box_iou(d.box, probe.box) for d in detections]
    best = int(np.argmax(ious)) if ious else -1
    detected = best >= 0 and ious[best] >= DETECTION_IOU
    box = detections[best].box if detected else probe.box
    landmarks = judges.analyzer.landmarker(output, [box])[0]
    where = _Location(box, landmarks) if detected else probe
    record: dict[str, Any] = {"detected": bool(detected), "iou": float(ious[best]) if ious else 0.0, "recognizers": {}}
    for rec in judges.recognizers:
        emb = rec.embed(output, [where])
        others = gallery.embeddings[rec.name][gallery.identities != ref.sample.identity]
        record["recognizers"][rec.name] = {
            "reid": float(rec.score(emb, ref.embeddings[rec.name][None])[0, 0]),
            "ids": rec.thresholds[0].best(rec.score(emb, others)[0]) if len(others) else None,
        }
    size = judges.analyzer.crop_size
    original_crop, output_crop = warp_to_crop(image, ref.matrix, size), warp_to_crop(output, ref.matrix, size)
    record["ssim"] = ssim(original_crop, output_crop)
    record["lpips"] = judges.lpips(original_crop, output_crop) if judges.lpips else None
    found = judges.attributes(output, [where])[0]
    record["attributes"] = preserved(ref.attributes, found, judges.attributes.attributes)
    if detected:
        record["pose_error"] = pose_error(head_pose(landmarks, output.shape), ref.pose)
        record["expression_nme"] = expression_nme(landmarks, probe.landmarks)
    return record


@dataclass
class _Gallery:
    """Every original probe face per recognizer (N,D) and its identity (N,): IDS compares with the other identities."""

    embeddings: dict[str, np.ndarray]
    identities: np.ndarray

    @classmethod
    def of(cls, refs: Sequence[_Reference], judges: Judges) -> "_Gallery":
        embeddings = {rec.name: np.stack([r.embeddings[rec.name] for r in refs]) if refs else np.zeros((0, 1))
                      for rec in judges.recognizers}
        return cls(embeddings, np.array([r.sample.identity for r in refs]))


def _fingerprint(method: Method, seed: int, judges: Judges) -> str:
    return hashlib.sha1(f"{method.describe()}|{seed}|{judges.fingerprint()}".encode()).hexdigest()[:16]


def _read_cache(path: Path, fingerprint: str) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    records = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
        if rec.get("fingerprint") == fingerprint:
            records[rec["key"]] = rec
    return records


def _append_line(path: Path, line: str) -> None:
    """Append one JSON line, first ending a line an interruption left unfinished."""
    with path.open("ab+") as fh:
        if fh.tell() > 0:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        fh.write(line.encode() + b"\n")
        fh.flush()


def evaluate(samples: Sequence[Sample], methods: Sequence[Method], judges: Judges, *, out_dir: str | Path | None = None,
             seed: int = 0, progress: bool = True, resume: bool = True, dataset: str = "") -> EvaluationResult:
    """Run and score every method on every photo; per-image scores are cached under ``out_dir/cache`` when given."""
    start = time.perf_counter()
    refs, skipped = _references(samples, judges, progress)
    gallery = _Gallery.of(refs, judges)
    cache_dir = Path(out_dir) / "cache" if out_dir is not None else None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, list[str]] = {}
    for method in methods:
        fingerprint = _fingerprint(method, seed, judges)
        cache_file = cache_dir / f"{method.name}.jsonl" if cache_dir is not None else None
        cached = _read_cache(cache_file, fingerprint) if (cache_file is not None and resume) else {}
        records[method.name], errors[method.name] = [], []
        for ref in tqdm(refs, desc=method.name, unit="img", disable=not progress):
            sample = ref.sample
            if sample.key in cached:
                records[method.name].append(cached[sample.key])
                continue
            try:
                image = load_image(sample.path)
                t0 = time.perf_counter()
                output = method(image, ref.faces, sample=sample, seed=seed)
                seconds = time.perf_counter() - t0
                if output.shape != image.shape:
                    raise ValueError(f"output is {output.shape}, the photo {image.shape}")
                rec = {"key": sample.key, "fingerprint": fingerprint, "seconds": seconds,
                       **_score(image, output, ref, gallery, judges)}
            except Exception as exc:  # one failing photo must not stop the run; the report counts failures
                errors[method.name].append(f"{sample.key}: {type(exc).__name__}: {exc}")
                continue
            records[method.name].append(rec)
            if cache_file is not None:
                _append_line(cache_file, json.dumps(rec))
    values = {m.name: _aggregate(records[m.name], errors[m.name], judges) for m in methods}
    meta = {
        "dataset": dataset, "photos": len(samples), "faces": len(refs), "skipped": skipped,
        "identities": len({r.sample.identity for r in refs}), "seed": seed,
        "recognizers": {r.name: [t.label for t in r.thresholds] for r in judges.recognizers},
        "unavailable": dict(judges.unavailable), "perception": judges.analyzer.backends,
        "attributes": judges.attributes.attributes, "errors": {k: v for k, v in errors.items() if v},
        "seconds": time.perf_counter() - start,
        "pipeline": _pipeline_notes(methods),
    }
    return EvaluationResult([m.name for m in methods], values, meta)


def _pipeline_notes(methods: Sequence[Method]) -> str:
    """The step-2 description of our pipeline, when it was loaded."""
    for m in methods:
        if isinstance(m, PipelineMethod) and m.provider.loaded is not None:
            return str(getattr(m.provider.loaded, "step2_name", ""))
    return ""


def _mean(values: Sequence[float | None]) -> MetricValue:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return MetricValue(float(np.mean(vals)) if vals else None, len(vals))


def _aggregate(records: Sequence[dict[str, Any]], errors: Sequence[str], judges: Judges) -> dict[str, MetricValue]:
    """Per-image records -> the report's metrics (rates in %, one MetricValue per metric)."""
    n = len(records)
    out: dict[str, MetricValue] = {}
    for rec in judges.recognizers:
        scores = [r["recognizers"][rec.name] for r in records]
        for thr in rec.thresholds:
            reid = [thr.matches(s["reid"]) for s in scores]
            ids = [thr.matches(s["ids"]) for s in scores if s["ids"] is not None]
            out[f"reid/{rec.name}/{thr.label}"] = MetricValue(percent(reid) if reid else None, len(reid))
            out[f"ids/{rec.name}/{thr.label}"] = MetricValue(percent(ids) if ids else None, len(ids),
                                                            "" if ids else "needs a second identity in the dataset")
    for name, reason in judges.unavailable.items():
        for label in threshold_labels(name):
            out[f"reid/{name}/{label}"] = MetricValue(None, 0, reason)
            out[f"ids/{name}/{label}"] = MetricValue(None, 0, reason)
    out["detection"] = MetricValue(percent([r["detected"] for r in records]) if n else None, n)
    out["ssim"] = _mean([r["ssim"] for r in records])
    out["lpips"] = _mean([r["lpips"] for r in records]) if judges.lpips else MetricValue(None, 0, judges.unavailable.get("lpips", ""))
    for name in judges.attributes.attributes:
        flags = [r["attributes"][name] for r in records]
        out[f"attr/{name}"] = MetricValue(percent(flags) if flags else None, len(flags))
    for name, reason in judges.unavailable.items():
        if name.startswith("attr/"):
            out[name] = MetricValue(None, 0, reason)
    kept = [out[f"attr/{a}"].value for a in judges.attributes.attributes if out[f"attr/{a}"].value is not None]
    out["attr/mean"] = MetricValue(float(np.mean(kept)) if kept else None, n,
                                   f"mean of {', '.join(judges.attributes.attributes)}")
    out["pose_error"] = _mean([r.get("pose_error") for r in records])
    out["expression_nme"] = _mean([r.get("expression_nme") for r in records])
    out["seconds_per_image"] = _mean([r["seconds"] for r in records])
    out["failures"] = MetricValue(float(len(errors)), len(errors) + n, errors[0] if errors else "")
    return out
