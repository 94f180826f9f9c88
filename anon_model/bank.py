"""The delegate bank of paper §3.2: faces that VAA and GSA draw appearance and geometry delegates from.

Per face it stores the aligned crop (JPEG bytes, decoded only when a face is chosen), the
identity embedding in the k-NN feature space, the 68 landmarks normalized to the crop and the
head pose, as ``bank.safetensors`` plus ``bank.json`` (metadata) in one folder.

The feature space is ArcFace (insightface's ``w600k_r50.onnx``, the paper's choice) when that
model is on disk, otherwise the offline port of dlib's ResNet (``anon_model.identity``). A query
must be embedded with the bank's own embedder (``bank.embed``).

The default bank (``anon_model/assets/bank``) is built once from the bundled public-domain photos
and shipped prebuilt (about 100 kB: 5 crops as JPEG): loading it is instant and needs no write to
the user's disk, and ``tests/test_bank.py`` checks that rebuilding it reproduces it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from anon_model.errors import AnonModelError, ImageError, MissingWeightsError
from anon_model.imageio import load_image
from anon_model.perception.align import five_points
from anon_model.perception.face import Face

__all__ = ["DelegateBank", "Embedder", "load_embedder", "DEFAULT_BANK_DIR", "DEFAULT_SYNTH_MODEL"]

BANK_FILE, META_FILE = "bank.safetensors", "bank.json"
FORMAT = "anon_model.delegate_bank"
DEFAULT_BANK_DIR = Path(__file__).resolve().parent / "assets" / "bank"
#: An unconditional DDPM trained on CelebA-HQ 256 (Apache-2.0); downloaded by users with the internet.
DEFAULT_SYNTH_MODEL = "google/ddpm-celebahq-256"
ARCFACE_FILE = Path("~/.insightface/models/buffalo_l/w600k_r50.onnx").expanduser()
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
#: ArcFace verification threshold on cosine similarity (paper §4.1 uses 0.30 / 0.35); as an l2
#: distance between unit vectors: sqrt(2 - 2 cos).
ARCFACE_COS_THRESHOLD = 0.30


@dataclass
class Embedder:
    """Maps aligned crops (N,S,S,3) uint8 and their landmarks (N,68,2) to (N,D) features; l2 compares them."""

    name: str
    threshold: float  # same person when the l2 distance is below this
    embed: Callable[[np.ndarray, np.ndarray], torch.Tensor]

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """Embed a batch of aligned crops."""
        return self.embed(np.asarray(crops), np.asarray(landmarks))


def load_embedder(name: str = "auto", *, device: str = "cpu") -> Embedder:
    """The k-NN feature space: "arcface" / an ArcFace .onnx, "dlib" / dlib's .dat, or "auto" (ArcFace if on disk)."""
    if name == "auto":
        name = "arcface" if ARCFACE_FILE.is_file() else "dlib"
    if name == "dlib" or name.endswith(".dat"):
        return _dlib_embedder(name, device)
    if name == "arcface" or name.endswith(".onnx"):
        return _arcface_embedder(None if name == "arcface" else Path(name))
    raise ValueError(f"unknown embedder {name!r}: use 'auto', 'dlib', 'arcface', a dlib .dat or an ArcFace .onnx file")


