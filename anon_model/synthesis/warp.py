"""Training-free step 2: used whenever no trained generator G (§3.3) is configured, and announced as such.

It is NOT the paper's generator. It consumes the same step-1 conditioning and does, per face:
warp the appearance delegate Z_a's face onto the anonymized structure S-hat_x (piecewise-affine over
the 68 points, the forehead and the crop border), match its skin tone and illumination to x's skin, and
blend it into x with a weight that follows IFA's identity attention (changed where attention was
high, x kept where it was low, never outside x's face mask). The recast identity feature Z_id is
not used: without a trained translator T there is nothing that could render it.

When the pipeline's identity guard asks for another try (``effort`` > 0), the blend weight is floored at
``effort`` everywhere in the face region, so the last try (effort 1) replaces the whole region, and the region
reaches higher up the forehead (``forehead_reach``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from anon_model.attributes import GREY_CHROMA
from anon_model.conditioning import FaceConditioning
from anon_model.perception import landmarks68 as lm
from anon_model.perception.masks import face_mask, feather, skin_mask
from anon_model.perception.warp import control_points, piecewise_affine_warp

__all__ = ["TrainingFreeSynthesizer"]

CONFIG_FILE = "config.json"
DESCRIPTION = ("training-free synthesizer: no trained generator configured; the appearance delegate is warped "
               "onto the anonymized landmarks and blended into the photo (Z_id unused)")


#: How far above the brows the replaced region reaches (fraction of brow-to-chin height): less than the
#: perception mask's 0.45, so the delegate's hairline (fringe) does not come along.
FOREHEAD = 0.15
#: How far it reaches on the guard's last try (effort 1): x's hairline and upper forehead are much of what
#: FaceNet-CASIA still matches on faces that fail by a hair (tune portraits: 62 -> 64 of 80 anonymized).
RETRY_FOREHEAD = 0.3
#: The colour transfer scales a channel's spread by at most this factor (or its inverse).
MAX_STRETCH = 1.5


def forehead_reach(effort: float) -> float:
    """How far above the brows the replaced region reaches at retry ``effort`` in [0, 1]."""
    return FOREHEAD + (RETRY_FOREHEAD - FOREHEAD) * effort


def _masked_blur(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a one-channel ``image`` using only pixels where ``weight`` > 0 (normalized convolution)."""
    num = cv2.GaussianBlur(image * weight, (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)
    return num / np.maximum(den, 1e-6)


def match_colour_and_light(face: np.ndarray, target: np.ndarray, region: np.ndarray, *, sigma: float,
                           face_region: np.ndarray | None = None) -> np.ndarray:
    """Give ``face`` the colour statistics (Lab mean/std) and the low-frequency lighting of ``target`` in ``region``
    (the face's own statistics taken in ``face_region``, default ``region``: e.g. the skin of each).

    Images are float32 RGB in [0, 1]; lighting is the luminance blurred with ``sigma`` pixels, so only
    shading coarser than the facial features is taken from the target. The spread of each channel is scaled by at
    most ``MAX_STRETCH`` either way; on a greyscale target the face loses its colour (no tinted eyes or lips).
    """
    face_lab = cv2.cvtColor(face, cv2.COLOR_RGB2LAB)
    target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB)
    inside = region > 0.5
    own = inside if face_region is None else face_region > 0.5
    mu_f, sd_f = face_lab[own].mean(0), face_lab[own].std(0) + 1e-3
    mu_t, sd_t = target_lab[inside].mean(0), target_lab[inside].std(0)
    stretch = np.clip(sd_t / sd_f, 1.0 / MAX_STRETCH, MAX_STRETCH)  # a wide stretch tints eye sockets and lips
    out = (face_lab - mu_f) * stretch + mu_t
    if np.hypot(*np.median(target_lab[inside][:, 1:], axis=0)) < GREY_CHROMA:  # a greyscale photo: no colour at all
        out[..., 1:] = mu_t[1:]
    light = (_masked_blur(target_lab[..., 0], inside.astype(np.float32), sigma)
             - _masked_blur(out[..., 0], own.astype(np.float32), sigma))
    out[..., 0] = np.clip(out[..., 0] + light, 0.0, 100.0)
    return np.clip(cv2.cvtColor(out, cv2.COLOR_LAB2RGB), 0.0, 1.0)


