"""Copies of a photo the face search looks at: turned by quarter turns, and normalized (exposure and contrast
evened out, JPEG blocks smoothed), with the maps between their pixel coordinates and the photo's (what is found in a
copy is reported in the photo)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

#: Luminance levels (of 255) between the 1st and 99th percentile below which a photo counts as poorly exposed.
MIN_SPAN = 100
#: A 99th luminance percentile below this is a dark photo, a 1st above ``MAX_FLOOR`` a washed-out one.
MIN_PEAK, MAX_FLOOR = 100, 155
#: CLAHE's contrast limit and tile grid (OpenCV's usual values): local contrast after the global stretch.
CLAHE_LIMIT, CLAHE_GRID = 2.0, 8
#: JPEG's 8-px blocks: a photo whose luminance jumps at one column (row) offset modulo 8 at least this many times as
#: much as at the median offset is heavily compressed (docs/recall.py's photos: 1.0 as made, 1.5 at JPEG quality 30,
#: 2.2 at 10, 5.3 at 3); blockiness is measured on a central crop at most ``BLOCK_SAMPLE`` px across.
MAX_BLOCKINESS, BLOCK_SAMPLE = 2.0, 1024
#: Gaussian sigma (px) that smooths the blocks of a heavily compressed photo: at JPEG quality 3, MTCNN found 41 of 52
#: faces (37 of 37 of 48 px or more) after sigma 1.5, 39 (35) after 1.0 and 32 (30) in the photo as it was.
DEBLOCK_SIGMA = 1.5
#: A photo whose highlights are blown out (CIELAB L* of 250 of 255 or more) over this share of its pixels: MTCNN
#: misses faces whose skin is clipped white there (t1.jpg brightened x1.5: 5 of 6 faces found, x1.6: 3, x2.0: 1; the
#: bundled astronaut x2.0: none), CenterFace finds them (6 of 6, 1 of 1). Photos as taken clip far less (the 800
#: Congress portraits at most 0.048, the bundled photos 0.043, t1.jpg 0; t1.jpg x1.3 clips 0.13 and loses no face).
BLOWN_OUT = 0.1
#: Blown-out highlights are counted on every n-th pixel, at most this many across (a share needs no more).
BLOWN_OUT_SAMPLE = 1024


@dataclass(frozen=True)
class View:
    """A copy of the photo: normalized (``normalize``) or not, then turned ``turns`` quarter turns counter-clockwise
    (``np.rot90``)."""

    turns: int = 0
    normalized: bool = False

    def __post_init__(self) -> None:
        if self.turns not in (0, 1, 2, 3):
            raise ValueError(f"a view turns the photo 0-3 quarter turns, not {self.turns}")

    def __str__(self) -> str:
        parts = ([f"turned {90 * self.turns} degrees"] if self.turns else []) + (
            ["normalized"] if self.normalized else [])
        return ", ".join(parts) or "as it is"

    def turn(self, image: np.ndarray) -> np.ndarray:
        """``image`` turned as this view turns the photo (a new contiguous array; ``image`` itself when upright)."""
        return np.ascontiguousarray(np.rot90(image, self.turns)) if self.turns else image

    def shape(self, photo_shape: tuple[int, ...]) -> tuple[int, int]:
        """(height, width) of this view of a photo of ``photo_shape``."""
        h, w = photo_shape[:2]
        return (w, h) if self.turns % 2 else (h, w)

    def matrix(self, photo_shape: tuple[int, ...], *, edges: bool = False) -> np.ndarray:
        """The (2, 3) affine map from photo coordinates to this view's: of pixel centres (cv2, dlib: pixel i at i),
        or with ``edges`` of pixel edges (detector boxes: the photo spans 0 to its width)."""
        h, w = photo_shape[:2]
        if not edges:
            h, w = h - 1, w - 1
        return np.array({0: [[1, 0, 0], [0, 1, 0]], 1: [[0, 1, 0], [-1, 0, w]],
                         2: [[-1, 0, w], [0, -1, h]], 3: [[0, -1, h], [1, 0, 0]]}[self.turns], np.float64)

    def points_to_photo(self, points: np.ndarray, photo_shape: tuple[int, ...]) -> np.ndarray:
        """(N, 2) points of this view (pixel centres) in the photo's coordinates."""
        return _apply(cv2.invertAffineTransform(self.matrix(photo_shape)), points)

    def points_from_photo(self, points: np.ndarray, photo_shape: tuple[int, ...]) -> np.ndarray:
        """(N, 2) points of the photo (pixel centres) in this view's coordinates."""
        return _apply(self.matrix(photo_shape), points)

    def box_to_photo(self, box: np.ndarray, photo_shape: tuple[int, ...]) -> np.ndarray:
        """A box (x0, y0, x1, y1) of this view as the photo's box around the same pixels."""
        return _box(_apply(cv2.invertAffineTransform(self.matrix(photo_shape, edges=True)), _corners(box)))

    def box_from_photo(self, box: np.ndarray, photo_shape: tuple[int, ...]) -> np.ndarray:
        """A box (x0, y0, x1, y1) of the photo as this view's box around the same pixels."""
        return _box(_apply(self.matrix(photo_shape, edges=True), _corners(box)))


