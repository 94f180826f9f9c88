"""The identity guard (our addition to the paper): a synthesized face counts only if no one is recognized in it.

No one means neither the original person nor any person of the delegate bank (the delegates' sources included):

* **not the original, from two views**: Psi (the dlib port) and an independent recognizer of another family
  (FaceNet-CASIA, ``anon_model.identity.facenet_casia``) must each put the result beyond its own verification
  threshold (+ ``ORIGINAL_MARGIN``) from the original, also after what an attacker tries first: the photos
  untouched (a face rolled in its photo seen at its roll, not levelled), histogram-equalized (levelled and at its
  roll), brightened, darkened or turned either way (``ATTACKS``; each crop seen as its whole photo would show it,
  ``InPhoto``; each recognizer embeds only the views it tells apart, ``view_twins``). One network alone needed a
  wide margin that taxed every face;
* **no one of the bank**: the result must be farther from every bank face than ``bank.intrusion.limit``, the limit
  calibrated on the bank itself (how close unrelated people come to it, ``anon_model.bank.calibrate``): with
  hundreds of people a fixed pairwise threshold would reject real strangers too.

``AnonPipeline`` synthesizes every face, asks ``IdentityGuard.verify`` how far each result is, and redraws the
delegates of the faces that fail (a bounded number of times); ``BestTries`` keeps each face's try with the most room
beyond its limits. The guard only looks at crops: it works the same for any step-2 synthesizer. Its last check
(``anon_model.plausibility``) asks whether a result still looks like a face with the structure S-hat_x step 2 was
asked for: a try that does not counts as failing too, so a distorted face is redrawn and, when no try is natural,
obscured by the fallback instead of shipped as anonymized.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from anon_model.attributes import greyscale
from anon_model.conditioning import FaceConditioning
from anon_model.perception.align import crop_scale, crop_turn
from anon_model.perception.face import Face, colour_counts
from anon_model.plausibility import KEPT_SLACK, Plausibility, PlausibilityCheck, default_check
from anon_model.vca import DelegateDraw

__all__ = ["IdentityGuard", "Verdict", "BestTries", "FaceTry", "GuardOutcome", "References", "ORIGINAL_MARGIN",
           "GREYSCALE_THRESHOLDS", "GIVE_UP_AFTER", "GIVE_UP_ROOM", "ATTACKS", "LEVELLED_TWIN", "ROLLED", "TURNS_ONLY",
           "BRIGHTNESS_ONLY", "view_twins", "upright_roll", "InPhoto", "equalize", "equalizer", "brighten", "rotate",
           "default_second"]

#: How far beyond each recognizer's verification threshold a result must be from the original (its own units).
ORIGINAL_MARGIN = 0.02
#: A face whose best try after ``GIVE_UP_AFTER`` tries is still more than ``GIVE_UP_ROOM`` within a limit gets no more
#: tries (``PreprocessorConfig.guard_give_up``): on the tune portraits (6 runs of 80 with 12 tries, seeds 0-2) no such
#: face passed in its 9 tries left; giving up on them saves 10-13 % of the tries with the shipped settings (0.08
#: would have lost 2 faces of one run's 80, 0.05 six).
GIVE_UP_AFTER = 3
GIVE_UP_ROOM = 0.12
#: Each recognizer's verification threshold for a greyscale face (``attributes.greyscale``). Grey, both see less:
#: at their colour thresholds FaceNet-CASIA calls 10.8 % of pairs of different people the same (colour: 1.9 %), dlib
#: 1.7 % (0.9 %), so holding greyscale results to the colour thresholds obscured most greyscale faces (40 tune
#: portraits turned grey: 19 anonymized; in colour 35). dlib's is where grey pairs match as often as colour ones do
#: at 0.6 (0.576-0.586 over the guard's views, docs/greyscale.md). FaceNet-CASIA's lies at 0.80-0.97 depending on
#: the view (turned: 0.80, as is 0.87, equalized 0.97), so it is set by the judge: 0.94 is the smallest of 0.86, 0.90
#: and 0.94 at which docs/strangers.py's judge finds grey tune outputs no more often than grey strangers after every
#: attack (0.86: 12 % equalized and 38 % turned, against 3 % and 26 % for strangers).
GREYSCALE_THRESHOLDS = {"dlib": 0.58, "facenet-casia": 0.94}


@dataclass
class InPhoto:
    """Where each of B crops sits in its photo, for the views of the whole photo an attacker takes: how far the crop
    is turned from its photo (degrees counter-clockwise) once the photo is the right way up (``upright_roll``), and
    what the rest of its photo adds to a crop's colour histogram. An attacker equalizes or brightens the whole photo, whose histogram is not the face crop's where the
    face is a small part of it (obama2.jpg enlarged 4x: 1.07 from its original under FaceNet-CASIA with the crops
    equalized alone, 0.92 with both whole photos equalized)."""

    turn: np.ndarray  # (B,) degrees, within 45 of level (``upright_roll``)
    rest: np.ndarray  # (B,3,256) the photo's histogram less the original crop's share (zeros: the crop is the photo)
    weight: np.ndarray  # (B,) photo pixels one crop pixel stands for
    grey: np.ndarray  # (B,) bool: the face is greyscale (``attributes.greyscale``)

    @classmethod
    def alone(cls, count: int, turn: Sequence[float] | None = None,
              grey: Sequence[bool] | None = None) -> "InPhoto":
        """Crops that are their own photos (levelled unless ``turn`` says otherwise; in colour unless ``grey``)."""
        turn = np.zeros(count) if turn is None else np.asarray(turn, np.float64)
        grey = np.zeros(count, bool) if grey is None else np.asarray(grey, bool)
        return cls(turn, np.zeros((count, 3, 256)), np.ones(count), grey)

    @classmethod
    def of(cls, faces: Sequence[Face]) -> "InPhoto":
        """The faces' crops in their photos. A face counts as its own photo when its photo's histogram is unknown, or
        when equalizing the whole photo would posterize it (fewer than ``MIN_TONES`` of the tones equalizing the crop
        alone leaves it): a small face on a plain backdrop comes out in two or three flat colours, a view in which a
        stranger's inner face matches x (FaceNet-CASIA 0.3) on the outline and hair alone; an attacker who equalizes
        such a photo crops the face first."""
        where = cls.alone(len(faces), [upright_roll(crop_turn(f.matrix)) for f in faces],
                          [greyscale(f.crop, f.crop_landmarks) for f in faces])
        for i, face in enumerate(faces):
            if face.photo_histogram is None:
                continue
            own, weight = colour_counts(face.crop), crop_scale(face.matrix) ** -2
            if _tones(face, face.photo_histogram) >= MIN_TONES * _tones(face, own):
                where.rest[i], where.weight[i] = face.photo_histogram - weight * own, weight
        return where

    def select(self, faces: list[int]) -> "InPhoto":
        """The entries of some faces, in that order."""
        return InPhoto(self.turn[faces], self.rest[faces], self.weight[faces], self.grey[faces])

    def histograms(self, images: list[np.ndarray]) -> np.ndarray:
        """(B,3,256) the histogram of each crop's photo with the crop (RGB uint8, ``_images``) in place of the
        original."""
        counts = np.stack([colour_counts(im) for im in images])
        return np.clip(self.rest + self.weight[:, None, None] * counts, 0, None)


def upright_roll(turn: float) -> float:
    """A face's roll in its photo as an attacker sees it once the photo is the right way up: ``turn`` (degrees) less
    the quarter turns that bring it within 45 degrees of level. Turning a photo by quarter turns is the first thing
    anyone does with a sideways or upside-down photo, and on a face lying on its side a recognizer tells no one apart:
    FaceNet-CASIA calls two different people (100 bank faces, all pairs) the same in 1.3 % of pairs upright, 3 % turned
    15 degrees, 13 % at 30, 37 % at 45, 93 % at 90 and 98 % at 180 (the bundled astronaut's photo turned 90 or 180
    degrees: every try 0.45-0.51 from her, so the face was obscured; seen the right way up, anonymized with seeds
    0-2, and found by neither judge in the photo turned back)."""
    return (turn + 45.0) % 90.0 - 45.0


#: The share of its own equalization's tones a face must keep in its whole photo equalized for that view to count:
#: natural photos keep 0.85-1.2 of them (the tune portraits, t1.jpg, obama2.jpg enlarged), a face of 20 px on a flat
#: grey backdrop 0.13-0.17.
MIN_TONES = 0.5


def _tones(face: Face, histogram: np.ndarray) -> float:
    """How many distinct values per channel the face region of ``face.crop`` takes once equalized by ``histogram``."""
    inside = face.crop[face.mask > 0.5]  # (N, 3)
    return float(np.mean([len(np.unique(equalizer(h)[inside[:, c]])) for c, h in enumerate(histogram)]))


def equalizer(histogram: np.ndarray) -> np.ndarray:
    """The lookup table (256,) by which ``PIL.ImageOps.equalize`` maps a channel with this ``histogram`` (256,) of
    counts; Pillow computes it inside ``equalize`` without exposing it, and the guard needs it for a whole photo's
    histogram (tests/test_guard.py checks it against Pillow)."""
    present = histogram[histogram > 0]
    step = (present.sum() - present[-1]) // 255 if len(present) > 1 else 0
    if not step:
        return np.arange(256)
    before = np.concatenate([[0.0], np.cumsum(histogram)[:-1]])
    return np.minimum((step // 2 + before) // step, 255).astype(np.int64)


def equalize(crops: torch.Tensor, where: InPhoto | None = None) -> torch.Tensor:
    """Each crop (B,3,S,S) in [0,1] as ``PIL.ImageOps.equalize`` of its whole photo shows it (``where``; default:
    each crop is its photo), as an attacker does to a photo."""
    where, images = where or InPhoto.alone(len(crops)), _images(crops)
    tables = np.array([[equalizer(h) for h in channels] for channels in where.histograms(images)])  # (B,3,256)
    images = np.stack(images).transpose(0, 3, 1, 2)  # (B,3,S,S)
    mapped = np.take_along_axis(tables, images.reshape(len(crops), 3, -1), axis=2).reshape(images.shape)
    return torch.from_numpy(mapped).to(crops.device, torch.float32) / 255.0


#: Brightening multiplies by at most this, and by no more than keeps the image's 99th percentile unclipped.
MAX_GAIN = 1.6


def brighten(images: torch.Tensor, where: InPhoto | None = None) -> torch.Tensor:
    """Each image (B,3,H,W) in [0,1] brightened as an attacker brightens its whole photo (``where``; default: each
    image is its photo): by up to ``MAX_GAIN``, as far as the photo's highlights (99th percentile) allow. Blindly x1.6
    washes a bright photo out until any two faces in it look alike (FaceNet-CASIA matched 8 % of greyscale stranger
    pairs as they are, more once washed out): a view that tells no one apart."""
    where = where or InPhoto.alone(len(images))
    counts = where.histograms(_images(images)).sum(1)  # (B,256) over the channels
    cumulative = np.cumsum(counts, axis=1)
    high = np.argmax(cumulative >= 0.99 * cumulative[:, -1:], axis=1) / 255.0
    gain = torch.from_numpy(np.clip(1.0 / np.maximum(high, 1e-3), 1.0, MAX_GAIN)).to(images)
    return (images * gain[:, None, None, None]).clamp(0, 1)


#: How far an attacker turns a photo (degrees, counter-clockwise) before looking again.
TURN = 15.0


def rotate(crops: torch.Tensor, points: torch.Tensor, degrees: float | Sequence[float] = TURN,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each crop (B,3,S,S) turned ``degrees`` (one angle, or one per crop; counter-clockwise) about its centre (edges
    reflected, as the rest of a turned photo would fill them) and its landmarks (B,68,2) with it: a recognizer that
    crops without levelling the eyes sees another face (FaceNet-CASIA found 21 % of held-out results again at 15
    degrees when only upright views were checked)."""
    size = crops.shape[-1]
    angles = np.broadcast_to(np.asarray(degrees, np.float64), (len(crops),))
    images, moved = [], []
    for im, pts, angle in zip(crops.permute(0, 2, 3, 1).float().cpu().numpy(), points.double().numpy(), angles):
        turn = cv2.getRotationMatrix2D((size / 2, size / 2), float(angle), 1.0)
        images.append(cv2.warpAffine(im, turn, (size, size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101))
        moved.append(pts @ turn[:, :2].T + turn[:, 2])
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(crops.device, torch.float32),
            torch.from_numpy(np.stack(moved)).float())


def _turned(degrees: float):
    """The attacker's turn of the photo by ``degrees``, seen in the crops: each aligned crop (levelled on the eyes) is
    turned by ``degrees`` less ``upright``, the angle it is already turned from its photo, so a face rolled in its
    photo is seen as rolled as the turned photo shows it (a face rolled 10 degrees ends 25 degrees from level, not 15:
    checked on the levelled crop alone, 7 of 71 tune results were found again by FaceNet-CASIA in the turned photo)."""
    return lambda crops, points, where: rotate(crops, points, degrees - where.turn)


def _pixels(change):
    """An attack on the pixels alone (``change(crops, where)``): the landmarks stay where they are."""
    return lambda crops, points, where: (change(crops, where), points)


def _in_photo(change):
    """A change to the whole photo (``change(crops, where)``) seen with the face at its roll, as "in its photo" sees
    the untouched photo."""
    at_roll = _turned(0.0)
    return lambda crops, points, where: at_roll(change(crops, where), points, where)


#: What an attacker does to both photos before comparing faces, beyond looking at them as they are: the views the
#: guard checks, each taking crops (B,3,S,S), their landmarks (B,68,2) and where each crop sits in its photo
#: (``InPhoto``: how far it is turned, what the rest of the photo holds); the first is the crop as it is.
#: Equalizing undid anonymizations that passed by a hair (0.71 -> 0.57 under dlib); brightening let FaceNet-CASIA find
#: 3 of 10 held-out strangers again; turning, 21 %. "In its photo" is the photo untouched, a face rolled in it seen
#: at its roll (the levelled crop is not what a recognizer that does not level faces sees: FaceNet-CASIA, cropping
#: the output frame at the original's landmarks, found a tilted face's kept stranger in 6 of 50 frames of
#: docs/video_clip.py's hard clip that the guard had passed levelled); "equalized in its photo" is the equalized photo
#: seen so (FaceNet-CASIA found t1.jpg's tilted woman there, which the guard had passed levelled). Brightening and
#: darkening need no such view: FaceNet-CASIA prewhitens its input, so at the face's roll they show it what "in its
#: photo" does, and Psi levels a face by its landmarks.
ATTACKS = {
    "as is": lambda crops, points, where: (crops, points),
    "in its photo": _turned(0.0),
    "equalized": _pixels(equalize),
    "equalized in its photo": _in_photo(equalize),
    "brightened": _pixels(brighten),
    "darkened": _pixels(lambda crops, where: crops * 0.4),
    "turned": _turned(TURN),
    "turned back": _turned(-TURN),
}
#: The views at a face's roll, each with the levelled view it repeats for a face rolled less than ``ROLLED``
#: degrees in its photo; for such a face the guard embeds the levelled view once and uses it for both.
LEVELLED_TWIN = {"in its photo": "as is", "equalized in its photo": "equalized"}
ROLLED = 1.0
#: The views that only turn the photo, each with the view it turns: a recognizer that levels a face by its landmarks
#: (``levels_faces``: dlib's chip) sees it as that view. Measured on 84 tune tries: dlib's distances in the turned
#: views lie within 0.01 of those unturned, and the smallest over all views rises by at most 0.007 without them.
TURNS_ONLY = {"in its photo": "as is", "turned": "as is", "turned back": "as is",
              "equalized in its photo": "equalized"}
#: The views that only scale the photo's brightness: a recognizer that prewhitens its input (``prewhitens``:
#: FaceNet-CASIA) sees them as the photo as it is (on the same tries within 0.013; the smallest distance over all
#: views rises by at most 0.006 without them).
BRIGHTNESS_ONLY = {"brightened": "as is", "darkened": "as is"}


def view_twins(names: list[str], *, levels_faces: bool, prewhitens: bool) -> list[str | None]:
    """Per view of ``names``, the view among them a recognizer sees it as (``TURNS_ONLY``, ``BRIGHTNESS_ONLY``), or
    None when it must embed that view (rolled faces only, for a view of ``LEVELLED_TWIN`` whose twin is there)."""
    same = {**(TURNS_ONLY if levels_faces else {}), **(BRIGHTNESS_ONLY if prewhitens else {})}
    return [same[name] if same.get(name) in names else None for name in names]


def _view_plan(net, names: list[str], rolled: np.ndarray, count: int) -> tuple[list[str | None], list[np.ndarray]]:
    """For one recognizer ``net`` and the views ``names`` of ``count`` faces: per view, the faces it embeds (none for
    a view it cannot tell from its twin, ``view_twins``; the ``rolled`` ones for a view at the face's roll whose
    levelled twin is there; else all) and the view whose embedding the other faces take."""
    everyone = np.arange(count)
    twins = view_twins(names, levels_faces=getattr(net, "levels_faces", False),
                       prewhitens=getattr(net, "prewhitens", False))
    faces = [everyone[:0] if twin else rolled if LEVELLED_TWIN.get(name) in names else everyone
             for name, twin in zip(names, twins)]
    return [twin or LEVELLED_TWIN.get(name) for name, twin in zip(names, twins)], faces


