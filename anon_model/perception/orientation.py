"""Which way up a face is: dlib's HOG face detector finds upright faces only (within about 30 degrees of roll), so
its margin on the face's surroundings turned by each quarter turn says which turn shows it upright. The face search
uses it to notice a turned photo whose faces the detector still found (MTCNN finds some faces upside down)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

#: The face box grown by this share of its width on each side and resized to ``SIDE`` pixels: HOG's 80-px window fits.
MARGIN, SIDE = 0.3, 160


def upright_turns(image: np.ndarray, box: np.ndarray) -> int:
    """The quarter turns counter-clockwise (``np.rot90``) that show the face in ``box`` (x0, y0, x1, y1) of the RGB
    uint8 ``image`` upright: the turn where HOG's margin is highest, when that margin is positive; else 0 (unsure)."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    pad = MARGIN * (x1 - x0)
    h, w = image.shape[:2]
    crop = image[max(0, int(y0 - pad)):min(h, int(y1 + pad)), max(0, int(x0 - pad)):min(w, int(x1 + pad))]
    if min(crop.shape[:2]) < 2:
        return 0
    scale = SIDE / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    margins = [max(_hog().run(np.ascontiguousarray(np.rot90(crop, k)), 0, -1.0)[1], default=-np.inf) for k in range(4)]
    best = int(np.argmax(margins))
    return best if margins[best] > 0 else 0


@functools.cache
def _hog():
    """dlib's HOG frontal face detector (built into dlib), loaded once per process (about 0.4 s)."""
    import dlib

    return dlib.get_frontal_face_detector()
