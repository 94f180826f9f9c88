"""Visual clue anonymization (paper §3.2): VAA samples an appearance delegate Z_a, GSA a geometry S-hat_x.

Both draw from a ``DelegateBank`` with IPD sampling (``anon_model.ipd``, Eq. 6-8).

Our additions to the paper: bank faces within the verification threshold of x (the same person,
e.g. x itself when its photo is in the bank) are never candidates, for VAA and GSA alike; and VAA's appearance
delegate is a mixture of several bank identities (k-same-M style: each drawn with IPD, warped onto their mean
shape and averaged), so the face step 2 paints in is no single real person's; and where the bank holds gender/age
estimates, VAA's candidates are first narrowed to x's perceived gender and age bracket (``match_attributes``), so
the delegate does not change them, then to x's skin tone and to faces without glasses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from anon_model.attributes import FaceAttributes, bracket_name
from anon_model.bank import DelegateBank
from anon_model.errors import AnonModelError
from anon_model.ipd import geometry_distance, sample_delegate, utility_appearance, utility_geometry
from anon_model.perception import landmarks68 as lm
from anon_model.perception.align import similarity_fit, transform_points
from anon_model.perception.warp import control_points, piecewise_affine_warp

__all__ = [
    "DelegateSample",
    "AppearanceDelegate",
    "GeometryDelegate",
    "DelegateDraw",
    "visual_appearance_anonymization",
    "geometry_structure_anonymization",
    "recover_contour_and_mouth",
    "recover_expression",
    "RECOVER",
    "mix_faces",
    "refit_geometry",
    "push_away",
    "match_attributes",
    "match_skin_tone",
    "without_glasses",
]


@dataclass
class DelegateSample:
    """One IPD draw: candidate set M_q (bank indices), distances, utilities, Eq. 6 probabilities, the pick."""

    candidates: torch.Tensor  # (m,) long, bank indices
    distances: torch.Tensor  # (m,) d(q, X_i)
    utilities: torch.Tensor  # (m,) u(q, X_i) in [0, 1]
    probabilities: torch.Tensor  # (m,) P(X_i), sum 1
    chosen: int  # bank index of the delegate

    @property
    def chosen_probability(self) -> float:
        """P of the chosen candidate."""
        return float(self.probabilities[int((self.candidates == self.chosen).nonzero()[0, 0])])


@dataclass
class AppearanceDelegate:
    """VAA's result: the appearance delegate Z_a (aligned crop and its landmarks) and how it was drawn.

    With a mixture, ``crop`` is the average of the ``sources`` (bank indices, one per identity) warped onto their
    mean shape ``landmarks``, weighted by ``weights``; ``sample`` describes the first draw.
    """

    sample: DelegateSample | None  # None when no draw was made (e.g. an ablation keeping x's own appearance)
    crop: np.ndarray  # (S, S, 3) uint8
    landmarks: np.ndarray  # (68, 2) in crop pixels
    sources: list[int] = field(default_factory=list)  # the bank faces mixed (the sample's pick first)
    weights: list[float] = field(default_factory=list)  # their weights, sum 1
    attribute_filter: str = ""  # which gender/age filter narrowed the candidates, in words ("" when nothing was drawn)


@dataclass
class GeometryDelegate:
    """GSA's result: the delegate structure S-bar (aligned onto S_x) and the anonymized structure S-hat_x."""

    sample: DelegateSample | None  # None when no draw was made (e.g. an ablation keeping S_x)
    delegate_landmarks: np.ndarray  # (68, 2) S-bar, similarity-aligned to S_x, crop pixels
    anonymized_landmarks: np.ndarray  # (68, 2) S-hat_x, crop pixels
    pose_tolerance: tuple[float, float, float]  # the (yaw, pitch, roll) tolerance finally used
    recover: str = "expression"  # what S-hat_x keeps of S_x (a key of ``RECOVER``)
    push: float = 0.0  # how far S-bar was pushed beyond itself, away from S_x, before the recovery (``push_away``)


@dataclass
class DelegateDraw:
    """Everything VCA drew for one face: the appearance delegate (VAA) and the geometry delegate (GSA), and the
    identity guard's retry ``effort`` step 2 renders them with (a reused draw is rendered as it was when kept)."""

    appearance: AppearanceDelegate
    geometry: GeometryDelegate
    effort: float = 0.0

    @property
    def attribute_filter(self) -> str:
        """Which gender/age filter narrowed VAA's candidates, in words (see ``match_attributes``)."""
        return self.appearance.attribute_filter


