"""Reading images from anything users pass, and writing results atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from anon_model.errors import ImageError

#: File suffixes read as images when a folder is searched (one list for the CLI, bank building, evaluation, training).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: Largest image we accept (pixels); bigger inputs are refused rather than exhausting memory.
MAX_PIXELS = 60_000_000

ImageLike = str | os.PathLike | Image.Image | np.ndarray


def load_image(src: ImageLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return `src` as an RGB uint8 array (H, W, 3): EXIF rotation applied, grey/alpha/palette converted."""
    if isinstance(src, np.ndarray):
        return _array_to_rgb(src, max_pixels)
    if isinstance(src, Image.Image):
        return _pil_to_rgb(src, max_pixels)
    path = Path(src)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            _check_size(im.size, max_pixels, path)
            return _pil_to_rgb(im, max_pixels)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image too large") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable or truncated image ({exc})") from None


def _check_size(size: tuple[int, int], max_pixels: int, name: object = "image") -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageError(f"{name}: image too large ({w}x{h} = {w * h / 1e6:.0f} MP; limit {max_pixels / 1e6:.0f} MP)")
    if w < 8 or h < 8:
        raise ImageError(f"{name}: image too small ({w}x{h})")


def _pil_to_rgb(im: Image.Image, max_pixels: int) -> np.ndarray:
    _check_size(im.size, max_pixels)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _array_to_rgb(arr: np.ndarray, max_pixels: int) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"array of shape {arr.shape} is not an image (expected HxW, HxWx3 or HxWx4)")
    _check_size((arr.shape[1], arr.shape[0]), max_pixels)
    if arr.dtype != np.uint8:
        scale = 255.0 if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0 else 1.0
        arr = np.clip(arr.astype(np.float64) * scale, 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = (arr[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def save_image_atomic(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Write `image` to `path` via a temporary file in the same folder, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_write(path) as fh:
        pil.save(fh, format=fmt)
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path` and move it into place only when the block succeeds.

    The file gets the permissions a plain ``open`` would give (the process umask), not mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
