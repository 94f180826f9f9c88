"""FaceAnalyzer: photo -> every face with landmarks, pose, aligned crop and mask (the start of step 1)."""

from __future__ import annotations

import warnings

import numpy as np

from anon_model.imageio import ImageLike, load_image
from anon_model.perception.align import alignment_matrix, transform_points, warp_to_crop
from anon_model.perception.detect import Detection, FaceDetector
from anon_model.perception.face import Face
from anon_model.perception.landmarks import LandmarkPredictor
from anon_model.perception.masks import face_mask
from anon_model.perception.pose import head_pose


class FaceAnalyzer:
    """Detects, landmarks, poses and aligns every face of a photo; the backends are chosen once, at construction."""

    def __init__(self, *, detector: str = "auto", landmarks: str = "auto", crop_size: int = 256,
                 device: str = "cpu", threshold: float = 0.9, max_faces: int | None = None) -> None:
        self.detector = FaceDetector(detector, device=device, min_score=threshold)
        self.landmarker = LandmarkPredictor(landmarks, device=device)
        self.crop_size, self.max_faces = crop_size, max_faces

    @property
    def backends(self) -> dict[str, str]:
        """Which detector and landmark models are in use (for logs and model cards)."""
        return {"detector": self.detector.backend, "landmarks": self.landmarker.backend}

    def __call__(self, image: ImageLike) -> list[Face]:
        """All faces of `image` (path, PIL or array), ordered left to right: ``detect``, ``landmark``, ``align``."""
        image = load_image(image)
        detections = self.detect(image)
        return self.align(image, detections, self.landmark(image, detections))

    def detect(self, image: np.ndarray, *, threshold: float | None = None,
               max_faces: int | None = None) -> list[Detection]:
        """Face boxes and scores of an RGB uint8 photo, largest first; `threshold` and `max_faces` override the
        analyzer's for this call. Faces beyond a set ``max_faces`` are dropped with a warning, never silently."""
        found = self.detector(image, threshold=threshold)
        limit = self.max_faces if max_faces is None else max_faces
        if limit is not None and len(found) > limit:
            warnings.warn(f"{len(found)} faces found but max_faces={limit}: the {len(found) - limit} smallest are "
                          "dropped and stay as they were (raise or unset max_faces to anonymize all)", stacklevel=2)
            found = found[:limit]
        return found

    def landmark(self, image: np.ndarray, detections: list[Detection]) -> list[np.ndarray]:
        """The 68 landmarks S_x (photo pixels) of each detected face."""
        return self.landmarker(image, [d.box for d in detections])

    def align(self, image: np.ndarray, detections: list[Detection], points: list[np.ndarray]) -> list[Face]:
        """Pose, aligned crop and mask of each face, ordered left to right."""
        faces = [self._face(image, det.box, det.score, pts) for det, pts in zip(detections, points)]
        return sorted(faces, key=lambda f: f.box[0])

    def _face(self, image: np.ndarray, box: np.ndarray, score: float, landmarks: np.ndarray) -> Face:
        matrix = alignment_matrix(landmarks, self.crop_size)
        crop_landmarks = transform_points(landmarks, matrix)
        return Face(
            box=box, score=score, landmarks=landmarks, pose=head_pose(landmarks, image.shape),
            matrix=matrix, crop=warp_to_crop(image, matrix, self.crop_size), crop_landmarks=crop_landmarks,
            mask=face_mask(crop_landmarks, (self.crop_size, self.crop_size)),
        )