def _eligible(bank: DelegateBank, embedding: torch.Tensor | None) -> torch.Tensor:
    """Bool (N,): bank faces that may be delegates (all but x's own identity)."""
    if embedding is None:
        return torch.ones(len(bank), dtype=torch.bool)
    eligible = ~bank.same_identity(embedding)
    if not bool(eligible.any()):
        raise AnonModelError("the delegate bank holds no face of another identity than this one")
    return eligible


def _identity_count(bank: DelegateBank, indices: torch.Tensor) -> int:
    """How many distinct identities the bank faces ``indices`` hold."""
    return len(torch.unique(bank.identities()[indices]))


def match_attributes(bank: DelegateBank, pool: torch.Tensor, attributes: FaceAttributes | None, *,
                     identities: int = 1) -> tuple[torch.Tensor, str]:
    """The faces of ``pool`` (bank indices) of x's gender, and of its age bracket when they still hold ``identities``
    distinct identities (the mixture's size; never fewer than one face), and that filter in words.

    Nothing is filtered when ``attributes`` is None (matching off), when the bank has no estimates (banks of
    format version 1), or when x's gender is left with too few people: none, or one while a mixture is asked for
    (a "mixture" of one real person would paste that person in, which the design rules out before attributes).
    The words say which.
    """
    if attributes is None:
        return pool, "off"
    if bank.attributes is None:
        return pool, "none: the bank has no gender/age estimates (built before they were stored)"
    genders, brackets = bank.attribute_codes
    gender = torch.from_numpy(genders[pool.numpy()] == attributes.gender)
    if not bool(gender.any()):
        return pool, f"none: no {attributes.gender} face among the bank's candidates"
    same = pool[gender]
    if _identity_count(bank, same) < min(identities, 2):
        return pool, f"none: one {attributes.gender} person among the bank's candidates, and a mixture needs two"
    age = bracket_name(attributes.bracket)
    bracket = brackets[same] == attributes.bracket
    wanted = min(identities, _identity_count(bank, same))
    if bool(bracket.any()) and _identity_count(bank, same[bracket]) >= wanted:
        return same[bracket], f"gender ({attributes.gender}) and age {age}"
    return same, f"gender ({attributes.gender}); age {age} left too few faces"


#: Skin tones (ITA degrees) within this of x's count as similar; widened in steps while too few people remain.
SKIN_TOLERANCE = 10.0


def match_skin_tone(bank: DelegateBank, pool: torch.Tensor, skin_tone: float | None, *,
                    identities: int = 1) -> tuple[torch.Tensor, str]:
    """The faces of ``pool`` whose skin tone is within ``SKIN_TOLERANCE`` of x's (doubled up to three times while
    they hold fewer than ``identities`` people), and that filter in words ("" when nothing was asked: no tone, or a
    greyscale face)."""
    if skin_tone is None or np.isnan(skin_tone):
        return pool, ""
    gap = (bank.skin_tones[pool] - skin_tone).abs()  # NaN (greyscale bank faces) never matches a coloured face
    for step in range(4):
        tolerance = SKIN_TOLERANCE * 2 ** step
        close = pool[gap <= tolerance]
        if len(close) and _identity_count(bank, close) >= identities:
            return close, f"skin tone within {tolerance:.0f} degrees ITA"
    return pool, "skin tone: too few faces of a similar tone"


def without_glasses(bank: DelegateBank, pool: torch.Tensor, *, identities: int = 1) -> tuple[torch.Tensor, str]:
    """The faces of ``pool`` not wearing glasses (``bank.glasses``), while they hold ``identities`` people, and that
    filter in words ("" when it left no one out): a mixture averages its members' pixels, so one member's glasses
    would show half-transparent on the other's face."""
    bare = pool[~bank.glasses[pool]]
    if len(bare) == len(pool) or _identity_count(bank, bare) < identities:
        return pool, ""
    return bare, "no glasses"


