"""Piecewise-affine face warps over the 68 landmarks (+ forehead and crop border): moving one face onto another's shape."""
from __future__ import annotations

import functools

import cv2
import numpy as np
from scipy.spatial import Delaunay

from anon_model.perception.masks import face_outline

__all__ = ["control_points", "piecewise_affine_warp"]

_SUBPIXEL_BITS = 4  # cv2 fixed-point bits for rasterizing triangles
_SUBPIXEL = 1 << _SUBPIXEL_BITS


def control_points(landmarks: np.ndarray, size: int) -> np.ndarray:
    """68 landmarks + the forehead outline + 8 crop-border anchors: the vertices of the warp's triangulation."""
    forehead = face_outline(landmarks)[17:]  # the brows lifted over the forehead
    s = size - 1
    border = np.array([[0, 0], [s / 2, 0], [s, 0], [s, s / 2], [s, s], [s / 2, s], [0, s], [0, s / 2]], np.float64)
    return np.concatenate([np.asarray(landmarks, np.float64), forehead, border])


def piecewise_affine_warp(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Warp ``image`` so its points ``source`` land on ``target`` (one affine map per Delaunay triangle of ``target``).

    The map of skimage's ``PiecewiseAffineTransform``, ~50x faster here: each triangle is rasterized with
    cv2 into a label map, its affine map target -> source solved in one batch, and cv2.remap samples.
    """
    h, w = image.shape[:2]
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    simplices, label = _triangulation(target.tobytes(), h, w)
    homogeneous = np.concatenate([target[simplices], np.ones((len(simplices), 3, 1))], axis=2)
    affine = np.linalg.solve(homogeneous, source[simplices]).transpose(0, 2, 1)  # (T, 2, 3): [x y 1] -> source
    affine = np.concatenate([affine, np.eye(2, 3)[None]]).astype(np.float32)[label]
    ys, xs = _grid(h, w)
    map_x = affine[..., 0, 0] * xs + affine[..., 0, 1] * ys + affine[..., 0, 2]
    map_y = affine[..., 1, 0] * xs + affine[..., 1, 1] * ys + affine[..., 1, 2]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


@functools.lru_cache(maxsize=32)
def _triangulation(target: bytes, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay triangles of the target points (float64 bytes) and the (h, w) map of which triangle holds each pixel
    (len(triangles): none), both read-only. Kept for the last targets: a mixture warps several delegates onto one
    shape, and triangulating costs more than the warp itself."""
    points = np.frombuffer(target, np.float64).reshape(-1, 2)
    simplices = Delaunay(points).simplices
    label = np.full((h, w), len(simplices), np.int32)  # pixels outside every triangle keep the identity map
    for i, corners in enumerate(np.round(points[simplices] * _SUBPIXEL).astype(np.int32)):
        cv2.fillConvexPoly(label, corners, i, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    simplices.flags.writeable = label.flags.writeable = False
    return simplices, label


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row and column coordinates (float32), shared (read-only)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs
