"""FaceAnalyzer: photo -> every face with landmarks, pose, aligned crop and mask (the start of step 1)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from anon_model.errors import failure_reason
from anon_model.imageio import ImageLike, load_image
from anon_model.perception.align import alignment_matrix, transform_points, warp_to_crop
from anon_model.perception.detect import NMS_IOU, Detection, FaceDetector
from anon_model.perception.face import Face, colour_counts
from anon_model.perception.landmarks import LandmarkPredictor
from anon_model.perception.masks import face_mask
from anon_model.perception.pose import head_pose
from anon_model.perception.search import search_faces
from anon_model.perception.views import View, renderer

#: Wrapped around each stage of a call (the stage's name in, a context manager out); ``anon-model bench`` times them.
Timer = Callable[[str], AbstractContextManager]


def untimed(stage: str) -> AbstractContextManager:
    """The default timer: nothing."""
    return nullcontext()


#: A face whose perception failed is framed in its crop like an aligned face: its box this share of the crop tall,
#: centred at ``FAILED_CENTRE`` (fractions of the crop).
FAILED_BOX_SHARE, FAILED_CENTRE = 0.55, (0.5, 0.55)


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
        """All faces of `image` (path, PIL or array), ordered left to right: ``detect``, ``landmark``, ``align``.
        A face whose landmarks, pose or alignment failed is left out, with a warning (``align`` keeps it)."""
        image = load_image(image)
        detections = self.detect(image)
        faces = self.align(image, detections, self.landmark_each(image, detections))
        for face in faces:
            if face.failure:
                warnings.warn(f"face at {np.round(face.box).astype(int).tolist()} left out: {face.failure}",
                              stacklevel=2)
        return [face for face in faces if not face.failure]

    def perceive(self, image: np.ndarray, *, threshold: float | None = None, max_faces: int | None = None,
                 search: str = "auto", timer: Timer | None = None) -> list[Face]:
        """Every face of an RGB uint8 photo, left to right, failed ones included (``face.failure``): ``detect`` (with
        `threshold`, `max_faces`, `search`), ``landmark_each`` and ``align``, each inside ``timer(stage)``."""
        stage = timer or untimed
        with stage("detect"):
            detections = self.detect(image, threshold=threshold, max_faces=max_faces, search=search)
        with stage("landmarks"):
            points = self.landmark_each(image, detections)
        with stage("align"):
            return self.align(image, detections, points)

    def detect(self, image: np.ndarray, *, threshold: float | None = None, max_faces: int | None = None,
               search: str = "upright") -> list[Detection]:
        """Face boxes and scores of an RGB uint8 photo, largest first; `threshold` and `max_faces` override the
        analyzer's for this call; `search` says which views of the photo are looked at (``perception/search.py``:
        "upright", "auto", "thorough"). Faces beyond a set ``max_faces`` are dropped with a warning, never silently."""
        found = search_faces(lambda view: self.detector(view, threshold=threshold), image, search, merge_iou=NMS_IOU)
        limit = self.max_faces if max_faces is None else max_faces
        if limit is not None and len(found) > limit:
            warnings.warn(f"{len(found)} faces found but max_faces={limit}: the {len(found) - limit} smallest are "
                          "dropped and stay as they were (raise or unset max_faces to anonymize all)", stacklevel=2)
            found = found[:limit]
        return found

    def landmark(self, image: np.ndarray, detections: list[Detection]) -> list[np.ndarray]:
        """The 68 landmarks S_x (photo pixels) of each detected face; raises the first face's error, if any."""
        points = self.landmark_each(image, detections)
        for p in points:
            if isinstance(p, Exception):
                raise p
        return points

    def landmark_each(self, image: np.ndarray, detections: list[Detection]) -> list[np.ndarray | Exception]:
        """Per detected face, its 68 landmarks S_x in photo pixels, looked for in the view it was found in (upright
        there), or the error the landmarker raised on that face alone (the other faces keep theirs)."""
        render, points = renderer(image), [None] * len(detections)
        for view in dict.fromkeys(d.view for d in detections):
            members = [i for i, d in enumerate(detections) if d.view == view]
            seen = render(view)
            boxes = [view.box_from_photo(detections[i].box, image.shape) for i in members]
            for i, found in zip(members, self._predict(seen, boxes)):
                points[i] = found if isinstance(found, Exception) else view.points_to_photo(found, image.shape)
        return points

    def align(self, image: np.ndarray, detections: list[Detection],
              points: list[np.ndarray | Exception]) -> list[Face]:
        """Pose, aligned crop and mask of each face, ordered left to right, each with its photo's colour counts. A face whose landmarks are an error, or
        whose pose or alignment raises, is kept with that as its ``failure`` (framed by its box alone)."""
        faces = [self._face(image, det, pts) for det, pts in zip(detections, points)]
        counts = colour_counts(image) if faces else None
        for face in faces:
            face.photo_histogram = counts
        return sorted(faces, key=lambda f: f.box[0])

    def _predict(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray | Exception]:
        """The landmarker on all boxes of one view at once; when it raises, on each box alone."""
        try:
            return self.landmarker(image, boxes)
        except Exception:  # find which face it was; each keeps its own error
            found: list[np.ndarray | Exception] = []
            for box in boxes:
                try:
                    found += self.landmarker(image, [box])
                except Exception as exc:
                    found.append(exc)
            return found

    def _face(self, image: np.ndarray, det: Detection, landmarks: np.ndarray | Exception) -> Face:
        """One face, its pose measured upright in the view it was found in; the alignment's similarity then turns
        the crop upright too. Any error on the way makes it a failed face rather than stopping the photo."""
        stage = "landmarks"
        try:
            if isinstance(landmarks, Exception):
                raise landmarks
            stage = "head pose"
            pose = head_pose(det.view.points_from_photo(landmarks, image.shape), det.view.shape(image.shape))
            stage = "alignment"
            matrix = alignment_matrix(landmarks, self.crop_size)
            crop_landmarks = transform_points(landmarks, matrix)
            return Face(box=det.box, score=det.score, landmarks=landmarks, pose=pose, matrix=matrix,
                        crop=warp_to_crop(image, matrix, self.crop_size), crop_landmarks=crop_landmarks,
                        mask=face_mask(crop_landmarks, (self.crop_size, self.crop_size)))
        except Exception as exc:  # one face's error never costs the photo: it becomes its reason
            usable = not isinstance(landmarks, Exception) and np.isfinite(landmarks).all()
            return self._failed(image, det, landmarks if usable else None, failure_reason(stage, exc))

    def _failed(self, image: np.ndarray, det: Detection, landmarks: np.ndarray | None, failure: str) -> Face:
        """A face perception could not finish: cropped upright around its box, its landmarks as found (all at the
        box's centre when there are none), pose unknown (NaN), no face region; only ever obscured."""
        matrix = _box_matrix(det.box, det.view, image.shape, self.crop_size)
        if landmarks is None:
            landmarks = np.tile(((det.box[:2] + det.box[2:]) / 2), (68, 1))
        return Face(box=det.box, score=det.score, landmarks=landmarks, pose=np.full(3, np.nan), matrix=matrix,
                    crop=warp_to_crop(image, matrix, self.crop_size),
                    crop_landmarks=transform_points(landmarks, matrix),
                    mask=np.zeros((self.crop_size, self.crop_size), np.float32), failure=failure)


def _box_matrix(box: np.ndarray, view: View, photo_shape: tuple[int, ...], crop_size: int) -> np.ndarray:
    """The (2, 3) similarity from the photo to a crop framing ``box`` upright as ``view`` sees it."""
    x0, y0, x1, y1 = view.box_from_photo(box, photo_shape)
    scale = FAILED_BOX_SHARE * crop_size / max(y1 - y0, x1 - x0, 1.0)
    to_view = view.matrix(photo_shape)
    shift = np.multiply(FAILED_CENTRE, crop_size) - scale * np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return np.c_[scale * to_view[:, :2], scale * to_view[:, 2] + shift]
