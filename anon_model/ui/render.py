"""Pure drawing helpers: CAM heatmaps on a crop, landmark sets, Z_g, face boxes and highlighted tiles.

All take and return RGB uint8 arrays (H, W, 3) and never modify their inputs.
"""

from __future__ import annotations

import cv2
import numpy as np

from anon_model.perception.landmarks68 import CONTOURS

#: Colours (RGB) of the three landmark sets, used alike in every panel and legend.
COLOR_S_X = (40, 200, 80)  # S_x, the original structure
COLOR_S_BAR = (255, 150, 30)  # S-bar, the geometry delegate
COLOR_S_HAT = (230, 40, 200)  # S-hat_x, the anonymized structure
COLOR_BOX = (255, 220, 0)
COLOR_CHOSEN = (230, 30, 30)


def _rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous uint8 RGB copy of ``image`` (grey is expanded)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {arr.dtype}")
    return np.ascontiguousarray(arr[..., :3]).copy()


def heatmap_overlay(crop: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap in [0, 1] (any size, resized to the crop) over the crop with the JET colour map."""
    base = _rgb(crop)
    h, w = base.shape[:2]
    heat = np.nan_to_num(np.asarray(heat, np.float32))
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(base, 1.0 - alpha, _jet(heat), alpha, 0.0)


def colorbar(*, width: int = 256, height: int = 14) -> np.ndarray:
    """The heatmaps' colour scale, 0 (left) to 1 (right), as an RGB strip: the legend of ``heatmap_overlay``."""
    return _jet(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1)))


def _jet(heat: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as RGB colours of the JET colour map (blue = low, red = high)."""
    return cv2.applyColorMap(np.clip(heat * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, *, color: tuple[int, int, int] = COLOR_S_X,
                   thickness: int = 1, radius: int = 2) -> np.ndarray:
    """Draw 68 iBUG landmarks (pixel coordinates of ``image``) as contour polylines with a dot per point."""
    out = _rgb(image)
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {pts.shape}")
    fixed = np.round(pts * 16).astype(np.int32)  # 4 fractional bits: sub-pixel accurate lines
    for part, closed in CONTOURS:
        cv2.polylines(out, [fixed[part]], closed, color, thickness=thickness, lineType=cv2.LINE_AA, shift=4)
    for x, y in fixed:
        cv2.circle(out, (int(x), int(y)), radius * 16, color, thickness=-1, lineType=cv2.LINE_AA, shift=4)
    return out


def faded(image: np.ndarray, *, amount: float = 0.55) -> np.ndarray:
    """The image washed towards white, a quiet background for drawings."""
    base = _rgb(image).astype(np.float32)
    return np.clip(base * (1.0 - amount) + 255.0 * amount, 0, 255).astype(np.uint8)


def geometry_map_image(z_g: np.ndarray) -> np.ndarray:
    """Z_g as a picture: a (S, S) landmark map in white on black, or (4, S, S) = background x_b with the map on top."""
    z = np.asarray(z_g, np.float32)
    if z.ndim == 2:
        lines, background = z, np.zeros((*z.shape, 3), np.float32)
    elif z.ndim == 3 and z.shape[0] == 4:
        lines, background = z[3], z[:3].transpose(1, 2, 0)
    else:
        raise ValueError(f"expected Z_g of shape (S, S) or (4, S, S), got {z.shape}")
    mixed = background * (1.0 - lines[..., None]) + lines[..., None]
    return np.clip(mixed * 255.0, 0, 255).round().astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: list[np.ndarray] | np.ndarray, *, color: tuple[int, int, int] = COLOR_BOX,
               labels: list[str] | None = None) -> np.ndarray:
    """Draw face boxes (x0, y0, x1, y1) with a label each (default: 1, 2, ...), scaled to the photo's size."""
    out = _rgb(image)
    h, w = out.shape[:2]
    thick = max(2, round(max(h, w) / 400))
    scale = max(0.5, max(h, w) / 900)
    labels = labels if labels is not None else [str(i + 1) for i in range(len(boxes))]
    for box, label in zip(boxes, labels):
        x0, y0, x1, y1 = (int(round(v)) for v in np.asarray(box, np.float64)[:4])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick, lineType=cv2.LINE_AA)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(y0, th + base + 2)
        cv2.rectangle(out, (x0, ty - th - base - 2), (x0 + tw + 4, ty), color, -1)
        cv2.putText(out, label, (x0 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out


def framed(image: np.ndarray, *, color: tuple[int, int, int] = COLOR_CHOSEN, width: int = 8) -> np.ndarray:
    """The image with a solid border drawn inside its edges (same size): marks the chosen delegate."""
    out = _rgb(image)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = color, color, color, color
    return out