def visual_appearance_anonymization(
    embedding: torch.Tensor,
    bank: DelegateBank,
    *,
    k: int = 10,
    epsilon: float = 1.0,
    farthest: bool = False,
    mixture: int = 1,
    attributes: FaceAttributes | None = None,
    skin_tone: float | None = None,
    min_distance: float = 0.0,
    generator: torch.Generator | None = None,
    crop_size: int = 256,
) -> AppearanceDelegate:
    """VAA: among the k nearest bank faces of x (bank feature space, other identities only) sample Z_a with u_a.

    With x's estimated ``attributes``, the candidates are first narrowed to its gender and age bracket
    (``match_attributes``), and with its ``skin_tone`` (ITA degrees) to faces of a similar tone
    (``match_skin_tone``); faces wearing glasses are left out (``without_glasses``). ``min_distance`` > 0 keeps only faces at least that far from x (our departure for a
    training-free step 2, which shows the delegates' features: nearest neighbours would make the result look like
    x), so the k nearest are taken beyond it. ``mixture`` > 1 draws that many delegates of distinct identities (each draw Eq. 6 over
    the candidates left, without the identities already drawn) and mixes them with equal weights (fewer when the
    candidates hold fewer identities). ``farthest`` takes the k farthest instead (the k-farthest-neighbour baseline
    of the paper's Table 5).
    """
    distances = bank.distances(embedding)
    pool, matched = match_attributes(bank, _eligible(bank, embedding).nonzero().squeeze(1), attributes,
                                     identities=mixture)
    pool, tone = match_skin_tone(bank, pool, skin_tone, identities=mixture)
    pool, bare = without_glasses(bank, pool, identities=mixture)
    matched = "; ".join(part for part in (matched, tone, bare) if part)
    far = pool[distances[pool] >= min_distance]
    if _identity_count(bank, far) >= mixture:
        pool = far
    elif min_distance > 0:  # too few people that far: the farthest there are
        farthest = True
    order = torch.argsort(distances[pool], descending=farthest, stable=True)[:k]
    candidates = pool[order]
    d = distances[candidates]
    utilities = utility_appearance(d)
    pick, probs = sample_delegate(utilities, epsilon, generator=generator)
    sources = [int(candidates[pick])]
    identity = bank.identities()[candidates]
    while len(sources) < mixture:
        left = (identity[:, None] != bank.identities()[sources][None]).all(1).nonzero().squeeze(1)
        if len(left) == 0:
            break
        sources.append(int(candidates[left[sample_delegate(utilities[left], epsilon, generator=generator)[0]]]))
    sample = DelegateSample(candidates, d, utilities, probs, sources[0])
    weights = [1.0 / len(sources)] * len(sources)
    crop, landmarks = mix_faces(bank, sources, weights, crop_size)
    return AppearanceDelegate(sample, crop, landmarks, sources, weights, matched)