def _dlib_embedder(source: str, device: str) -> Embedder:
    from anon_model.identity import load_identity_network

    net = load_identity_network(source, device=device)

    def embed(crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            return net.embed(x, landmarks=torch.from_numpy(landmarks).float().to(device)).float().cpu()

    return Embedder("dlib", float(net.threshold), embed)


def _arcface_embedder(path: Path | None) -> Embedder:
    from insightface.model_zoo import get_model
    from insightface.utils.face_align import norm_crop

    if path is None:
        if not ARCFACE_FILE.is_file():
            from insightface.utils.storage import ensure_available

            ensure_available("models", "buffalo_l")  # insightface's own download (needs the internet)
        path = ARCFACE_FILE
    if not Path(path).is_file():
        raise MissingWeightsError(f"ArcFace model {path} not found: run insightface once online or pass a local .onnx")
    model = get_model(str(path), providers=["CPUExecutionProvider"])

    def embed(crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        chips = [norm_crop(c[..., ::-1], five_points(lm).astype(np.float32), image_size=model.input_size[0])
                 for c, lm in zip(crops, landmarks)]
        feats = torch.from_numpy(np.asarray(model.get_feat(chips), np.float32))
        return torch.nn.functional.normalize(feats, dim=1)

    return Embedder(f"arcface:{Path(path).name}", float(np.sqrt(2 - 2 * ARCFACE_COS_THRESHOLD)), embed)


class DelegateBank:
    """A set of aligned faces with their identity embeddings, landmarks and poses (the candidates of IPD)."""

    def __init__(self, *, embeddings: torch.Tensor, landmarks: torch.Tensor, poses: torch.Tensor,
                 crops: Sequence[bytes], sources: Sequence[str], embedder: str, threshold: float,
                 crop_size: int, info: dict[str, Any] | None = None) -> None:
        n = len(crops)
        if not (embeddings.shape[0] == landmarks.shape[0] == poses.shape[0] == len(sources) == n):
            raise ValueError("embeddings, landmarks, poses, crops and sources must have one row per face")
        self.embeddings = embeddings.float()  # (N, D)
        self.landmarks = landmarks.float()  # (N, 68, 2) in [0, 1] of the crop
        self.poses = poses.float()  # (N, 3) yaw, pitch, roll in degrees
        self.crops = list(crops)  # JPEG bytes of the aligned crops
        self.sources = list(sources)
        self.embedder_name, self.threshold, self.crop_size = embedder, float(threshold), int(crop_size)
        self.info = dict(info or {})
        self._embedder: Embedder | None = None

    def __len__(self) -> int:
        return len(self.crops)

    def __repr__(self) -> str:
        return f"DelegateBank({len(self)} faces, embedder={self.embedder_name!r}, crop_size={self.crop_size})"

    # ---- one face -------------------------------------------------------------------------------
    def crop(self, index: int, size: int = 256) -> np.ndarray:
        """The aligned crop of face ``index`` as RGB uint8 (size, size, 3)."""
        bgr = cv2.imdecode(np.frombuffer(self.crops[index], np.uint8), cv2.IMREAD_COLOR)
        if bgr.shape[0] != size:
            shrink = bgr.shape[0] > size
            bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        return np.ascontiguousarray(bgr[..., ::-1])

    def crop_landmarks(self, indices: int | Sequence[int] | torch.Tensor, size: int = 256) -> torch.Tensor:
        """Landmarks of the given faces in pixels of a ``size`` crop: (68, 2) or (n, 68, 2)."""
        return self.landmarks[indices] * size

    # ---- the feature space ----------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        """The embedder of the bank's feature space (loaded on first use)."""
        if self._embedder is None:
            name = self.embedder_name.split(":", 1)[0]
            self._embedder = load_embedder(name)
            if self._embedder.name != self.embedder_name:
                raise MissingWeightsError(
                    f"bank was built with {self.embedder_name!r}, only {self._embedder.name!r} found")
        return self._embedder

    @embedder.setter
    def embedder(self, value: Embedder) -> None:
        if value.name != self.embedder_name:
            raise ValueError(f"bank features are {self.embedder_name!r}, not {value.name!r}")
        self._embedder = value

    def embed(self, crops: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """Embed aligned query crops (N,S,S,3) uint8 with landmarks (N,68,2) into the bank's feature space."""
        return self.embedder(crops, landmarks)

    def distances(self, embedding: torch.Tensor) -> torch.Tensor:
        """l2 distance from one embedding (D,) to every face of the bank -> (N,)."""
        from anon_model.ipd import appearance_distance

        return appearance_distance(embedding.float().reshape(-1), self.embeddings)

    def same_identity(self, embedding: torch.Tensor) -> torch.Tensor:
        """Bool (N,): faces within the verification threshold of ``embedding`` (never returned as delegates)."""
        return self.distances(embedding) < self.threshold

    # ---- building -------------------------------------------------------------------------------
    @classmethod
    def from_faces(cls, faces: Iterable[Face], sources: Iterable[str], *, identity: Embedder | str = "auto",
                   jpeg_quality: int = 95, batch_size: int = 32, info: dict[str, Any] | None = None) -> "DelegateBank":
        """A bank from analyzed faces (``FaceAnalyzer`` records) and a source label for each."""
        builder = _Builder(_embedder(identity), jpeg_quality, batch_size)
        for face, source in zip(faces, sources):
            builder.add(face, source)
        return builder.finish(info)

    @classmethod
    def build(cls, folder: str | os.PathLike, *, analyzer=None, identity: Embedder | str = "auto",
              jpeg_quality: int = 95, min_size: float = 48.0, batch_size: int = 32,
              progress: bool = True) -> "DelegateBank":
        """Detect, align and embed every face (box side >= ``min_size`` px) of every photo under ``folder``."""
        folder = Path(folder)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise AnonModelError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
        analyzer = analyzer or _default_analyzer()
        builder = _Builder(_embedder(identity), jpeg_quality, batch_size)
        skipped = []
        for path in tqdm(files, desc="bank build", unit="photo", disable=not progress):
            try:
                faces = analyzer(load_image(path))
            except ImageError as err:
                skipped.append(f"{path.name}: {err}")
                continue
            for j, face in enumerate(faces):
                if min(face.box[2] - face.box[0], face.box[3] - face.box[1]) >= min_size:
                    builder.add(face, f"{path.relative_to(folder).as_posix()}#{j}")
        for line in skipped:
            warnings.warn(f"bank build skipped {line}", stacklevel=2)
        return builder.finish({"built_from": folder.name, "photos": len(files), "skipped": len(skipped)})

    @classmethod
    def synthesize(cls, n: int, *, model: str | Callable = DEFAULT_SYNTH_MODEL, analyzer=None,
                   identity: Embedder | str = "auto", steps: int = 50, batch_size: int = 4,
                   max_images: int | None = None, seed: int = 0, device: str = "cpu",
                   jpeg_quality: int = 95, progress: bool = True) -> "DelegateBank":
        """A bank of ``n`` synthetic faces of no one, sampled from an unconditional diffusers face model.

        ``model`` is a Hub id / local folder of a diffusers unconditional pipeline (DDPM/DDIM; a DDPM is
        sampled with a DDIM scheduler and ``steps`` steps) or such a pipeline object. Samples in which no
        face is found are dropped; at most ``max_images`` (default 2n) are drawn; ``seed`` fixes them.
        """
        pipe = model if callable(model) else _unconditional_pipeline(str(model), device)
        label = model if isinstance(model, str) else type(model).__name__
        analyzer = analyzer or _default_analyzer()
        builder = _Builder(_embedder(identity), jpeg_quality, batch_size)
        generator = torch.Generator(device).manual_seed(seed)
        budget, drawn = max_images or 2 * n, 0
        with tqdm(total=n, desc="bank synth", unit="face", disable=not progress) as bar:
            while len(builder) < n and drawn < budget:
                count = min(batch_size, budget - drawn)
                images = pipe(batch_size=count, generator=generator, num_inference_steps=steps,
                              output_type="np").images
                for image in np.asarray(images):
                    faces = analyzer(np.clip(np.round(image * 255), 0, 255).astype(np.uint8))
                    if faces and len(builder) < n:
                        builder.add(max(faces, key=lambda f: f.score), f"synth:{label}#{drawn}")
                        bar.update(1)
                    drawn += 1
        if len(builder) < n:
            warnings.warn(f"bank synth: faces found in {len(builder)} of {drawn} samples, fewer than the {n} asked",
                          stacklevel=2)
        return builder.finish({"synthesized_with": label, "samples": drawn})

    # ---- files ----------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``bank.safetensors`` and ``bank.json`` into ``directory`` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sizes = torch.tensor([len(c) for c in self.crops], dtype=torch.int64)
        blob = np.frombuffer(b"".join(self.crops), np.uint8).copy()
        save_file({
            "embeddings": self.embeddings.contiguous(), "landmarks": self.landmarks.contiguous(),
            "poses": self.poses.contiguous(), "crop_bytes": torch.from_numpy(blob), "crop_sizes": sizes,
        }, str(directory / BANK_FILE))
        meta = {
            "format": FORMAT, "version": 1, "faces": len(self), "embedder": self.embedder_name,
            "threshold": round(self.threshold, 6), "distance": "l2", "crop_size": self.crop_size, "crop_codec": "jpeg",
            "landmarks": "iBUG-68 in crop coordinates divided by crop_size", "pose": "yaw, pitch, roll in degrees",
            "sources": self.sources, "info": self.info,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "DelegateBank":
        """Read a bank written by ``save_pretrained`` from a local folder."""
        directory = Path(directory)
        if not (directory / META_FILE).is_file():
            raise AnonModelError(f"{directory} holds no delegate bank ({META_FILE} missing)")
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise AnonModelError(f"{directory / META_FILE} is not a delegate bank")
        t = load_file(str(directory / BANK_FILE))
        blob, ends = t["crop_bytes"].numpy().tobytes(), t["crop_sizes"].cumsum(0).tolist()
        crops = [blob[a:b] for a, b in zip([0] + ends[:-1], ends)]
        return cls(embeddings=t["embeddings"], landmarks=t["landmarks"], poses=t["poses"], crops=crops,
                   sources=meta["sources"], embedder=meta["embedder"], threshold=meta["threshold"],
                   crop_size=meta["crop_size"], info=meta.get("info"))

    @classmethod
    def default(cls) -> "DelegateBank":
        """The bank shipped with the package (faces of the bundled public-domain photos, dlib features)."""
        return cls.load(DEFAULT_BANK_DIR)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *,
                        subfolder: str | None = None) -> "DelegateBank":
        """Load a bank from a local folder or a Hub repo id (``subfolder`` inside it); None = the bundled default."""
        if source is None:
            return cls.default()
        local = Path(source) / (subfolder or "")
        if local.is_dir():
            return cls.load(local)
        from huggingface_hub import snapshot_download

        prefix = f"{subfolder}/" if subfolder else ""
        root = snapshot_download(str(source), allow_patterns=[prefix + BANK_FILE, prefix + META_FILE])
        return cls.load(Path(root) / (subfolder or ""))


class _Builder:
    """Accumulates faces, embedding them in batches so memory stays bounded for large folders."""

    def __init__(self, embedder: Embedder, jpeg_quality: int, batch_size: int) -> None:
        self.embedder, self.quality, self.batch_size = embedder, jpeg_quality, batch_size
        self.crops, self.sources, self.landmarks, self.poses, self.embeddings = [], [], [], [], []
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.crop_size: int | None = None

    def __len__(self) -> int:
        return len(self.crops)

    def add(self, face: Face, source: str) -> None:
        size = face.crop.shape[0]
        if self.crop_size not in (None, size):
            raise ValueError(f"all crops of a bank must have one size, got {size} and {self.crop_size}")
        self.crop_size = size
        bgr = np.ascontiguousarray(face.crop[..., ::-1])
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise AnonModelError(f"could not encode the crop of {source}")
        self.crops.append(jpeg.tobytes())
        self.sources.append(source)
        self.landmarks.append(np.asarray(face.crop_landmarks, np.float32) / size)
        self.poses.append(np.asarray(face.pose, np.float32))
        self._pending.append((face.crop, np.asarray(face.crop_landmarks, np.float32)))
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            crops, landmarks = map(np.stack, zip(*self._pending))
            self.embeddings.append(self.embedder(crops, landmarks))
            self._pending = []

    def finish(self, info: dict[str, Any] | None) -> DelegateBank:
        self._flush()
        if not self.crops:
            raise AnonModelError("no face found: the delegate bank would be empty")
        return DelegateBank(
            embeddings=torch.cat(self.embeddings), landmarks=torch.from_numpy(np.stack(self.landmarks)),
            poses=torch.from_numpy(np.stack(self.poses)), crops=self.crops, sources=self.sources,
            embedder=self.embedder.name, threshold=self.embedder.threshold, crop_size=self.crop_size, info=info,
        )


def _embedder(identity: Embedder | str) -> Embedder:
    return identity if isinstance(identity, Embedder) else load_embedder(identity)


def _default_analyzer():
    from anon_model.perception import FaceAnalyzer

    return FaceAnalyzer()


def _unconditional_pipeline(model: str, device: str):
    """Load a diffusers unconditional image pipeline; a DDPM gets a DDIM scheduler (same weights, fewer steps)."""
    from diffusers import DDIMPipeline, DDIMScheduler, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(model)
    if hasattr(pipe, "unet") and hasattr(pipe, "scheduler") and not isinstance(pipe, DDIMPipeline):
        pipe = DDIMPipeline(unet=pipe.unet, scheduler=DDIMScheduler.from_config(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
