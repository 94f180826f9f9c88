"""Face detectors: MTCNN (weights inside facenet-pytorch) by default, face-alignment's S3FD when downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from anon_model.perception.weights import S3FD_FILE, hub_checkpoint

#: Images are detected at most this large (longest side); boxes are scaled back to the full photo.
DETECT_MAX_SIDE = 1280


@dataclass
class Detection:
    """A face box (x0, y0, x1, y1) in photo pixels and the detector's confidence."""

    box: np.ndarray
    score: float


class FaceDetector:
    """Finds every face of a photo; `backend` is "mtcnn", "sfd" (face-alignment's S3FD) or "auto"."""

    def __init__(self, backend: str = "auto", *, device: str = "cpu", min_score: float = 0.9, min_size: int = 20,
                 sfd_path: str | None = None) -> None:
        if backend == "auto":
            backend = "sfd" if (sfd_path or hub_checkpoint(S3FD_FILE)) else "mtcnn"
        self.backend, self.min_score, self.min_size = backend, min_score, min_size
        if backend == "mtcnn":
            from facenet_pytorch import MTCNN

            self._net = MTCNN(keep_all=True, min_face_size=min_size, device=device)
        elif backend == "sfd":
            from face_alignment.detection.sfd import FaceDetector as SFD

            # Without a local path face-alignment downloads its S3FD weights (users with the internet).
            self._net = SFD(device=device, path_to_detector=sfd_path or _as_str(hub_checkpoint(S3FD_FILE)))
        else:
            raise ValueError(f"unknown detector backend {backend!r} (choose mtcnn, sfd or auto)")

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """Detect faces in an RGB uint8 image, biggest first."""
        h, w = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
        with torch.inference_mode():
            boxes, scores = self._detect(small)
        found = []
        for box, score in zip(boxes, scores):
            box = np.asarray(box, np.float64) / scale
            if score >= self.min_score and min(box[2] - box[0], box[3] - box[1]) >= self.min_size:
                found.append(Detection(box=box, score=float(score)))
        return sorted(found, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "mtcnn":
            boxes, probs = self._net.detect(image)
            if boxes is None:
                return np.zeros((0, 4)), np.zeros(0)
            return boxes, probs
        dets = self._net.detect_from_image(image[..., ::-1].copy())  # face-alignment wants BGR arrays
        dets = np.asarray(dets).reshape(-1, 5)
        return dets[:, :4], dets[:, 4]


def _as_str(path: object) -> str | None:
    return None if path is None else str(path)
