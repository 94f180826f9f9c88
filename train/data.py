"""Training data (paper §3.4, §4.1): faces from any image folder, preprocessed once into a cache.

``prepare_cache`` runs step 1 (``step1``: the same ``AnonPreprocessor`` and bank an exported pipeline runs) on every
photo (largest face: crop, 68 landmarks, mask, Psi's raw feature f and Z_id = the IFA-recast f_x) and stores them
per photo; ``FaceDataset`` then
builds Z_a(x) (x's own foreground) and Z_g(x) (x's own landmarks + background) on the fly and pairs every x with
a random identity provider y. Any folder works: CelebA-HQ's flat ``CelebA-HQ-img/``, FFHQ's numbered subfolders,
or a plain folder of photos. The cache holds face crops: it lives where the user points ``--cache`` (default
inside the training output folder), never next to the data.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from anon_model import imageio

CACHE_FORMAT = 2  # 2: features from AnonPreprocessor (codebook = the bank's own embeddings, as at inference)
MANIFEST = "manifest.json"
FEATURES = "features.npz"


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively, sorted): flat CelebA-HQ, nested FFHQ or any photo folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {root} does not exist")
    return imageio.find_images(root, recursive=True)[0]


@dataclass(frozen=True)
class CacheSpec:
    """What the cached features were computed with; a different spec gets its own cache subfolder."""

    identity_backend: str = "dlib"
    z_id_source: str = "ifa"  # "ifa": Z_id = IFA-recast f_x (paper §3.1); "identity": the raw embedding
    ifa: dict = field(default_factory=dict)  # keyword arguments of the IFA anonymizer
    crop_size: int = 256

    def key(self) -> str:
        """A short stable hash naming this spec's cache subfolder."""
        blob = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def step1(spec: CacheSpec, *, device: str | torch.device = "cpu"):
    """The ``AnonPreprocessor`` and delegate bank of ``spec``: what makes Z_id in training and in the exported pipeline.

    ``spec.ifa`` holds ``k_top``, ``weights`` (Eq. 5's w_i) and ``codebook``: the delegate bank (folder or Hub id;
    None: the bundled one) whose faces are IFA's classes for a Psi without its own (dlib).
    """
    from anon_model.bank import DelegateBank
    from anon_model.preprocessor import AnonPreprocessor

    options = dict(spec.ifa)
    bank = DelegateBank.from_pretrained(options.pop("codebook", None))
    fields = {"k_top": "k_top", "weights": "ifa_weights"}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"unknown IFA option(s) {', '.join(unknown)} in the data config (known: codebook, "
                         f"{', '.join(fields)})")
    pre = AnonPreprocessor(identity=spec.identity_backend, use_ifa=spec.z_id_source == "ifa", device=str(device),
                           **{fields[k]: v for k, v in options.items()})
    if pre.analyzer.crop_size != spec.crop_size:
        raise ValueError(f"crop_size {spec.crop_size}: the pipeline aligns faces to {pre.analyzer.crop_size} pixels")
    return pre, bank


class FacePreprocessor:
    """One photo -> its largest face's crop, landmarks, mask, raw identity feature f and Z_id, or None (no face)."""

    def __init__(self, spec: CacheSpec, *, device: str | torch.device = "cpu") -> None:
        self.pre, self.bank = step1(spec, device=device)

    def __call__(self, path: Path) -> dict[str, np.ndarray] | None:
        faces = self.pre.analyzer(path)
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        config = self.pre.config
        explained = self.pre.explain([face], bank=self.bank, config=config)[0]  # IFA gives f and the recast f_x
        z_id = explained.feature_distracted if config.use_ifa else explained.feature
        return {
            "crop": face.crop,
            "landmarks": face.crop_landmarks.astype(np.float32),
            "mask": face.mask.astype(np.float16),
            "f_id": explained.feature.detach().float().cpu().numpy(),
            "z_id": z_id.detach().float().cpu().numpy(),
        }


def _item_name(root: Path, path: Path) -> str:
    """Cache file name of a photo: a hash of its path relative to the data root."""
    return hashlib.sha1(str(path.relative_to(root)).encode()).hexdigest() + ".npz"


def _stamp(path: Path) -> np.ndarray:
    """Size and modification time: a changed photo is preprocessed again."""
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