def renderer(image: np.ndarray) -> Callable[[View], np.ndarray]:
    """A function giving each view of ``image`` (RGB uint8), normalizing the photo at most once."""
    normalized = functools.cache(lambda: normalize(image))

    def render(view: View) -> np.ndarray:
        return view.turn(normalized() if view.normalized else image)
    return render


def needs_normalizing(image: np.ndarray) -> bool:
    """Whether ``image`` (RGB uint8) is poorly exposed or heavily compressed: what ``normalize`` corrects."""
    return poorly_exposed(image) or heavily_compressed(image)


def normalize(image: np.ndarray) -> np.ndarray:
    """The copy of ``image`` (RGB uint8) someone would make to see a bad photo better: its JPEG blocks smoothed when
    heavily compressed, and its exposure normalized unless blocks were all that was wrong (there the local contrast
    stretch sharpens the blocks again: in docs/recall.py's two variant photos at JPEG quality 3, 21 of 36 faces were
    found after it instead of 25 of 36)."""
    if not heavily_compressed(image):
        return normalize_exposure(image)
    smooth = cv2.GaussianBlur(image, (0, 0), DEBLOCK_SIGMA)
    return normalize_exposure(smooth) if poorly_exposed(image) else smooth


def heavily_compressed(image: np.ndarray) -> bool:
    """Whether ``image`` (RGB uint8) shows JPEG's 8-px blocks: the luminance steps at one offset modulo 8 (columns or
    rows, wherever the grid falls) exceed ``MAX_BLOCKINESS`` times those at the median offset."""
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - BLOCK_SAMPLE) // 2), max(0, (w - BLOCK_SAMPLE) // 2)
    grey = cv2.cvtColor(image[y0:y0 + BLOCK_SAMPLE, x0:x0 + BLOCK_SAMPLE], cv2.COLOR_RGB2GRAY).astype(np.float32)
    for steps in (np.abs(np.diff(grey, axis=1)).mean(0), np.abs(np.diff(grey, axis=0)).mean(1)):
        if len(steps) < 16:
            continue
        by_offset = np.array([steps[k::8].mean() for k in range(8)])
        if by_offset.max() > MAX_BLOCKINESS * max(float(np.median(by_offset)), 1e-3):
            return True
    return False


def normalize_exposure(image: np.ndarray) -> np.ndarray:
    """``image`` (RGB uint8) as someone brightening a dark, washed-out or foggy photo would see it: luminance (CIELAB
    L) stretched from its 1st-99th percentiles to the full range, then equalized locally (CLAHE); colour kept."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lo, hi = luminance_percentiles(lab[..., 0], (1, 99))
    stretched = (lab[..., 0].astype(np.float32) - lo) * (255.0 / max(hi - lo, 1))
    clahe = cv2.createCLAHE(clipLimit=CLAHE_LIMIT, tileGridSize=(CLAHE_GRID, CLAHE_GRID))
    lab[..., 0] = clahe.apply(np.clip(stretched, 0, 255).astype(np.uint8))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def poorly_exposed(image: np.ndarray) -> bool:
    """Whether ``image`` (RGB uint8) is dark, washed out or low in contrast: its luminance's 1st-99th percentile
    span is under ``MIN_SPAN`` levels, its 99th under ``MIN_PEAK`` or its 1st over ``MAX_FLOOR`` (well-exposed
    photos span 140-250 levels)."""
    lo, hi = luminance_percentiles(cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0], (1, 99))
    return hi - lo < MIN_SPAN or hi < MIN_PEAK or lo > MAX_FLOOR


def blown_out(image: np.ndarray) -> bool:
    """Whether ``image`` (RGB uint8) has blown-out highlights over ``BLOWN_OUT`` of its pixels: an overexposed
    photo, where one detector alone misses faces (``FaceDetector`` then asks a second)."""
    step = -(-max(image.shape[:2]) // BLOWN_OUT_SAMPLE)  # every step-th pixel: a share needs no more
    sample = np.ascontiguousarray(image[::step, ::step])
    return float((cv2.cvtColor(sample, cv2.COLOR_RGB2LAB)[..., 0] >= 250).mean()) > BLOWN_OUT


def luminance_percentiles(channel: np.ndarray, percents: tuple[float, ...]) -> list[int]:
    """The given percentiles of a uint8 channel, from its histogram (fast on 50-megapixel photos)."""
    cumulative = np.cumsum(np.bincount(channel.ravel(), minlength=256))
    return [int(np.searchsorted(cumulative, p / 100 * cumulative[-1])) for p in percents]


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A (2, 3) affine map applied to (N, 2) points."""
    return cv2.transform(np.asarray(points, np.float64).reshape(-1, 1, 2), matrix).reshape(-1, 2)


def _corners(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    return np.array([[x0, y0], [x1, y1]])


def _box(corners: np.ndarray) -> np.ndarray:
    return np.r_[corners.min(0), corners.max(0)]
