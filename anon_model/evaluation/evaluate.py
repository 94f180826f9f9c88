"""The evaluation harness of the paper's §4: run every method on every photo and score the outputs.

The probes: a labelled photo's largest face (the paper's datasets hold one face per photo, and the label names it);
every face of an unlabelled photo (``Sample.identity`` None: a group photo, photos the project did not tune on).
For each output and probe face:

* ReID (%): the output face is verified as the same person as the same face in the original (needs no labels);
* IDS (%): identity intrusion, the output face is verified as someone in the gallery of *other* identities
  (the original probe faces of every other labelled identity of the dataset; n/a without labels);
* intrusion into the bank (%): the output face comes nearer to a person of our pipeline's delegate bank than the
  limit calibrated on the bank for that judge (how near its members come to their nearest other person, as the
  guard's rule), other than the bank persons the same judge already finds that near the original face. Measured for
  every method (baselines too);
* treatment (%): what our pipeline says it did to the face (anonymized, obscured, failed, unchanged), or "missed"
  when it reported no face there; n/a for methods that report nothing (baselines, external folders);
* detection (%): the detector finds a face overlapping the original box (IoU >= 0.5) in the output; once with the
  analyzer's detector (MTCNN, the pipeline's own) and once with dlib's HOG detector (which the pipeline does not use),
  against the original's landmark box; HOG's score there too, on the output and on the original;
* naturalness (``naturalness.py``), over the region the method replaced (our pipeline: S-hat_x's outline, anonymized
  faces only; blur, pixelate, mask: their box; others: the original face's outline): seam strength against the
  original's edges there, the colour step (CIEDE2000) between a band inside the border and the band just outside it
  on the output and on the original, and the landmark error of the output against S-hat_x (our pipeline only);
* SSIM: between the original and output aligned 256 crops (the original face's alignment); background SSIM: over the
  photo outside every face's region (box and landmarks widened by 20%, as the fallback covers); LPIPS on the crops;
* attributes (%): gender and expression kept, age kept within ``AGE_TOLERANCE`` years (and ethnicity / makeup when
  given);
* pose error (degrees) and expression error (jaw + mouth landmark NME) of the output's landmarks, over detected faces.

The recognizers embed the output face where the detector found it (its own landmarks) and, when the detector finds
nothing there, at the original face's landmarks (an attacker knows where the face was): obfuscations cannot escape
recognition merely by defeating the detector.

Per-image scores (numbers only, never images or embeddings) are appended to ``REPORT_DIR/cache/<method>.jsonl`` as
they are computed, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from anon_model.bank.calibrate import PERCENTILE
from anon_model.evaluation.attributes import AttributeJudge, landmark_box, preserved
from anon_model.evaluation.dataset import Sample
from anon_model.evaluation.methods import Handled, Method, PipelineMethod
from anon_model.evaluation.metrics import (DETECTION_IOU, HOG_FLOOR, MetricUnavailable, background_ssim,
                                           expression_nme, hog_found, hog_score, load_hog_detector, load_lpips, percent,
                                           pose_error, ssim)
from anon_model.evaluation.naturalness import colour_added, measure, replaced_region
from anon_model.evaluation.recognizers import Recognizer, Threshold, load_recognizers, threshold_labels
from anon_model.fallback import EXPAND, box_iou, face_region
from anon_model.imageio import load_image
from anon_model.output import TREATMENTS
from anon_model.perception import Face, FaceAnalyzer
from anon_model.perception.align import warp_to_crop
from anon_model.perception.pose import head_pose

__all__ = ["Judges", "MetricValue", "EvaluationResult", "evaluate", "BankJudge", "calibrated_limit", "CALIBRATED",
           "DETECTION_IOU", "CACHE_VERSION",
           "FACE_OUTCOMES"]

#: Bump when the meaning of a cached record changes.
CACHE_VERSION = 4
#: What our pipeline can report per face, plus "missed" (it reported no face where the original face is).
FACE_OUTCOMES = (*TREATMENTS, "missed")


@dataclass
class _Location:
    """A face position for the judges: box and 68 landmarks in photo pixels."""

    box: np.ndarray
    landmarks: np.ndarray


@dataclass
class Judges:
    """Everything that scores an output: perception, recognizers, attribute classifiers, LPIPS, dlib's HOG detector;
    and what is missing."""

    analyzer: FaceAnalyzer
    recognizers: list[Recognizer]
    attributes: AttributeJudge
    lpips: Callable[[np.ndarray, np.ndarray], float] | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # recognizer / metric name -> why it is missing
    hog: Callable[[np.ndarray], np.ndarray] | None = None

    @classmethod
    def load(cls, *, arcface: str | None = None, facenet: str | None = None, adaface: str | None = None,
             facenet_casia: str | None = None, expression: str | None = None,
             attribute_models: dict[str, str] | None = None, download: bool = False, device: str = "cpu",
             analyzer: FaceAnalyzer | None = None) -> "Judges":
        """Load every judge available here (offline: MTCNN + dlib perception, the dlib and FaceNet-CASIA recognizers,
        age/gender, expression, dlib HOG detection)."""
        recognizers, missing = load_recognizers(arcface=arcface, facenet=facenet, adaface=adaface,
                                                facenet_casia=facenet_casia, download=download, device=device)
        attributes = AttributeJudge.load(expression=expression, extra=attribute_models, device=device)
        missing.update({f"attr/{k}": v for k, v in attributes.unavailable.items()})
        try:
            lpips = load_lpips(download=download, device=device)
        except MetricUnavailable as exc:
            lpips, missing["lpips"] = None, str(exc)
        return cls(analyzer or FaceAnalyzer(device=device), recognizers, attributes, lpips, missing, load_hog_detector())

    def fingerprint(self) -> str:
        """What the judges are (cached scores are reused only with the same judges)."""
        parts = [self.analyzer.backends, [(r.name, [t.label for t in r.thresholds]) for r in self.recognizers],
                 self.attributes.attributes, self.lpips is not None, self.hog is not None, CACHE_VERSION]
        return json.dumps(parts, sort_keys=True, default=str)


@dataclass
class BankJudge:
    """Our pipeline's delegate bank as the judges see it: per recognizer the embeddings of its faces (N,D) and the
    intrusion limit calibrated on them (``limits``), and per face its person (N,) (``DelegateBank.identities``)."""

    embeddings: dict[str, np.ndarray]
    identities: np.ndarray
    digest: str = ""
    limits: dict[str, Threshold] = field(default_factory=dict)

    @classmethod
    def of(cls, bank, judges: Judges) -> "BankJudge":
        """Embed every bank crop with every recognizer of `judges` (at the bank's own landmarks), and calibrate each
        one's limit on them (``calibrated_limit``)."""
        size = bank.crop_size
        crops = [bank.crop(i, size) for i in range(len(bank))]
        places = [_Location(landmark_box(pts), pts) for pts in bank.crop_landmarks(list(range(len(bank))), size).numpy()]
        embeddings = {rec.name: np.concatenate([rec.embed(c, [p]) for c, p in zip(crops, places)])
                      for rec in judges.recognizers}
        digest = hashlib.sha1(bank.embeddings.numpy().tobytes()).hexdigest()[:12]
        identities = bank.identities().numpy()
        limits = {rec.name: calibrated_limit(rec, embeddings[rec.name], identities) for rec in judges.recognizers}
        return cls(embeddings, identities, digest, limits)

    def closest(self, rec: Recognizer, embedding: np.ndarray) -> np.ndarray:
        """Per bank identity, the score most in favour of `embedding` being that person (I,)."""
        scores = rec.score(embedding, self.embeddings[rec.name])[0]
        return np.array([rec.thresholds[0].best(scores[self.identities == i]) for i in np.unique(self.identities)])

    @staticmethod
    def intrudes(threshold: Threshold, original: np.ndarray, output: np.ndarray) -> bool:
        """Whether the output is verified as a bank identity the original is not (both per identity, from ``closest``)."""
        return bool(np.any(threshold.matches(output) & ~threshold.matches(original)))


@dataclass
class _Probe:
    """A face scored on every output: where it is, its alignment, pose, identity label, embeddings and attributes."""

    where: _Location
    identity: str | None
    matrix: np.ndarray  # (2, 3) alignment to the 256 crop
    pose: np.ndarray  # (3,) yaw, pitch, roll
    embeddings: dict[str, np.ndarray]
    attributes: dict[str, Any]
    bank: dict[str, np.ndarray]  # per recognizer: the original's closest scores per bank identity
    hog: float | None = None  # dlib's HOG score of the original face (``hog_score``; None: none above ``HOG_FLOOR``)


@dataclass
class _Reference:
    """An original photo: every face's position (what methods get) and its probe faces.

    Kept in memory for the whole run, so it holds no pixels: crops are cut again from the photo when needed.
    """

    sample: Sample
    faces: list[_Location]
    probes: list[_Probe]


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


#: The label of the intrusion rate: judged at the limit calibrated on the bank, not at a recognizer's threshold.
CALIBRATED = "calibrated"


def calibrated_limit(rec: Recognizer, embeddings: np.ndarray, identities: np.ndarray) -> Threshold:
    """How close to a bank person is too close for ``rec``, from the bank itself: the score its members reach with
    their nearest other person, at ``bank.calibrate.PERCENTILE`` (the guard's rule; with hundreds of people a plain
    verification threshold calls most strangers someone of the bank). A bank of one person: the recognizer's
    threshold."""
    kind = rec.thresholds[0].kind
    if len(np.unique(identities)) < 2:
        return rec.thresholds[0]
    scores = np.array(rec.score(embeddings, embeddings), np.float64)
    scores[identities[:, None] == identities[None]] = np.inf if kind == "distance" else -np.inf
    nearest = scores.min(1) if kind == "distance" else scores.max(1)
    share = PERCENTILE if kind == "distance" else 100.0 - PERCENTILE
    return Threshold(float(np.percentile(nearest, share)), kind)


def _references(samples: Sequence[Sample], judges: Judges, bank: BankJudge | None,
                progress: bool) -> tuple[list[_Reference], list[str]]:
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
        chosen = faces if sample.identity is None else [_largest(faces)]
        embeddings = {r.name: r.embed(image, chosen) for r in judges.recognizers}
        attributes = judges.attributes(image, chosen)
        hog = judges.hog(image) if judges.hog else None
        probes = [_Probe(_Location(f.box, f.landmarks), sample.identity, f.matrix, f.pose,
                         {name: e[i] for name, e in embeddings.items()}, attributes[i],
                         {r.name: bank.closest(r, embeddings[r.name][i][None]) for r in judges.recognizers} if bank else {},
                         hog_score(hog, f.landmarks) if hog is not None else None)
                  for i, f in enumerate(chosen)]
        refs.append(_Reference(sample, [_Location(f.box, f.landmarks) for f in faces], probes))
    return refs, skipped


@dataclass
class _Replaced:
    """What a method did to one probe face: its treatment (None: the method reports none), the bool (H, W) region it
    put something new in (None: none) and the landmarks S-hat_x the new face was given (None: not said)."""

    treatment: str | None
    region: np.ndarray | None
    intended: np.ndarray | None = None


def _replaced(method: Method, shape: tuple[int, ...], where: _Location, handled: Handled) -> _Replaced:
    """What `method` reported for the face at `where` ("missed" when it reported none there); when it reports nothing,
    the region it rewrites by construction (``Method.replaced``)."""
    if handled is None:
        return _Replaced(None, method.replaced(shape, where))
    ious = [box_iou(b, where.box) for b, *_ in handled]
    best = int(np.argmax(ious)) if ious else -1
    if best < 0 or ious[best] < DETECTION_IOU:
        return _Replaced("missed", None)
    _, treatment, s_hat = handled[best]
    return _Replaced(treatment, None if s_hat is None else replaced_region(s_hat, shape), s_hat)


def _score_photo(image: np.ndarray, output: np.ndarray, method: Method, handled: Handled, ref: _Reference,
                 gallery: "_Gallery", bank: BankJudge | None, judges: Judges) -> dict[str, Any]:
    """All scores of one output: the background's SSIM and each probe face's scores (numbers only)."""
    detections = judges.analyzer.detector(output)
    hog = judges.hog(output) if judges.hog else None
    regions = [face_region(np.r_[np.minimum(f.box[:2], f.landmarks.min(0)), np.maximum(f.box[2:], f.landmarks.max(0))],
                           image.shape, EXPAND) for f in ref.faces]
    faces = []
    for probe in ref.probes:
        replaced = _replaced(method, image.shape, probe.where, handled)
        face = _score_face(image, output, probe, detections, gallery, bank, judges, replaced)
        face["treatment"] = replaced.treatment
        if hog is not None:
            face["hog_score"], face["hog_score_original"] = hog_score(hog, probe.where.landmarks), probe.hog
        faces.append(face)
    return {"background_ssim": background_ssim(image, output, regions), "faces": faces}


def _score_face(image: np.ndarray, output: np.ndarray, probe: _Probe, detections: Sequence, gallery: "_Gallery",
                bank: BankJudge | None, judges: Judges, replaced: _Replaced) -> dict[str, Any]:
    """The per-face scores of one output: detection, ReID, IDS, intrusion into the bank, SSIM, attributes, landmarks,
    and the naturalness of what replaced the face (``naturalness.measure``; None where nothing did)."""
    ious = [box_iou(d.box, probe.where.box) for d in detections]
    best = int(np.argmax(ious)) if ious else -1
    detected = best >= 0 and ious[best] >= DETECTION_IOU
    box = detections[best].box if detected else probe.where.box
    landmarks = judges.analyzer.landmarker(output, [box])[0]
    where = _Location(box, landmarks) if detected else probe.where
    record: dict[str, Any] = {"detected": bool(detected), "iou": float(ious[best]) if ious else 0.0, "recognizers": {}}
    for rec in judges.recognizers:
        emb = rec.embed(output, [where])
        others = gallery.others(rec.name, probe.identity)
        closest = bank.closest(rec, emb) if bank else None
        record["recognizers"][rec.name] = {
            "reid": float(rec.score(emb, probe.embeddings[rec.name][None])[0, 0]),
            "ids": rec.thresholds[0].best(rec.score(emb, others)[0]) if len(others) else None,
            "bank": None if closest is None else BankJudge.intrudes(bank.limits[rec.name], probe.bank[rec.name],
                                                                    closest),
        }
    size = judges.analyzer.crop_size
    original_crop, output_crop = warp_to_crop(image, probe.matrix, size), warp_to_crop(output, probe.matrix, size)
    record["ssim"] = ssim(original_crop, output_crop)
    record["lpips"] = judges.lpips(original_crop, output_crop) if judges.lpips else None
    found = judges.attributes(output, [where])[0]
    record["attributes"] = preserved(probe.attributes, found, judges.attributes.attributes)
    if detected:
        record["pose_error"] = pose_error(head_pose(landmarks, output.shape), probe.pose)
        record["expression_nme"] = expression_nme(landmarks, probe.where.landmarks)
    if replaced.region is not None:
        record.update(measure(image, output, replaced.region, found=landmarks if detected else None,
                              intended=replaced.intended))
    return record


@dataclass
class _Gallery:
    """Every labelled original probe face per recognizer (N,D) and its identity (N,): IDS compares with the other
    identities."""

    embeddings: dict[str, np.ndarray]
    identities: np.ndarray

    @classmethod
    def of(cls, refs: Sequence[_Reference], judges: Judges) -> "_Gallery":
        probes = [p for r in refs for p in r.probes if p.identity is not None]
        embeddings = {rec.name: np.stack([p.embeddings[rec.name] for p in probes]) if probes else np.zeros((0, 1))
                      for rec in judges.recognizers}
        return cls(embeddings, np.array([p.identity for p in probes]))

    def others(self, recognizer: str, identity: str | None) -> np.ndarray:
        """The gallery faces of identities other than `identity` (none for an unlabelled face)."""
        if identity is None:
            return self.embeddings[recognizer][:0]
        return self.embeddings[recognizer][self.identities != identity]


def _fingerprint(method: Method, seed: int, judges: Judges, bank: BankJudge | None = None) -> str:
    key = f"{method.describe()}|{seed}|{judges.fingerprint()}|{bank.digest if bank else ''}|{_code_digest()}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


@functools.cache
def _code_digest() -> str:
    """A digest of anon_model's source: cached scores are reused only with the code that made them."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


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
             seed: int = 0, progress: bool = True, resume: bool = True, dataset: str = "", bank=None) -> EvaluationResult:
    """Run and score every method on every photo; per-image scores are cached under ``out_dir/cache`` when given.

    `bank`: our pipeline's ``DelegateBank``, for the intrusion into it (n/a when not given)."""
    start = time.perf_counter()
    bank_judge = BankJudge.of(bank, judges) if bank is not None else None
    refs, skipped = _references(samples, judges, bank_judge, progress)
    gallery = _Gallery.of(refs, judges)
    cache_dir = Path(out_dir) / "cache" if out_dir is not None else None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, list[str]] = {}
    reused = 0
    for method in methods:
        fingerprint = _fingerprint(method, seed, judges, bank_judge)
        cache_file = cache_dir / f"{method.name}.jsonl" if cache_dir is not None else None
        cached = _read_cache(cache_file, fingerprint) if (cache_file is not None and resume) else {}
        records[method.name], errors[method.name] = [], []
        for ref in tqdm(refs, desc=method.name, unit="img", disable=not progress):
            sample = ref.sample
            if sample.key in cached:
                records[method.name].append(cached[sample.key])
                reused += 1
                continue
            try:
                image = load_image(sample.path)
                t0 = time.perf_counter()
                output, handled = method.run(image, ref.faces, sample=sample, seed=seed)
                seconds = time.perf_counter() - t0
                if output.shape != image.shape:
                    raise ValueError(f"output is {output.shape}, the photo {image.shape}")
                rec = {"key": sample.key, "fingerprint": fingerprint, "seconds": seconds,
                       **_score_photo(image, output, method, handled, ref, gallery, bank_judge, judges)}
            except Exception as exc:  # one failing photo must not stop the run; the report counts failures
                errors[method.name].append(f"{sample.key}: {type(exc).__name__}: {exc}")
                continue
            records[method.name].append(rec)
            if cache_file is not None:
                _append_line(cache_file, json.dumps(rec))
    values = {m.name: _aggregate(records[m.name], errors[m.name], judges) for m in methods}
    labelled = {p.identity for r in refs for p in r.probes if p.identity is not None}
    meta = {
        "dataset": dataset, "photos": len(samples), "faces": sum(len(r.probes) for r in refs), "skipped": skipped,
        "identities": len(labelled), "unlabelled_photos": sum(r.sample.identity is None for r in refs), "seed": seed,
        "recognizers": {r.name: [t.label for t in r.thresholds] for r in judges.recognizers},
        "unavailable": dict(judges.unavailable), "perception": judges.analyzer.backends,
        "attributes": judges.attributes.attributes, "errors": {k: v for k, v in errors.items() if v},
        "seconds": time.perf_counter() - start, "reused": reused, "pipeline": _pipeline_notes(methods),
        "bank": None if bank_judge is None else {"faces": len(bank_judge.identities),
                                                 "identities": len(np.unique(bank_judge.identities))},
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


def _rate(flags: Sequence[bool | None], why_none: str = "") -> MetricValue:
    """Share of True in % over the faces where the flag is known (None when there is none: `why_none` says why)."""
    known = [f for f in flags if f is not None]
    return MetricValue(percent(known), len(known)) if known else MetricValue(None, 0, why_none)


def _spread(name: str, values: Sequence[float | None], why_none: str) -> dict[str, MetricValue]:
    """``name/median`` and ``name/p90`` (90th percentile) of the known values (None when there is none)."""
    known = [v for v in values if v is not None]
    if not known:
        return {f"{name}/{q}": MetricValue(None, 0, why_none) for q in ("median", "p90")}
    return {f"{name}/median": MetricValue(float(np.median(known)), len(known)),
            f"{name}/p90": MetricValue(float(np.percentile(known, 90)), len(known))}


def _naturalness(faces: Sequence[dict[str, Any]]) -> dict[str, MetricValue]:
    """The naturalness metrics: dlib's HOG on outputs and originals (found %, median score with a face it does not
    score counted at ``HOG_FLOOR``), seam strength, colour step added and as is, landmark error against S-hat_x."""
    no_hog, nothing = "dlib's HOG detector not loaded", "no region was replaced by a new face"
    out: dict[str, MetricValue] = {}
    for key, suffix in (("hog_score", ""), ("hog_score_original", "/originals")):
        scores = [f[key] for f in faces if key in f]
        out[f"detection_hog{suffix}"] = _rate([hog_found(s) for s in scores], no_hog)
        out.update(_spread(f"hog_score{suffix}", [HOG_FLOOR if s is None else s for s in scores], no_hog))
    out.update(_spread("seam", [f.get("seam") for f in faces], nothing))
    out.update(_spread("colour_added", [colour_added(f) for f in faces], nothing))
    out.update(_spread("colour_step", [f.get("colour_step") for f in faces], nothing))
    out.update(_spread("colour_step/originals", [f.get("colour_step_original") for f in faces], nothing))
    out.update(_spread("landmark_error", [f.get("landmark_error") for f in faces],
                       "the method gave no intended landmarks (S-hat_x), or no face was detected in the output"))
    return out


def _aggregate(photos: Sequence[dict[str, Any]], errors: Sequence[str], judges: Judges) -> dict[str, MetricValue]:
    """Per-image records -> the report's metrics (rates in % over probe faces, one MetricValue per metric)."""
    faces = [f for p in photos for f in p["faces"]]
    out: dict[str, MetricValue] = {}
    for rec in judges.recognizers:
        scores = [f["recognizers"][rec.name] for f in faces]
        for thr in rec.thresholds:
            out[f"reid/{rec.name}/{thr.label}"] = _rate([bool(thr.matches(s["reid"])) for s in scores])
            out[f"ids/{rec.name}/{thr.label}"] = _rate(
                [None if s["ids"] is None else bool(thr.matches(s["ids"])) for s in scores],
                "needs identity labels with a second identity in the dataset")
        out[f"intrusion/{rec.name}/{CALIBRATED}"] = _rate([s["bank"] for s in scores], "no delegate bank given")
    for name, reason in judges.unavailable.items():
        for label in threshold_labels(name):
            for kind in ("reid", "ids"):
                out[f"{kind}/{name}/{label}"] = MetricValue(None, 0, reason)
        out[f"intrusion/{name}/{CALIBRATED}"] = MetricValue(None, 0, reason)
    treatments = [f["treatment"] for f in faces]
    for outcome in FACE_OUTCOMES:
        out[f"treatment/{outcome}"] = _rate([None if t is None else t == outcome for t in treatments],
                                            "n/a: the method reports no per-face treatment")
    out["detection"] = _rate([f["detected"] for f in faces])
    out.update(_naturalness(faces))
    out["ssim"] = _mean([f["ssim"] for f in faces])
    out["background_ssim"] = _mean([p["background_ssim"] for p in photos])
    out["lpips"] = _mean([f["lpips"] for f in faces]) if judges.lpips else MetricValue(None, 0, judges.unavailable.get("lpips", ""))
    for name in judges.attributes.attributes:
        out[f"attr/{name}"] = _rate([f["attributes"][name] for f in faces])
    for name, reason in judges.unavailable.items():
        if name.startswith("attr/"):
            out[name] = MetricValue(None, 0, reason)
    kept = [out[f"attr/{a}"].value for a in judges.attributes.attributes if out[f"attr/{a}"].value is not None]
    out["attr/mean"] = MetricValue(float(np.mean(kept)) if kept else None, len(faces),
                                   f"mean of {', '.join(judges.attributes.attributes)}")
    out["pose_error"] = _mean([f.get("pose_error") for f in faces])
    out["expression_nme"] = _mean([f.get("expression_nme") for f in faces])
    out["seconds_per_image"] = _mean([p["seconds"] for p in photos])
    out["failures"] = MetricValue(float(len(errors)), len(errors) + len(photos), errors[0] if errors else "")
    return out