def _is_fresh(item: Path, source: Path) -> bool:
    try:
        with np.load(item) as rec:
            return bool(np.array_equal(rec["stamp"], _stamp(source)))
    except (OSError, KeyError, ValueError):
        return False


def prepare_cache(
    root: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    spec: CacheSpec,
    process_index: int = 0,
    num_processes: int = 1,
    device: str | torch.device = "cpu",
    progress: Iterable | None = None,
) -> Path:
    """Preprocess this process's share of the photos under ``root`` into ``cache_dir/<spec key>/``; return it.

    Photos already cached with the same size and mtime are skipped; photos without a face are remembered as such.
    Call ``write_manifest`` once every process is done.
    """
    root, out = Path(root), Path(cache_dir) / spec.key()
    (out / "items").mkdir(parents=True, exist_ok=True)
    todo = [p for p in find_images(root)[process_index::num_processes] if not _is_fresh(out / "items" / _item_name(root, p), p)]
    if not todo:
        return out
    from anon_model.errors import ImageError
    from anon_model.imageio import atomic_write

    prep = FacePreprocessor(spec, device=device)
    for path in progress(todo) if progress else todo:
        try:
            record = prep(path)
        except ImageError as err:
            warnings.warn(f"skipping {path}: {err}", stacklevel=2)
            record = None
        item = out / "items" / _item_name(root, path)
        with atomic_write(item) as fh:
            np.savez_compressed(fh, stamp=_stamp(path), has_face=record is not None, **(record or {}))
    return out


def write_manifest(root: str | os.PathLike, cache: Path, *, spec: CacheSpec) -> dict:
    """Collect the cached faces into ``manifest.json`` and their features into ``features.npz`` (main process)."""
    root = Path(root)
    items, skipped, f_id, z_id = [], [], [], []
    for path in find_images(root):
        name = _item_name(root, path)
        with np.load(cache / "items" / name) as rec:
            if not rec["has_face"]:
                skipped.append(str(path.relative_to(root)))
                continue
            items.append({"source": str(path.relative_to(root)), "file": name})
            f_id.append(rec["f_id"])
            z_id.append(rec["z_id"])
    if len(items) < 2:
        raise ValueError(f"{root}: found {len(items)} usable faces; training needs at least 2 (x and a provider y)")
    np.savez(cache / FEATURES, f_id=np.stack(f_id), z_id=np.stack(z_id))
    manifest = {"format": CACHE_FORMAT, "root": str(root.resolve()), "spec": asdict(spec), "items": items,
                "skipped_no_face": skipped}
    (cache / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


class FaceDataset(Dataset):
    """Cached faces as training samples: x, Z_a(x), Z_g(x), S_x, mask, f_x / Z_id and a random provider y's f_y / Z_id."""

    def __init__(self, cache: str | os.PathLike) -> None:
        self.cache = Path(cache)
        self.manifest = json.loads((self.cache / MANIFEST).read_text())
        self.files = [self.cache / "items" / item["file"] for item in self.manifest["items"]]
        with np.load(self.cache / FEATURES) as feats:
            self.f_id = torch.from_numpy(feats["f_id"]).float()
            self.z_id = torch.from_numpy(feats["z_id"]).float()

    @property
    def z_id_dim(self) -> int:
        return self.z_id.shape[1]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from anon_model.conditioning import appearance_input, geometry_input

        with np.load(self.files[i]) as rec:
            crop, landmarks, mask = rec["crop"], rec["landmarks"], rec["mask"].astype(np.float32)
        j = (i + 1 + int(torch.randint(len(self) - 1, ()))) % len(self)  # identity provider y != x
        z_g = torch.from_numpy(geometry_input(crop, landmarks, mask))  # Z_g(x): x_b + S_x
        return {
            "x": torch.from_numpy(crop).permute(2, 0, 1).float() / 255,
            "z_a": torch.from_numpy(appearance_input(crop, mask)),  # Z_a(x): x's own foreground
            "z_g": z_g,
            "structure": z_g[3:],  # S_x rendered as a landmark map: D's second input
            "landmarks": torch.from_numpy(landmarks),
            "mask": torch.from_numpy(mask)[None],
            "f_id": self.f_id[i],
            "z_id": self.z_id[i],
            "f_id_y": self.f_id[j],
            "z_id_y": self.z_id[j],
        }