def poisson_blend(face: np.ndarray, base: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """``face`` cloned into ``base`` over the bool mask ``inside`` by Poisson blending (``cv2.seamlessClone``): the
    face's gradients inside, ``base``'s colour along the border, so no seam and none of x's own shading within."""
    ys, xs = np.nonzero(inside)
    if len(xs) == 0:
        return base
    size = base.shape[0]
    y0, y1, x0, x1 = max(ys.min(), 1), min(ys.max(), size - 2), max(xs.min(), 1), min(xs.max(), size - 2)
    mask = np.zeros(inside.shape, np.uint8)
    mask[y0:y1 + 1, x0:x1 + 1] = inside[y0:y1 + 1, x0:x1 + 1] * 255  # one pixel off the border, as OpenCV needs
    center = ((x0 + x1 + 1) // 2, (y0 + y1 + 1) // 2)  # the mask's box lands where it is: no shift
    to8 = lambda im: (np.clip(im, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    return cv2.seamlessClone(to8(face), to8(base), mask, center, cv2.NORMAL_CLONE).astype(np.float32) / 255.0


def restore_skin_colour(face: np.ndarray, x: np.ndarray, face_skin: np.ndarray, x_skin: np.ndarray,
                        inside: np.ndarray, *, sigma: float) -> np.ndarray:
    """``face`` (after Poisson blending) shifted in CIELAB so its skin's median colour is x's again, the shift fading
    to nothing at the border of ``inside`` (blurred by ``sigma`` px): the blend keeps x's colour only along the border,
    and the delegate's gradients let the middle of the face drift a few Delta E away from x's skin tone."""
    if not face_skin.any() or not x_skin.any():
        return face
    face_lab, x_lab = cv2.cvtColor(face, cv2.COLOR_RGB2LAB), cv2.cvtColor(x, cv2.COLOR_RGB2LAB)
    shift = np.median(x_lab[x_skin], axis=0) - np.median(face_lab[face_skin], axis=0)
    core = cv2.erode(inside.astype(np.float32), np.ones((3, 3), np.uint8), iterations=max(1, round(2 * sigma)))
    fade = cv2.GaussianBlur(core, (0, 0), sigma) * inside  # ~0 along the border: nothing there for a seam
    shifted = np.clip(cv2.cvtColor(face_lab + shift * fade[..., None], cv2.COLOR_LAB2RGB), 0.0, 1.0)
    return np.where(inside[..., None], shifted, face)


def _region(cond: FaceConditioning, *, forehead: float = FOREHEAD) -> np.ndarray:
    """The face region that may change: x's face mask within the outline of S-hat_x (brows lifted by ``forehead``)."""
    size = cond.x.shape[-1]
    return cond.mask.float().numpy() * face_mask(cond.landmarks_anon.numpy(), (size, size), forehead=forehead)


def mouth_opening(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(S,S) float: the inside of the inner lips, softened: x's own teeth and tongue show there, as its expression
    asks (a closed delegate mouth stretched open looks like no mouth)."""
    inside = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inside, [np.round(landmarks[lm.INNER_LIPS]).astype(np.int32)], 1)
    return cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 1.5)


def uncovered(cond: FaceConditioning, *, forehead: float = FOREHEAD) -> np.ndarray:
    """Bool (S,S): x's face that the new face no longer covers (where S-hat_x's outline is narrower than S_x's)."""
    size = cond.x.shape[-1]
    old = cond.mask.float().numpy() * face_mask(cond.landmarks.numpy(), (size, size), forehead=forehead)
    return (old > 0.5) & (_region(cond, forehead=forehead) <= 0.5)


def fill_uncovered(x: np.ndarray, band: np.ndarray) -> np.ndarray:
    """x (S,S,3) float in [0,1] with ``band`` inpainted from its surroundings (Telea), so x's old jaw line does not
    show beside a narrower new face (the paper's generator inpaints the background there, §3.3)."""
    if not band.any():
        return x
    grown = cv2.dilate(band.astype(np.uint8), np.ones((5, 5), np.uint8))
    filled = cv2.inpaint((x * 255).round().astype(np.uint8), grown, 5, cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255.0


class TrainingFreeSynthesizer:
    """Step 2 without training: delegate face warped onto S-hat_x, colour/light-matched, attention-weighted blend."""

    trained = False
    description = DESCRIPTION
    uses_generator = False  # deterministic: faces of several photos share one batch

    def __init__(self, *, attention_floor: float = 1.0, light_sigma: float = 0.12, feather: float = 0.04) -> None:
        """``attention_floor``: blend weight where IFA's attention is 0 (1 where it is 1); sizes are crop fractions."""
        self.attention_floor, self.light_sigma, self.feather = attention_floor, light_sigma, feather

    def __repr__(self) -> str:
        return (f"TrainingFreeSynthesizer(attention_floor={self.attention_floor}, light_sigma={self.light_sigma}, "
                f"feather={self.feather})")

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the settings as ``config.json`` (there are no weights), so pipelines save it like any component."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"attention_floor": self.attention_floor, "light_sigma": self.light_sigma, "feather": self.feather}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "TrainingFreeSynthesizer":
        """Read the settings written by ``save_pretrained``."""
        return cls(**json.loads((Path(directory) / CONFIG_FILE).read_text()))

    def blend_weight(self, cond: FaceConditioning, *, effort: float = 0.0) -> np.ndarray:
        """Where and how much the crop changes: x's face mask within the warped delegate face, scaled by attention
        (floored at ``effort``)."""
        size = cond.x.shape[-1]
        attention = cond.attention.clamp_min(effort) if effort > 0 else cond.attention
        attention = cv2.GaussianBlur(attention.float().numpy(), (0, 0), self.feather * size)
        level = self.attention_floor + (1.0 - self.attention_floor) * np.clip(attention, 0.0, 1.0)
        region = _region(cond, forehead=forehead_reach(effort))
        radius = max(1, int(round(self.feather * size)))  # eroded and blurred by as much: the edge stays inside
        weight = feather(region, radius, sigma=radius / 3, ksize=2 * radius + 1) * (region > 0.5) * level
        return weight * (1.0 - mouth_opening(cond.landmarks_anon.numpy(), size))

    def synthesize_one(self, cond: FaceConditioning, *, effort: float = 0.0) -> np.ndarray:
        """One face: the anonymized crop as float32 (S, S, 3) in [0, 1]."""
        size = cond.x.shape[-1]
        x = cond.x.permute(1, 2, 0).float().numpy()
        delegate = cond.delegate_crop.permute(1, 2, 0).float().numpy()
        source = control_points(cond.delegate_landmarks.numpy(), size)
        warped = piecewise_affine_warp(delegate, source, control_points(cond.landmarks_anon.numpy(), size))
        # colour and light from the skin between jaw and brows of each (no hair, brows, eyes, lips or teeth), so
        # x's skin tone carries over whatever the two mouths and brows look like
        skin = _region(cond, forehead=0.0)
        x_skin, face_skin = skin_mask(skin, cond.landmarks.numpy()), skin_mask(skin, cond.landmarks_anon.numpy())
        face = match_colour_and_light(warped, x, x_skin, sigma=self.light_sigma * size, face_region=face_skin)
        weight = self.blend_weight(cond, effort=effort)[..., None]
        reach = float(weight.max())  # x's old jaw line goes as far as the new face comes in (none: x as it is)
        band = uncovered(cond, forehead=forehead_reach(effort))
        base = x + (fill_uncovered(x, band) - x) * reach if reach > 0 else x
        inside = weight[..., 0] > 0.05
        face = poisson_blend(face, base, inside)
        face = restore_skin_colour(face, x, face_skin, x_skin, inside, sigma=self.feather * size)
        return face * weight + base * (1.0 - weight)

    def synthesize(self, conds: list[FaceConditioning], *, generator: torch.Generator | None = None,
                   effort: float = 0.0) -> torch.Tensor:
        """Anonymized crops (B, 3, S, S) in [0, 1]; deterministic, so ``generator`` is accepted and unused.

        ``effort`` in [0, 1]: the guard's retry level, the least blend weight anywhere in the face region.
        """
        return torch.stack([torch.from_numpy(self.synthesize_one(c, effort=effort)).permute(2, 0, 1) for c in conds])

    __call__ = synthesize
