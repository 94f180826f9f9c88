"""What AnonPipeline returns: the anonymized photo and, per face, everything needed to show why.

``face_record`` builds a face's record once, after paste-back, from what the stages returned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from anon_model.perception.align import invert, transform_points

if TYPE_CHECKING:
    from anon_model.guard import GuardOutcome
    from anon_model.ifa import IFAResult
    from anon_model.keep import KeepDecision
    from anon_model.perception.face import Face
    from anon_model.vca import DelegateDraw


#: What a face can get (``FaceRecord.treatment``).
TREATMENTS = ("anonymized", "obscured", "unchanged", "failed", "kept")


@dataclass(frozen=True)
class GuardCheck:
    """One distance the identity guard measured for a face's kept try and the limit it had to reach, with the
    limit's parts named (what the app shows beside a face's outcome, so no reader has to guess where a limit comes
    from)."""

    against: str  # whom the result was compared with: "original" or "bank" (the nearest bank identity)
    distance: float  # in the identity network's metric
    limit: float  # the smallest distance that passes
    parts: tuple[tuple[str, float], ...]  # what the limit adds up to, e.g. (("...threshold", 0.6), ("...margin", 0.1))
    bank_index: int | None = None  # the nearest bank face (``against == "bank"``)
    by: str = "dlib"  # the recognizer that measured it

    @property
    def passed(self) -> bool:
        """Far enough."""
        return self.distance >= self.limit


@dataclass
class FaceRecord:
    """One face: where it was, what step 1 decided (explanations) and the synthesized crop.

    Coordinates named `*_crop` are in the 256x256 aligned crop; the others are in the photo.
    """

    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (68, 2) S_x
    pose: np.ndarray  # (3,) yaw, pitch, roll (degrees)
    crop: np.ndarray  # (256, 256, 3) uint8 aligned original x
    anonymized: np.ndarray  # (256, 256, 3) uint8 synthesized x-hat
    landmarks_crop: np.ndarray  # (68, 2) S_x
    landmarks_anon_crop: np.ndarray | None = None  # (68, 2) S-hat_x
    landmarks_anon: np.ndarray | None = None  # (68, 2) S-hat_x in the photo
    # IFA (§3.1)
    classes: list[str] = field(default_factory=list)  # the top-K codebook classes c_i
    scores_before: np.ndarray | None = None  # (K,) class scores on A
    scores_after: np.ndarray | None = None  # (K,) class scores on A-hat
    cam: np.ndarray | None = None  # (K, 256, 256) H per class, in [0, 1]
    cam_distracted: np.ndarray | None = None  # (K, 256, 256) H-hat per class
    # VAA (§3.2): appearance candidates M_q in the delegate bank
    delegates: list[int] = field(default_factory=list)  # bank indices
    delegate_probs: np.ndarray | None = None  # Eq. 6 probabilities with u_a
    delegate: int | None = None  # the sampled Z_a (bank index; with a mixture, its first source)
    delegate_mixture: list[int] = field(default_factory=list)  # the bank faces mixed into Z_a (one per identity)
    delegate_weights: list[float] = field(default_factory=list)  # their weights, sum 1
    attribute_filter: str = ""  # which gender/age filter narrowed VAA's candidates, in words ("" when none drew)
    delegate_draw: DelegateDraw | None = field(default=None, repr=False)  # the kept try's draw (reusable: face_draws=)
    # GSA (§3.2): geometry candidates with the same pose
    geometry_candidates: list[int] = field(default_factory=list)
    geometry_probs: np.ndarray | None = None  # Eq. 6 probabilities with u_g
    geometry_delegate: int | None = None  # the sampled S-bar (bank index)
    landmarks_delegate_crop: np.ndarray | None = None  # (68, 2) S-bar in crop coordinates
    z_g: np.ndarray | None = None  # (256, 256) the landmark map of S-hat_x
    # identity guard
    identity_distance: float | None = None  # distance(original, anonymized) in the identity network's metric
    identity_threshold: float | None = None  # Psi's same-person threshold the guard held it to
    greyscale: bool = False  # the guard held it to the recognizers' greyscale thresholds (a face with no colour)
    guard_room: float | None = None  # how far beyond the nearer of the guard's limits (original, bank identities)
    landmark_error: float | None = None  # the naturalness check: the result's features vs S-hat_x (None: not checked)
    attempts: int = 1
    guard_passed: bool | None = None  # the kept try is beyond threshold + margin (None: not verified)
    guard_checks: list[GuardCheck] = field(default_factory=list)  # the kept try's distances and limits, one per check
    # what the face got: "anonymized" (step 2, verified by the guard), "obscured" (the fallback or a classical
    # --replace-with), "unchanged" (replace_with="none", asked for), "failed" (left recognizable: fallback "none") or
    # "kept" (a reference person of keep=, left pixel for pixel as it was)
    treatment: str = "anonymized"
    treatment_reason: str = ""  # why it was not anonymized (empty when it was)
    image_index: int = 0  # which photo of a list call the face is in
    keep: KeepDecision | None = None  # with keep=: kept or not, the nearest reference, both recognizers' distances


class AnonOutput:
    """The anonymized photos (each the size of its input), one record per face and notes on what ran.

    A single-image call holds one photo (``image``); a list call holds ``images`` in input order, and each face's
    ``image_index`` says which one it belongs to (``split`` gives one output per photo).
    """

    def __init__(self, image: Image.Image | None = None, faces: list[FaceRecord] | None = None,
                 notes: list[str] | None = None, *, images: list[Image.Image] | None = None) -> None:
        if (image is None) == (images is None):
            raise TypeError("give exactly one of image= (one photo) or images= (a list)")
        self.images = [image] if image is not None else list(images)
        self.faces = list(faces or [])
        self.run_notes = list(notes or [])  # what ran (e.g. which step 2); the per-face notes follow from the records

    @property
    def image(self) -> Image.Image:
        """The anonymized photo of a single-image call."""
        if len(self.images) != 1:
            raise ValueError(f"this output holds {len(self.images)} photos: use .images or .split()")
        return self.images[0]

    @property
    def notes(self) -> list[str]:
        """What ran, then per photo: that no face was found, or why each face not anonymized was not."""
        notes = list(self.run_notes)
        for j in range(len(self.images)):
            where = f"photo {j + 1}: " if len(self.images) > 1 else ""
            records = [f for f in self.faces if f.image_index == j]
            if not records:
                notes.append(f"{where}no face found: the photo is returned unchanged")
            notes += [f"{where}face {i + 1}: {r.treatment}, {r.treatment_reason}" for i, r in enumerate(records)
                      if r.treatment_reason]
        return notes

    def counts(self) -> dict[str, int]:
        """How many faces got each treatment (anonymized, obscured, unchanged, failed, kept)."""
        return {t: sum(f.treatment == t for f in self.faces) for t in TREATMENTS}

    def split(self) -> list["AnonOutput"]:
        """One output per photo, each with its own faces (``image_index`` 0) and notes."""
        return [AnonOutput(image, [dataclasses.replace(f, image_index=0) for f in self.faces if f.image_index == j],
                           self.run_notes) for j, image in enumerate(self.images)]

    def __repr__(self) -> str:
        return f"AnonOutput(images={len(self.images)}, faces={self.counts()})"


@dataclass
class Step2Result:
    """What step 2 and the identity guard did for one face: IFA's explanation, the kept try's delegates, the verdict."""

    explained: IFAResult
    delegates: DelegateDraw
    crop: np.ndarray  # (256, 256, 3) uint8, the kept synthesized crop
    guard: GuardOutcome


def treatment_of(reason: str | None, replace_with: str, fallback: str) -> str:
    """What a face got: anonymized (nothing stood in the way), unchanged (asked for), else obscured, or failed when
    step 2 could not anonymize it and the fallback is "none"."""
    if reason is None:
        return "anonymized"
    if replace_with == "none":
        return "unchanged"
    return "failed" if replace_with == "anonymize" and fallback == "none" else "obscured"


def face_record(face: Face, anonymized: np.ndarray, step2: Step2Result | None, *, use_ifa: bool = True,
                treatment: str = "anonymized", reason: str = "", image_index: int = 0,
                keep: KeepDecision | None = None) -> FaceRecord:
    """The record of one face, built once: perception, and when step 2 ran, IFA's explanation, the kept try's
    delegates and the guard's verdict; ``anonymized`` is the face's crop as it now is."""
    base = dict(box=face.box, score=face.score, landmarks=face.landmarks, pose=face.pose, crop=face.crop,
                anonymized=anonymized, landmarks_crop=face.crop_landmarks, treatment=treatment,
                treatment_reason=reason, image_index=image_index, keep=keep)
    if step2 is None:
        return FaceRecord(**base)
    explained, appearance, geometry = step2.explained, step2.delegates.appearance, step2.delegates.geometry
    drawn: dict = {}
    if appearance.sample is not None:  # VAA drew (not an ablation keeping x's appearance)
        drawn |= {"delegates": appearance.sample.candidates.tolist(), "delegate": appearance.sample.chosen,
                  "delegate_probs": appearance.sample.probabilities.numpy(),
                  "delegate_mixture": list(appearance.sources), "delegate_weights": list(appearance.weights),
                  "attribute_filter": appearance.attribute_filter}
    if geometry.sample is not None:
        drawn |= {"geometry_candidates": geometry.sample.candidates.tolist(), "geometry_delegate": geometry.sample.chosen,
                  "geometry_probs": geometry.sample.probabilities.numpy()}
    cams = explained.cams.detach().float().cpu()
    scale = cams.amax().clamp_min(1e-12)  # one scale for H and H-hat so they compare
    anon_crop = np.asarray(geometry.anonymized_landmarks)
    guard = step2.guard
    from anon_model.conditioning import landmark_map  # torch: only records of faces step 2 ran on need it

    return FaceRecord(
        **base, landmarks_anon_crop=anon_crop, landmarks_anon=transform_points(anon_crop, invert(face.matrix)),
        classes=list(explained.class_names), scores_before=explained.scores.detach().float().cpu().numpy(),
        scores_after=explained.scores_distracted.detach().float().cpu().numpy(),
        cam=(cams / scale).clamp(0, 1).numpy(),
        cam_distracted=(explained.cams_distracted.detach().float().cpu() / scale).clamp(0, 1).numpy() if use_ifa else None,
        landmarks_delegate_crop=np.asarray(geometry.delegate_landmarks),
        z_g=landmark_map(anon_crop, face.crop.shape[0]),
        identity_distance=guard.distance, identity_threshold=guard.threshold, greyscale=guard.greyscale,
        guard_room=guard.room,
        landmark_error=guard.landmark_error, attempts=guard.attempts,
        guard_passed=guard.passed, guard_checks=guard_checks(guard), delegate_draw=step2.delegates, **drawn,
    )


def guard_checks(guard: GuardOutcome) -> list[GuardCheck]:
    """The guard's checks of a kept try: far enough from the original under each recognizer (threshold + margin; a
    greyscale face's thresholds are the recognizers' greyscale ones), and from the nearest bank person (the limit
    calibrated on the bank: nearer than unrelated people come to it)."""
    kind = " for greyscale faces" if guard.greyscale else ""

    def parts(limit: float, threshold: float) -> tuple[tuple[str, float], ...]:
        return (f"the recognizer's same-person threshold{kind}", threshold), ("a safety margin", limit - threshold)

    checks = [GuardCheck("original", guard.distance, guard.original_limit, parts(guard.original_limit, guard.threshold))]
    if guard.second_name:
        margin = guard.original_limit - guard.threshold
        checks.append(GuardCheck("original", guard.second_distance, guard.second_limit,
                                 parts(guard.second_limit, guard.second_limit - margin), by=guard.second_name))
    if guard.nearest >= 0:
        checks.append(GuardCheck("bank", guard.bank_distance, guard.limit,
                                 (("how near unrelated people come to the bank (1st percentile)", guard.limit),),
                                 guard.nearest))
    return checks
