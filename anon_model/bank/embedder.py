"""The delegate bank's k-NN feature space: an adapter around an identity network (dlib port) or ArcFace (ONNX).

An ``Embedder`` maps aligned crops (N,S,S,3) uint8 and their landmarks (N,68,2) to (N,D) features that l2 compares,
and says whether an identity network Psi gives the same features (``shares_space``): then IFA's own features of x
can query the bank directly, and the bank's embeddings can serve as IFA's codebook, without embedding twice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from anon_model.downloads import require_download
from anon_model.errors import MissingWeightsError
from anon_model.extras import require
from anon_model.perception.align import five_points

__all__ = ["Embedder", "IdentityEmbedder", "ArcFaceEmbedder", "load_embedder", "arcface_file", "ARCFACE_FILE"]

ARCFACE_FILE = Path("~/.insightface/models/buffalo_l/w600k_r50.onnx").expanduser()
#: ArcFace verification threshold on cosine similarity (paper §4.1 uses 0.30 / 0.35); as an l2
#: distance between unit vectors: sqrt(2 - 2 cos).
ARCFACE_COS_THRESHOLD = 0.30


class Embedder:
    """A feature space for the bank: ``name`` (recorded in bank.json), ``threshold`` (same person below it, l2)."""

    name: str
    threshold: float

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """Embed a batch of aligned crops (N,S,S,3) uint8 with landmarks (N,68,2) -> (N,D) float32 on the CPU."""
        raise NotImplementedError

    def shares_space(self, network: torch.nn.Module) -> bool:
        """Whether the identity network ``network`` produces exactly these features."""
        return False


class IdentityEmbedder(Embedder):
    """An ``IdentityNetwork`` (e.g. the dlib port that IFA also uses) seen as the bank's embedder."""

    def __init__(self, network: torch.nn.Module, *, name: str) -> None:
        self.network, self.name, self.threshold = network, name, float(network.threshold)

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        param = next(self.network.parameters())
        x = torch.from_numpy(np.asarray(crops)).to(param.device).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            marks = torch.from_numpy(np.asarray(landmarks)).float().to(param.device)
            return self.network.embed(x, landmarks=marks).float().cpu()

    def shares_space(self, network: torch.nn.Module) -> bool:
        """Same network, or one of the same class with equal weights (which is then adopted, so the check runs once)."""
        if network is self.network:
            return True
        if type(network) is not type(self.network):
            return False
        mine, theirs = self.network.state_dict(), network.state_dict()
        same = mine.keys() == theirs.keys() and all(
            mine[k].shape == theirs[k].shape and torch.equal(mine[k].cpu(), theirs[k].cpu()) for k in mine)
        if same:
            self.network = network
        return same


class ArcFaceEmbedder(Embedder):
    """insightface's ArcFace recognition model (an .onnx file) on 112-px chips aligned from the 68 landmarks."""

    def __init__(self, path: Path) -> None:
        require("insightface", "ArcFace (insightface)")  # one clear line when the extra is missing
        from insightface.model_zoo import get_model

        self.model = get_model(str(path), providers=["CPUExecutionProvider"])
        self.name = f"arcface:{Path(path).name}"
        self.threshold = float(np.sqrt(2 - 2 * ARCFACE_COS_THRESHOLD))

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        from insightface.utils.face_align import norm_crop

        chips = [norm_crop(c[..., ::-1], five_points(lm).astype(np.float32), image_size=self.model.input_size[0])
                 for c, lm in zip(crops, landmarks)]
        feats = torch.from_numpy(np.asarray(self.model.get_feat(chips), np.float32))
        return torch.nn.functional.normalize(feats, dim=1)


def load_embedder(name: str = "auto", *, device: str = "cpu") -> Embedder:
    """The k-NN feature space: "arcface" / an ArcFace .onnx, "dlib" / dlib's .dat, or "auto" (ArcFace if on disk)."""
    if name == "auto":
        name = "arcface" if ARCFACE_FILE.is_file() else "dlib"
    if name == "dlib" or name.endswith(".dat"):
        from anon_model.identity import load_identity_network

        return IdentityEmbedder(load_identity_network(name, device=device), name="dlib")
    if name == "arcface" or name.endswith(".onnx"):
        return ArcFaceEmbedder(arcface_file(None if name == "arcface" else Path(name)))
    raise ValueError(f"unknown embedder {name!r}: use 'auto', 'dlib', 'arcface', a dlib .dat or an ArcFace .onnx file")


def arcface_file(path: Path | None = None) -> Path:
    """A local ArcFace .onnx; None means insightface's buffalo_l pack, downloaded by insightface if absent (and allowed)."""
    if path is None:
        if not ARCFACE_FILE.is_file():
            require("insightface", "ArcFace (insightface)")
            from insightface.utils.storage import ensure_available

            require_download(f"ArcFace ({ARCFACE_FILE})", "run insightface once online")
            ensure_available("models", "buffalo_l")  # insightface's own download (needs the internet)
        path = ARCFACE_FILE
    if not Path(path).is_file():
        raise MissingWeightsError(f"ArcFace model {path} not found: run insightface once online or pass a local .onnx")
    return Path(path)
