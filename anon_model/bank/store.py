"""The delegate bank of paper §3.2: the faces VAA and GSA draw appearance and geometry delegates from.

Per face it stores the aligned crop (JPEG bytes, decoded only when a face is chosen), the identity embedding in the
k-NN feature space, the 68 landmarks normalized to the crop, the head pose, (format version 2) the estimated
gender and age, and (version 3) the person the face belongs to, its skin tone (ITA) and (optional) its glasses
score (``anon_model.perception.glasses``), as ``bank.safetensors`` plus
``bank.json`` (metadata) in one folder. Banks of version 1 have no attribute estimates: they load with
``attributes`` None, and VAA then draws delegates without matching them; banks before version 3 take each face's
person from its source file (``identity_of_source``). A query must be embedded in the bank's own feature space
(``bank.embed``, or the identity network's own features when ``bank.shares_space(network)``).

"No one is put in" is judged against the bank's own calibration (``intrusion``, ``anon_model.bank.calibrate``): a
result intrudes on a bank person only when it comes closer to them than unrelated people come to this bank.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from anon_model.attributes import FaceAttributes, skin_tone
from anon_model.bank.calibrate import Intrusion, calibrate_intrusion
from anon_model.bank.embedder import Embedder, load_embedder
from anon_model.errors import AnonModelError, MissingWeightsError
from anon_model.perception.face import Face
from anon_model.perception.glasses import GLASSES_SCORE, glasses_score

__all__ = ["DelegateBank", "DEFAULT_BANK_DIR", "identity_of_source"]

BANK_FILE, META_FILE = "bank.safetensors", "bank.json"
FORMAT = "anon_model.delegate_bank"
#: Version 2 added the per-face attribute estimates (optional: a bank built without them writes none); version 3 the
#: person of each face, its skin tone and the intrusion limit calibrated on the bank.
VERSION = 3
DEFAULT_BANK_DIR = Path(__file__).resolve().parents[1] / "assets" / "bank"


def identity_of_source(source: str) -> str:
    """The person of a bank face by its source label "path/to/photo.jpg#j": the photo's sub-folder when it has one
    (a folder per person), else the photo itself (one person per file)."""
    path = Path(source.rsplit("#", 1)[0])
    return path.parent.as_posix() if path.parent != Path(".") else path.stem


class DelegateBank:
    """A set of aligned faces with their identity embeddings, landmarks and poses (the candidates of IPD)."""

    def __init__(self, *, embeddings: torch.Tensor, landmarks: torch.Tensor, poses: torch.Tensor,
                 crops: Sequence[bytes], sources: Sequence[str], embedder: str, threshold: float,
                 crop_size: int, info: dict[str, Any] | None = None,
                 attributes: Sequence[FaceAttributes] | None = None, attributes_by: str | None = None,
                 identities: Sequence[str] | None = None, skin_tones: torch.Tensor | None = None,
                 glasses_scores: torch.Tensor | None = None, intrusion: Intrusion | None = None) -> None:
        n = len(crops)
        if not (embeddings.shape[0] == landmarks.shape[0] == poses.shape[0] == len(sources) == n):
            raise ValueError("embeddings, landmarks, poses, crops and sources must have one row per face")
        if attributes is not None and len(attributes) != n:
            raise ValueError(f"attributes must have one entry per face ({n}), got {len(attributes)}")
        if identities is not None and len(identities) != n:
            raise ValueError(f"identities must have one label per face ({n}), got {len(identities)}")
        self.embeddings = embeddings.float()  # (N, D)
        self.landmarks = landmarks.float()  # (N, 68, 2) in [0, 1] of the crop
        self.poses = poses.float()  # (N, 3) yaw, pitch, roll in degrees
        self.crops = list(crops)  # JPEG bytes of the aligned crops
        self.sources = list(sources)
        self.embedder_name, self.threshold, self.crop_size = embedder, float(threshold), int(crop_size)
        self.info = dict(info or {})
        #: Estimated gender and age per face (None: a bank built without them), and the estimator that made them.
        self.attributes = None if attributes is None else list(attributes)
        self.attributes_by = attributes_by if attributes is not None else None
        #: The person each face belongs to (one label per face; faces of one person share it).
        self.identity_labels = list(identities) if identities is not None else [identity_of_source(s)
                                                                                for s in self.sources]
        self._skin_tones = None if skin_tones is None else torch.as_tensor(skin_tones).float()
        self._glasses_scores = None if glasses_scores is None else torch.as_tensor(glasses_scores).float()
        self._intrusion = intrusion
        self._embedder: Embedder | None = None
        self._identities: torch.Tensor | None = None

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
        """The embedder of the bank's feature space (loaded on first use, on the CPU)."""
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

    def shares_space(self, network: torch.nn.Module) -> bool:
        """Whether the identity network ``network`` gives this bank's features (then its own features query the bank)."""
        return self.embedder.shares_space(network)

    def distances(self, embedding: torch.Tensor) -> torch.Tensor:
        """l2 distance from one embedding (D,) to every face of the bank -> (N,)."""
        from anon_model.ipd import appearance_distance

        return appearance_distance(embedding.float().reshape(-1), self.embeddings)

    def identities(self) -> torch.Tensor:
        """(N,) long: a number per person (from ``identity_labels``), so a mixture of delegates draws distinct people
        and never counts one person twice."""
        if self._identities is None:
            codes = {label: i for i, label in enumerate(dict.fromkeys(self.identity_labels))}
            self._identities = torch.tensor([codes[label] for label in self.identity_labels], dtype=torch.long)
        return self._identities

    @property
    def people(self) -> int:
        """How many distinct people the bank holds."""
        return len(set(self.identity_labels))

    @property
    def intrusion(self) -> Intrusion:
        """The "no one is put in" limit calibrated on this bank (stored with it; calibrated now for older banks)."""
        if self._intrusion is None:
            self._intrusion = calibrate_intrusion(self.embeddings, self.identities(), fallback=self.threshold)
        return self._intrusion

    @property
    def skin_tones(self) -> torch.Tensor:
        """(N,) each face's skin tone as ITA degrees (stored; measured from the crops now for older banks)."""
        if self._skin_tones is None:
            self._skin_tones = self._per_face(skin_tone)
        return self._skin_tones

    @property
    def glasses_scores(self) -> torch.Tensor:
        """(N,) each face's glasses score (stored; measured from the crops now for banks saved without it)."""
        if self._glasses_scores is None:
            self._glasses_scores = self._per_face(glasses_score)
        return self._glasses_scores

    @functools.cached_property
    def attribute_codes(self) -> tuple[np.ndarray, torch.Tensor]:
        """The estimated attributes as arrays, for filtering hundreds of faces at once: (N,) each face's gender and
        (N,) its age bracket (``anon_model.attributes.age_bracket``). Needs ``attributes``."""
        return np.array([a.gender for a in self.attributes]), torch.tensor([a.bracket for a in self.attributes])

    def _per_face(self, measure) -> torch.Tensor:
        """(N,) ``measure(crop, landmarks)`` of every face, from its crop (for what a bank was saved without)."""
        size = self.crop_size
        values = [measure(self.crop(i, size), self.crop_landmarks(i, size).numpy()) for i in range(len(self))]
        return torch.tensor(values, dtype=torch.float32)

    @property
    def glasses(self) -> torch.Tensor:
        """Bool (N,): faces taken to wear glasses (score at least ``GLASSES_SCORE``)."""
        return self.glasses_scores >= GLASSES_SCORE

    def subset(self, indices: Sequence[int]) -> "DelegateBank":
        """A bank of the faces ``indices`` only (e.g. to hold people out for evaluation), recalibrated on them."""
        idx = [int(i) for i in indices]
        return DelegateBank(
            embeddings=self.embeddings[idx], landmarks=self.landmarks[idx], poses=self.poses[idx],
            crops=[self.crops[i] for i in idx], sources=[self.sources[i] for i in idx], embedder=self.embedder_name,
            threshold=self.threshold, crop_size=self.crop_size, info=self.info,
            attributes=None if self.attributes is None else [self.attributes[i] for i in idx],
            attributes_by=self.attributes_by, identities=[self.identity_labels[i] for i in idx],
            skin_tones=None if self._skin_tones is None else self._skin_tones[idx],
            glasses_scores=None if self._glasses_scores is None else self._glasses_scores[idx])

    def same_identity(self, embedding: torch.Tensor) -> torch.Tensor:
        """Bool (N,): faces within the verification threshold of ``embedding`` (never returned as delegates)."""
        return self.distances(embedding) < self.threshold

    # ---- building (anon_model.bank.build, anon_model.bank.synth) ----------------------------------
    @classmethod
    def from_faces(cls, faces: Iterable[Face], sources: Iterable[str], **options) -> "DelegateBank":
        """A bank from analyzed faces (``FaceAnalyzer`` records) and a source label for each; see ``build.from_faces``."""
        from anon_model.bank.build import from_faces

        return cls(**from_faces(faces, sources, **options))

    @classmethod
    def build(cls, folder: str | os.PathLike, **options) -> "DelegateBank":
        """Every face of every photo under ``folder``; see ``anon_model.bank.build.from_folder`` for the options."""
        from anon_model.bank.build import from_folder

        return cls(**from_folder(folder, **options))

    @classmethod
    def synthesize(cls, n: int, **options) -> "DelegateBank":
        """``n`` synthetic faces of no one from a diffusers face model; see ``anon_model.bank.synth.synthesize``."""
        from anon_model.bank.synth import synthesize

        return cls(**synthesize(n, **options))

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
            "skin_tones": self.skin_tones.contiguous(),
        }, str(directory / BANK_FILE))
        meta = {
            "format": FORMAT, "version": VERSION, "faces": len(self), "embedder": self.embedder_name,
            "threshold": round(self.threshold, 6), "distance": "l2", "crop_size": self.crop_size, "crop_codec": "jpeg",
            "landmarks": "iBUG-68 in crop coordinates divided by crop_size", "pose": "yaw, pitch, roll in degrees",
            "sources": self.sources, "identities": self.identity_labels, "intrusion": self.intrusion.to_json(),
            "skin_tone": "ITA degrees of the skin between jaw and brows (anon_model.attributes.skin_tone)",
            "glasses_scores": [round(float(g), 3) for g in self.glasses_scores],
            "glasses_score": "edge across the nose bridge (anon_model.perception.glasses.glasses_score)",
            "info": self.info,
        }
        if self.attributes is not None:
            meta["attributes"] = {"estimated_by": self.attributes_by, "gender": [a.gender for a in self.attributes],
                                  "age": [a.age for a in self.attributes]}
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
        if int(meta.get("version", 1)) > VERSION:
            raise AnonModelError(f"{directory} holds a delegate bank of format version {meta['version']}; this "
                                 f"anon_model reads up to version {VERSION}: upgrade anon_model")
        found = meta.get("attributes")
        attributes = None if found is None else [FaceAttributes(g, float(a)) for g, a in zip(found["gender"], found["age"])]
        t = load_file(str(directory / BANK_FILE))
        blob, ends = t["crop_bytes"].numpy().tobytes(), t["crop_sizes"].cumsum(0).tolist()
        crops = [blob[a:b] for a, b in zip([0] + ends[:-1], ends)]
        return cls(embeddings=t["embeddings"], landmarks=t["landmarks"], poses=t["poses"], crops=crops,
                   sources=meta["sources"], embedder=meta["embedder"], threshold=meta["threshold"],
                   crop_size=meta["crop_size"], info=meta.get("info"), attributes=attributes,
                   attributes_by=None if found is None else found.get("estimated_by"),
                   identities=meta.get("identities"), skin_tones=t.get("skin_tones"),
                   glasses_scores=meta.get("glasses_scores"),
                   intrusion=Intrusion.from_json(meta["intrusion"]) if "intrusion" in meta else None)

    @classmethod
    def default(cls) -> "DelegateBank":
        """The bank shipped with the package (faces of the bundled public-domain photos, dlib features)."""
        return cls.load(DEFAULT_BANK_DIR)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *,
                        subfolder: str | None = None) -> "DelegateBank":
        """Load a bank from a local folder or a Hub repo id (``subfolder`` inside it); None = the bundled default.

        Its feature space is checked now: an ArcFace pack that must be downloaded is fetched (or refused, see
        ``anon_model.downloads``) here, not at the first photo."""
        from anon_model.bank.embedder import arcface_file
        from anon_model.downloads import require_download

        if source is None:
            return cls.default()
        local = Path(source) / (subfolder or "")
        if local.is_dir():
            bank = cls.load(local)
        else:
            from huggingface_hub import snapshot_download

            require_download(f"delegate bank {str(local)!r}", "give an existing bank folder")
            prefix = f"{subfolder}/" if subfolder else ""
            root = snapshot_download(str(source), allow_patterns=[prefix + BANK_FILE, prefix + META_FILE])
            bank = cls.load(Path(root) / (subfolder or ""))
        if bank.embedder_name.split(":", 1)[0] == "arcface":
            arcface_file()
        return bank