def mix_faces(bank: DelegateBank, indices: list[int], weights: list[float], size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Bank faces warped onto their weighted mean shape and averaged: (crop (S,S,3) uint8, mean landmarks (68,2))."""
    if len(indices) == 1:
        return bank.crop(indices[0], size), bank.crop_landmarks(indices[0], size).numpy()
    shapes = bank.crop_landmarks(indices, size).double().numpy()
    mean = np.einsum("n,nkd->kd", np.asarray(weights, np.float64), shapes)
    target = control_points(mean, size)
    mixed = sum(w * piecewise_affine_warp(bank.crop(i, size).astype(np.float32), control_points(shape, size), target)
                for i, w, shape in zip(indices, weights, shapes))
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8), mean


def _same_pose(bank: DelegateBank, pool: torch.Tensor, pose: torch.Tensor, tolerance: torch.Tensor,
               min_candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces of ``pool`` whose (yaw, pitch, roll) all lie within ``tolerance``, doubled until enough are found."""
    gap = (bank.poses[pool] - pose).abs()
    need = min(min_candidates, len(pool))
    for _ in range(8):  # 8 doublings take 10 degrees past any angle; else every face qualifies
        inside = (gap <= tolerance).all(dim=1)
        if int(inside.sum()) >= need:
            return pool[inside], tolerance
        tolerance = tolerance * 2
    return pool, torch.full_like(tolerance, float("inf"))


def geometry_structure_anonymization(
    landmarks: np.ndarray | torch.Tensor,
    pose: Sequence[float] | np.ndarray,
    bank: DelegateBank,
    *,
    embedding: torch.Tensor | None = None,
    k: int = 10,
    epsilon: float = 1.0,
    pose_tolerance: tuple[float, float, float] = (10.0, 10.0, 10.0),
    min_candidates: int = 3,
    farthest: bool = False,
    attributes: FaceAttributes | None = None,
    recover: str = "expression",
    push: float = 0.0,
    generator: torch.Generator | None = None,
    crop_size: int = 256,
) -> GeometryDelegate:
    """GSA: sample S-bar among same-pose bank faces with u_g, then recover x's expression -> S-hat_x (``recover``:
    "expression", or the paper's "contour_and_mouth"; see ``RECOVER``).

    ``landmarks`` is S_x in pixels of x's aligned ``crop_size`` crop. The pose tolerance doubles until
    ``min_candidates`` faces qualify (a small bank relaxes it gracefully); the k closest in pose are kept.
    With ``embedding`` given, faces of x's own identity are excluded, and with ``attributes`` the candidates are
    narrowed to x's gender and age as VAA's are (``match_attributes``; our additions). ``farthest`` keeps the k
    same-pose faces whose landmarks are farthest from S_x instead (the paper's Table 5 baseline). ``push`` > 0
    moves S-bar that much further away from S_x before the recovery (``push_away``; the guard's retries ask for it).
    """
    s_x = torch.as_tensor(np.asarray(landmarks), dtype=torch.float32)
    pose_x = torch.as_tensor(np.asarray(pose, np.float32))
    pool, _ = match_attributes(bank, _eligible(bank, embedding).nonzero().squeeze(1), attributes)
    same, tolerance = _same_pose(bank, pool, pose_x, torch.tensor(pose_tolerance, dtype=torch.float32), min_candidates)
    if farthest:
        order = torch.argsort(geometry_distance(s_x, bank.crop_landmarks(same, crop_size)), descending=True, stable=True)
    else:
        order = torch.argsort((bank.poses[same] - pose_x).abs().max(dim=1).values, stable=True)
    candidates = same[order[:k]]
    d = geometry_distance(s_x, bank.crop_landmarks(candidates, crop_size))
    utilities = utility_geometry(d)
    pick, probs = sample_delegate(utilities, epsilon, generator=generator)
    sample = DelegateSample(candidates, d, utilities, probs, int(candidates[pick]))
    return _fit_geometry(sample, s_x.numpy(), bank, tuple(float(t) for t in tolerance), recover, push, crop_size)


def refit_geometry(previous: GeometryDelegate, landmarks: np.ndarray, bank: DelegateBank, *,
                   crop_size: int = 256) -> GeometryDelegate:
    """GSA's earlier draw (the same S-bar) refitted to new landmarks S_x of the same person: a video track keeps its
    geometry delegate while its jaw and mouth follow every frame."""
    s_x = np.asarray(landmarks, np.float64)
    if previous.sample is None:  # the GSA ablation: x's own structure
        return GeometryDelegate(None, s_x, s_x, previous.pose_tolerance, previous.recover)
    return _fit_geometry(previous.sample, s_x, bank, previous.pose_tolerance, previous.recover, previous.push,
                         crop_size)


def _fit_geometry(sample: DelegateSample, s_x: np.ndarray, bank: DelegateBank, tolerance: tuple[float, float, float],
                  recover: str, push: float, crop_size: int) -> GeometryDelegate:
    """The drawn S-bar aligned onto S_x, and S-hat_x from it (pushed away from S_x by ``push``, then what
    ``recover`` keeps of S_x recovered)."""
    s_bar = _align_onto(bank.crop_landmarks(sample.chosen, crop_size).numpy(), s_x)
    s_hat = RECOVER[recover](push_away(s_bar, s_x, push), s_x)
    return GeometryDelegate(sample, s_bar, s_hat, tolerance, recover, push)


def push_away(s_bar: np.ndarray, s_x: np.ndarray, push: float) -> np.ndarray:
    """S-bar (aligned onto S_x) moved ``push`` times its own difference further from S_x: S-bar + push (S-bar - S_x).

    Our departure from the paper, which takes a real delegate's structure as it is: the training-free step 2 keeps
    whatever geometry it is given, and geometry carries identity (x's own landmarks under a delegate's appearance
    were 0.1-0.25 closer to x under FaceNet-CASIA), so when a try is still recognized the guard's retries ask for a
    structure a little farther from x's than any real person's. Expression is recovered after the push.
    """
    if push == 0:
        return s_bar
    s_bar, s_x = np.asarray(s_bar, np.float64), np.asarray(s_x, np.float64)
    return s_bar + push * (s_bar - s_x)


def _align_onto(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Similarity-align a landmark set onto a reference (least squares over all points)."""
    matrix = similarity_fit(points, reference)
    if matrix is None:
        raise AnonModelError("degenerate landmarks: cannot align the geometry delegate")
    return transform_points(points, matrix)


#: Brows, nose and eyes (iBUG-68): the features S-bar is fitted on before x's contour and mouth are put back.
_INNER_FEATURES = slice(17, 48)
# Outer-lip chains from corner to corner and the inner-lip chains they enclose (iBUG-68 indices).
_UPPER_OUTER, _UPPER_INNER = [48, 49, 50, 51, 52, 53, 54], [60, 61, 62, 63, 64]
_LOWER_OUTER, _LOWER_INNER = [54, 55, 56, 57, 58, 59, 48], [64, 65, 66, 67, 60]


def _along(chain: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at parameters t in [0, 1] of a polyline with evenly spaced vertices."""
    s = np.linspace(0.0, 1.0, len(chain))
    return np.stack([np.interp(t, s, chain[:, 0]), np.interp(t, s, chain[:, 1])], axis=1)


def recover_contour_and_mouth(delegate: np.ndarray, original: np.ndarray) -> np.ndarray:
    """S-hat_x: S-bar with S_x's jaw contour and mouth opening (inner lips), keeping S-bar's lip thickness.

    S-bar's brows, eyes and nose are first similarity-fitted onto S_x's (their shapes and layout stay the
    delegate's): fitted with the jaw, a delegate of another pose (a frontal face on a half profile) puts its
    eyes and nose beside x's, and the blend then shows both sets (doubled features). Each outer-lip point
    keeps its offset from the inner lip in S-bar and is re-attached to S_x's inner lip at the same position
    along the lip, so the mouth's shape and opening follow x while the lips' thickness stays the delegate's.
    """
    original = np.asarray(original, np.float64)
    delegate = np.asarray(delegate, np.float64)
    fit = similarity_fit(delegate[_INNER_FEATURES], original[_INNER_FEATURES])
    delegate = delegate if fit is None else transform_points(delegate, fit)
    out = delegate.copy()
    out[lm.JAW] = original[lm.JAW]
    return _with_mouth(out, delegate, original)


def _with_mouth(out: np.ndarray, delegate: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``out`` with x's inner lips (the mouth's opening) and S-bar's lip thickness around them."""
    out[lm.INNER_LIPS] = original[lm.INNER_LIPS]
    t = np.linspace(0.0, 1.0, len(_UPPER_OUTER))
    for outer, inner in ((_UPPER_OUTER, _UPPER_INNER), (_LOWER_OUTER, _LOWER_INNER)):
        thickness = delegate[outer] - _along(delegate[inner], t)
        out[outer] = _along(original[inner], t) + thickness
    return out


#: Jaw points that follow the chin when the mouth opens (iBUG-68), and how much each follows.
_CHIN, _CHIN_FOLLOW = list(range(4, 13)), np.array([0.2, 0.5, 0.8, 1.0, 1.0, 1.0, 0.8, 0.5, 0.2])
_EYES = (lm.RIGHT_EYE, lm.LEFT_EYE)


def _eye_opening(eye: np.ndarray) -> float:
    """An eye's height (mean lid gap of its two inner pairs) over its width."""
    width = np.linalg.norm(eye[3] - eye[0])
    return float((np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / 2 / max(width, 1e-6))


def recover_expression(delegate: np.ndarray, original: np.ndarray) -> np.ndarray:
    """S-hat_x for a step 2 that warps a delegate face: S-bar's structure (contour, jaw, brows, eyes, nose, lips)
    with x's expression (mouth opening, eye closure) and framing.

    Our departure from the paper, which recovers x's contour as well (its trained generator changes identity through
    Z_id; a warp keeps whatever structure it is given, and x's jaw line alone kept faces recognizable). S-bar is
    similarity-fitted onto S_x over all 68 points (pose and framing follow x); the mouth is recovered as in
    ``recover_contour_and_mouth``, the chin drops with the lower lip, and each eye opens as much as x's does.
    """
    original = np.asarray(original, np.float64)
    delegate = np.asarray(delegate, np.float64)
    fit = similarity_fit(delegate, original)
    fitted = delegate if fit is None else transform_points(delegate, fit)
    out = _with_mouth(fitted.copy(), fitted, original)
    drop = out[57] - fitted[57]  # the lower lip's move: the chin follows it
    out[_CHIN] += _CHIN_FOLLOW[:, None] * drop[None]
    for eye in _EYES:
        ratio = _eye_opening(original[eye]) / max(_eye_opening(fitted[eye]), 1e-6)
        centre = fitted[eye].mean(0)
        out[eye] = centre + (fitted[eye] - centre) * np.array([1.0, ratio])
    return out


#: How S-hat_x keeps x's face: "expression" (``recover_expression``, the default for the training-free step 2) or
#: "contour_and_mouth" (the paper's ``recover_contour_and_mouth``).
RECOVER = {"expression": recover_expression, "contour_and_mouth": recover_contour_and_mouth}