@functools.lru_cache(maxsize=None)
def default_second(device: str = "cpu"):
    """The guard's independent recognizer (FaceNet-CASIA), loaded once per device on first use."""
    from anon_model.identity.facenet_casia import FaceNetCasia

    return FaceNetCasia(device=device)


def _images(crops: torch.Tensor) -> list[np.ndarray]:
    """Crops (B,3,S,S) in [0,1] as RGB uint8 arrays."""
    return list((crops.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


@dataclass
class References:
    """The originals as each recognizer sees them, per view of ``ATTACKS``: Psi's (V,B,D) and the second's (V,B,D2),
    and where each face's crop sits in its photo (the results are viewed the same way)."""

    psi: torch.Tensor
    second: np.ndarray | None
    where: InPhoto

    def select(self, faces: list[int]) -> "References":
        """The references of some faces, in that order."""
        return References(self.psi[:, faces], None if self.second is None else self.second[:, faces],
                          self.where.select(faces))


@dataclass
class Verdict:
    """Distances (B,) of each result to its original (Psi's and the second recognizer's, the smallest over the
    views) and to the nearest bank face, which bank face that is, whether each result is a plausible face (None when
    that check is off), and the distances a result needs."""

    original: torch.Tensor
    bank: torch.Tensor  # +inf without a bank
    nearest: torch.Tensor  # (B,) long, bank index (-1 without a bank)
    second: torch.Tensor  # +inf without a second recognizer
    plausibility: Plausibility | None = None
    limit: float = 0.0  # from every bank face: the bank's calibrated intrusion limit
    original_limit: torch.Tensor | float = 0.0  # (B,) from the original under Psi: its threshold + ORIGINAL_MARGIN
    second_limit: torch.Tensor | float = 0.0  # (B,) the same under the second recognizer
    grey: np.ndarray | None = None  # (B,) bool: the face is greyscale, so the limits are its greyscale ones

    def limits_of(self, k: int) -> tuple[float, float, bool]:
        """Result ``k``'s limits from the original (Psi's, the second recognizer's) and whether they are greyscale."""
        psi, second = (float(torch.as_tensor(v).expand(len(self.original))[k])
                       for v in (self.original_limit, self.second_limit))
        return psi, second, bool(self.grey is not None and self.grey[k])

    @functools.cached_property
    def room(self) -> torch.Tensor:
        """(B,) how far each result is beyond the nearest of its limits (negative: within one, it fails)."""
        return torch.minimum(torch.minimum(self.original - self.original_limit, self.second - self.second_limit),
                             self.bank - self.limit)

    def landmark_error(self, k: int) -> float | None:
        """How far result ``k``'s features lie from S-hat_x (inter-ocular units; None when that was not checked)."""
        if self.plausibility is None or self.room[k] < 0:  # the check runs only on results far enough
            return None
        return float(self.plausibility.error[k])

    def implausible(self, k: int) -> str:
        """Why result ``k`` does not look like a natural face (empty when it does, or when that was not checked)."""
        return "" if self.plausibility is None else self.plausibility.reason(k)


class IdentityGuard:
    """Verifies results against their originals with Psi (``embed``, ``distance``, ``threshold``) and a ``second``
    recognizer (True: FaceNet-CASIA; False: Psi alone), against ``others`` (B_o, D): Psi's features of the bank's
    faces (``names``: their people, for the reasons given) with the bank's calibrated ``intrusion_limit``; and that
    each result is a plausible face (``plausibility``: True for the offline default perception on Psi's device, a
    ``PlausibilityCheck`` of one's own, or False to skip it)."""

    def __init__(self, identity, *, others: torch.Tensor | None = None, intrusion_limit: float | None = None,
                 names: Sequence[str] | None = None, second=True, original_margin: float = ORIGINAL_MARGIN,
                 plausibility: PlausibilityCheck | bool = True) -> None:
        device = str(next(identity.parameters()).device)
        self.identity, self.others, self.original_margin = identity, others, original_margin
        self.limit = float(identity.threshold) if intrusion_limit is None else float(intrusion_limit)
        self.names = list(names) if names is not None else None
        self.second = default_second(device) if second is True else (second or None)
        if plausibility is True:
            plausibility = default_check(device)
        self.plausibility = plausibility or None

    @property
    def original_limit(self) -> float:
        """The smallest distance to the original of a face in colour that passes under Psi."""
        return float(self.identity.threshold) + self.original_margin

    @property
    def second_limit(self) -> float:
        """The same under the second recognizer (-inf: none)."""
        return float(self.second.threshold) + self.original_margin if self.second is not None else -float("inf")

    def limits(self, where: InPhoto) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) the smallest distances to the original that pass under Psi and under the second recognizer (-inf:
        none): each recognizer's threshold + the margin, its greyscale one (``GREYSCALE_THRESHOLDS``) for the faces
        ``where`` says are greyscale; a recognizer not measured in grey keeps its colour threshold there (stricter)."""
        grey = torch.from_numpy(np.asarray(where.grey, bool))

        def of(net) -> torch.Tensor:
            colour = float(net.threshold)
            grey_threshold = GREYSCALE_THRESHOLDS.get(getattr(net, "name", ""), colour)
            return torch.where(grey, grey_threshold, colour) + self.original_margin

        psi = of(self.identity)
        return psi, of(self.second) if self.second is not None else torch.full_like(psi, -float("inf"))

    def name_of(self, nearest: int) -> str:
        """The bank person of face ``nearest``, in words."""
        return f"bank person {self.names[nearest]}" if self.names is not None else f"bank face {nearest}"

    def references(self, conds: list[FaceConditioning], where: InPhoto | None = None) -> References:
        """The originals x of ``conds`` under both recognizers and every view, computed once for all tries (each
        recognizer in one batch over views and faces: a FaceNet-CASIA call costs half as much per face at batch 5).
        ``where``: each crop in its photo (``InPhoto.of`` the faces; default: levelled crops that are their photos)."""
        x = torch.stack([c.x for c in conds]).float()
        s_x = torch.stack([c.landmarks for c in conds]).float()
        where = where or InPhoto.alone(len(conds))
        psi, second = self._embed_views(x, s_x, list(ATTACKS), where)
        return References(psi, second, where)

    def _embed_views(self, crops: torch.Tensor, points: torch.Tensor, names: list[str],
                     where: InPhoto) -> tuple[torch.Tensor, np.ndarray | None]:
        """Psi's (V,B,D) and the second recognizer's (V,B,D2) embeddings of ``crops`` (B,3,S,S) with landmarks
        ``points`` (B,68,2) in their photos (``where``) under each of the views ``names`` of ``ATTACKS``, one batched
        call per recognizer. A recognizer takes a view it cannot tell from another (``view_twins``: dlib a mere turn,
        FaceNet-CASIA a mere change of brightness) from that one, and a view at the face's roll for a face rolled
        less than ``ROLLED`` degrees from its levelled twin (``LEVELLED_TWIN``); each view is rendered once, for the
        faces either recognizer embeds in it."""
        rolled = np.flatnonzero(np.abs(where.turn) >= ROLLED)
        plans = {key: _view_plan(net, names, rolled, len(crops))
                 for key, net in (("psi", self.identity), ("second", self.second)) if net is not None}
        shown = [functools.reduce(np.union1d, [faces[v] for _, faces in plans.values()]) for v in range(len(names))]
        views = [ATTACKS[name](crops[f], points[f], where.select(list(f))) if len(f) else None
                 for name, f in zip(names, shown)]

        def seen(key: str) -> tuple[torch.Tensor, torch.Tensor]:
            """The pixels and framings of every view a recognizer embeds, view after view."""
            rows = [(views[v][0][np.searchsorted(shown[v], f)], views[v][1][np.searchsorted(shown[v], f)])
                    for v, f in enumerate(plans[key][1]) if len(f)]
            return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])

        pixels, framing = seen("psi")
        with torch.inference_mode():
            device = next(self.identity.parameters()).device
            psi = self.identity.embed(pixels.to(device), landmarks=framing.to(device)).float().cpu().numpy()
        psi = self._by_view(psi, names, *plans["psi"], len(crops))
        second = None if self.second is None else self._by_view(self._second(*seen("second")), names,
                                                                 *plans["second"], len(crops))
        return torch.from_numpy(psi), second

    @staticmethod
    def _by_view(embedded: np.ndarray, names: list[str], twins: list[str | None], faces: list[np.ndarray],
                 count: int) -> np.ndarray:
        """(V,B,D) from the embeddings (N,D) of each view's ``faces`` in turn, a view's other faces taking its
        twin's (a view that is always embedded whole)."""
        out = np.empty((len(names), count, embedded.shape[-1]), embedded.dtype)
        start = 0
        for v, f in enumerate(faces):
            out[v, f], start = embedded[start:start + len(f)], start + len(f)
        for v, twin in enumerate(twins):
            if len(faces[v]) < count:
                missing = np.setdiff1d(np.arange(count), faces[v])
                out[v, missing] = out[names.index(twin), missing]
        return out

    def verify(self, crops: torch.Tensor, conds: list[FaceConditioning], refs: References, *,
               kept: Sequence[bool] | None = None) -> Verdict:
        """How far each result (B,3,S,S) is from its original (``refs``, indexed like ``conds``) and from the bank.
        ``kept``: per result, whether it renders a draw a video track already kept (naturalness limit + KEPT_SLACK).

        Each recognizer frames the result by S-hat_x and by S_x (the smaller distance counts, so a face still
        recognized either way fails: an attacker who knows where the original face was crops the result there). For
        the results that pass as they are: whether each is a plausible face (when that check is on), and, for those
        that are, every view of ``ATTACKS`` framed by the
        landmarks found on the result, as an attacker who looks for the face frames it (S-hat_x when the check is
        off), all views in one batch: a result that fails one view fails. A result is as far as the nearest of
        these. (Checked on the levelled crop framed by S-hat_x, 13 % of 71 tune results came back under FaceNet-CASIA
        once their photo was turned 15 degrees and the face looked for again; framed where the face is found, 10 %;
        also turned as the photo turns, 1 of 66.)"""
        crops = crops.float()
        s_hat = torch.stack([c.landmarks_anon for c in conds]).float()
        s_x = torch.stack([c.landmarks for c in conds]).float()
        device = next(self.identity.parameters()).device
        with torch.inference_mode():
            plain = self.identity.embed(torch.cat([crops, crops]).to(device),
                                        landmarks=torch.cat([s_hat, s_x]).to(device)).float().reshape(2, len(crops), -1)
            original = self.identity.distance(plain, refs.psi[0][None].to(plain)).amin(0).cpu()
            if self.others is None or len(self.others) == 0:
                bank, nearest = torch.full_like(original, float("inf")), torch.full_like(original, -1).long()
            else:
                to_others = self.identity.distance(plain[:, :, None], self.others[None, None].to(plain))
                bank, nearest = (t.cpu() for t in to_others.amin(0).min(1))
        original = original.clone()  # a normal tensor: the attacker's views update it
        second = self._second_distance(crops, [s_hat, s_x], refs)
        original_limit, second_limit = self.limits(refs.where)
        verdict = Verdict(original, bank, nearest, second, limit=self.limit, original_limit=original_limit,
                          second_limit=second_limit, grey=refs.where.grey)
        plausibility = self._plausibility(crops, conds, verdict.room, kept)
        alive = [k for k in (verdict.room >= 0).nonzero().squeeze(1).tolist()
                 if plausibility is None or plausibility.passed[k]]
        first = 1 if plausibility is None else 0  # framed by S-hat_x, the view as it is was just checked
        if alive and len(ATTACKS) > first:
            framing = self._found_or(s_hat[alive], None if plausibility is None else plausibility.found[alive])
            psi, found = self._embed_views(crops[alive], framing, list(ATTACKS)[first:], refs.where.select(alive))
            far = self.identity.distance(psi.to(device), refs.psi[first:, alive].to(device)).amin(0).cpu()
            original[alive] = torch.minimum(original[alive], far)
            if found is not None:
                d2 = np.linalg.norm(found - refs.second[first:, alive], axis=-1).min(0)
                second[alive] = torch.minimum(second[alive], torch.from_numpy(d2).float())
            verdict = Verdict(original, bank, nearest, second, limit=self.limit, original_limit=original_limit,
                              second_limit=second_limit, grey=refs.where.grey)
        verdict.plausibility = plausibility
        return verdict

    @staticmethod
    def _found_or(s_hat: torch.Tensor, found: np.ndarray | None) -> torch.Tensor:
        """The landmarks (B,68,2) found on each result, S-hat_x where none were (no check, or a check of one's own
        that finds none)."""
        if found is None:
            return s_hat
        where = s_hat.clone()
        ok = torch.from_numpy(~np.isnan(found).any(axis=(1, 2)))
        where[ok] = torch.from_numpy(found[ok.numpy()]).float()
        return where

    def _second(self, crops: torch.Tensor, landmarks: torch.Tensor) -> np.ndarray:
        """The second recognizer's embeddings (B,D2) of some crops, each face located by its ``landmarks``."""
        return self.second.embed(_images(crops), list(landmarks.numpy()))

    def _second_distance(self, crops: torch.Tensor, framings: list[torch.Tensor], refs: References) -> torch.Tensor:
        """The second recognizer's distances (B,) of results as they are, framed by each of ``framings`` (B,68,2)
        (the smaller counts), to their originals as they are (+inf without a second recognizer)."""
        if self.second is None:
            return torch.full((len(crops),), float("inf"))
        found = self._second(torch.cat([crops] * len(framings)), torch.cat(framings))
        distances = np.linalg.norm(found.reshape(len(framings), len(crops), -1) - refs.second[0], axis=-1)
        return torch.from_numpy(distances.min(0)).float()

    def _plausibility(self, crops: torch.Tensor, conds: list[FaceConditioning], room: torch.Tensor,
                      kept: Sequence[bool] | None) -> Plausibility | None:
        """The naturalness check of the results beyond every limit (the others count as plausible: they fail anyway),
        a kept draw's with the slack of ``KEPT_SLACK``."""
        if self.plausibility is None:
            return None
        limit = self.plausibility.max_error + (0.0 if kept is None else KEPT_SLACK * np.asarray(kept, float))
        far = (room >= 0).nonzero().squeeze(1).tolist()
        score, error = np.ones(len(crops)), np.zeros(len(crops))
        found = np.full((len(crops), 68, 2), np.nan)
        if far:
            checked = self.plausibility(crops[far], [conds[i] for i in far])
            score[far], error[far] = checked.score, checked.error
            if checked.found is not None:
                found[far] = checked.found
        return Plausibility(score, error, limit, self.plausibility.min_score, found)


@dataclass
class FaceTry:
    """One synthesis of one face: the crop (3,S,S) in [0,1], the delegates that made it, its distances, which try."""

    crop: torch.Tensor
    delegates: DelegateDraw
    distance: float  # to the original (Psi)
    bank_distance: float  # to the nearest bank face
    nearest: int  # that bank face
    number: int  # 1-based
    second_distance: float = float("inf")  # to the original under the second recognizer
    implausible: str = ""  # why it does not look like a natural face (empty when it does)
    room: float = 0.0  # how far beyond the nearer of its limits (negative: within one)
    landmark_error: float | None = None  # the naturalness check's landmark error (None: not checked)
    limits: tuple[float, float, bool] = (0.0, -float("inf"), False)  # ``Verdict.limits_of``

    @property
    def passed(self) -> bool:
        """Far enough from everyone, and a natural face."""
        return self.room >= 0 and not self.implausible

    @property
    def rank(self) -> tuple[bool, float]:
        """Orders tries, best last: one that passes both checks first, then the one with the most room."""
        return self.passed, self.room


@dataclass
class GuardOutcome:
    """What the guard concluded for one face (the record shows it)."""

    distance: float  # of the kept try to the original, in Psi's metric
    bank_distance: float  # of the kept try to the nearest bank face (inf without a bank)
    nearest: int  # that bank face's index (-1 without a bank)
    threshold: float  # Psi's verification threshold (for a greyscale face, its greyscale one)
    limit: float  # the bank's calibrated intrusion limit: the distance from every bank face a result needs
    original_limit: float  # threshold + ORIGINAL_MARGIN: the distance from the original it needs under Psi
    attempts: int  # tries made
    kept: int  # the try whose result is used
    passed: bool  # both checks: no one is recognized in it, and it is a plausible face
    implausible: str = ""  # why the kept try does not look like a natural face (empty when it does)
    landmark_error: float | None = None  # the kept try's naturalness landmark error (None: not checked)
    second_distance: float = float("inf")  # of the kept try to the original under the second recognizer
    second_limit: float = -float("inf")  # its threshold + ORIGINAL_MARGIN
    second_name: str = ""  # the second recognizer ("" without one)
    nearest_name: str = ""  # the bank person of ``nearest``, in words
    gave_up: bool = False  # no more tries were made: the best was too far within a limit (``BestTries.retry``)
    greyscale: bool = False  # the face is greyscale: its limits are the recognizers' greyscale thresholds + margin

    @property
    def room(self) -> float:
        """How far the kept try is beyond the nearest of its limits (negative: within one)."""
        return min(self.distance - self.original_limit, self.second_distance - self.second_limit,
                   self.bank_distance - self.limit)

    @property
    def recognized(self) -> bool:
        """The kept try is within a limit of the original (either recognizer) or of a bank person."""
        return (self.distance < self.original_limit or self.second_distance < self.second_limit
                or self.bank_distance < self.limit)

    def reason(self) -> str:
        """Why the face failed, in words, naming each check that failed (empty when it passed)."""
        if self.passed:
            return ""
        why = []
        if self.distance < self.original_limit:
            why.append(f"still recognized as the original by dlib (distance {self.distance:.2f} < "
                       f"{self.original_limit:.2f})")
        elif self.second_distance < self.second_limit:
            why.append(f"still recognized as the original by {self.second_name} (distance "
                       f"{self.second_distance:.2f} < {self.second_limit:.2f})")
        if self.bank_distance < self.limit:
            why.append(f"too close to {self.nearest_name} (distance {self.bank_distance:.2f} < {self.limit:.2f}, "
                       "nearer than unrelated people come to the bank)")
        if self.implausible:
            why.append(f"step 2 could not make a natural-looking face ({self.implausible})")
        given_up = " (too far from passing to try more)" if self.gave_up else ""
        return f"{'; '.join(why)} after {self.attempts} tries{given_up}"


class BestTries:
    """Per face, the best try (one passing both checks, else the one with the most room beyond its limits;
    ``FaceTry.rank``) and the number of tries made."""

    def __init__(self, count: int) -> None:
        self.best: list[FaceTry | None] = [None] * count
        self.attempts = [0] * count
        self.given_up: set[int] = set()

    def add(self, indices: list[int], crops: torch.Tensor, delegates: list[DelegateDraw], verdict: Verdict) -> None:
        """Record one try of the faces ``indices`` (``crops``/``verdict`` in that order, ``delegates`` per face)."""
        for k, i in enumerate(indices):
            self.attempts[i] += 1
            attempt = FaceTry(crops[k], delegates[i], float(verdict.original[k]), float(verdict.bank[k]),
                              int(verdict.nearest[k]), self.attempts[i], float(verdict.second[k]),
                              verdict.implausible(k), room=float(verdict.room[k]),
                              landmark_error=verdict.landmark_error(k), limits=verdict.limits_of(k))
            if self.best[i] is None or attempt.rank > self.best[i].rank:
                self.best[i] = attempt

    def failing(self) -> list[int]:
        """Faces whose best try still comes within a limit of someone, or is not a plausible face."""
        return [i for i, t in enumerate(self.best) if not t.passed]

    def retry(self, indices: list[int], give_up: float) -> list[int]:
        """Which of the failing faces ``indices`` get another try: all but those whose best try after
        ``GIVE_UP_AFTER`` tries is still more than ``give_up`` within a limit (inf: none), which are given up."""
        hopeless = {i for i in indices if self.attempts[i] >= GIVE_UP_AFTER and self.best[i].room < -give_up}
        self.given_up |= hopeless
        return [i for i in indices if i not in hopeless]

    def outcome(self, i: int, guard: IdentityGuard) -> GuardOutcome:
        """The guard's conclusion for face ``i``."""
        t = self.best[i]
        original_limit, second_limit, grey = t.limits
        return GuardOutcome(distance=t.distance, bank_distance=t.bank_distance, nearest=t.nearest,
                            threshold=original_limit - guard.original_margin, limit=guard.limit,
                            original_limit=original_limit, greyscale=grey,
                            attempts=self.attempts[i], kept=t.number,
                            passed=t.passed, implausible=t.implausible,
                            landmark_error=t.landmark_error, second_distance=t.second_distance,
                            second_limit=second_limit,
                            second_name=guard.second.name if guard.second is not None else "",
                            nearest_name=guard.name_of(t.nearest) if t.nearest >= 0 else "",
                            gave_up=i in self.given_up)
