"""Training data (paper §3.4, §4.1): faces from any image folder, preprocessed once into a cache.

``prepare_cache`` runs step 1's perception on every photo (largest face: crop, 68 landmarks, mask) and the
identity network (raw feature f and Z_id = the IFA-recast f_x) and stores them per photo; ``FaceDataset`` then
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

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
FEATURES = "features.npz"


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every image file under ``root`` (recursively, sorted): flat CelebA-HQ, nested FFHQ or any photo folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {root} does not exist")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


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


class FacePreprocessor:
    """One photo -> its largest face's crop, landmarks, mask, raw identity feature f and Z_id, or None (no face)."""

    def __init__(self, spec: CacheSpec, *, device: str | torch.device = "cpu") -> None:
        from anon_model.identity import load_identity_network
        from anon_model.perception import FaceAnalyzer

        self.spec = spec
        self.analyzer = FaceAnalyzer(crop_size=spec.crop_size, device=str(device))
        self.identity = load_identity_network(spec.identity_backend, device=device)
        self.anonymizer = _load_ifa(self.identity, spec) if spec.z_id_source == "ifa" else None

    def __call__(self, path: Path) -> dict[str, np.ndarray] | None:
        faces = self.analyzer(path)
        if not faces:
            return None
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        param = next(self.identity.parameters())
        crop = torch.from_numpy(face.crop).permute(2, 0, 1)[None].to(param.device, torch.float32) / 255
        landmarks = torch.from_numpy(face.crop_landmarks)[None].to(param.device, torch.float32)
        if self.anonymizer is None:
            with torch.no_grad():
                f_id = z_id = self.identity.embed(crop, landmarks=landmarks)[0]
        else:  # IFA gives both Psi's feature f and the recast f_x
            result = self.anonymizer(crop, landmarks=landmarks)[0]
            f_id, z_id = result.feature, result.feature_distracted
        return {
            "crop": face.crop,
            "landmarks": face.crop_landmarks.astype(np.float32),
            "mask": face.mask.astype(np.float16),
            "f_id": f_id.detach().float().cpu().numpy(),
            "z_id": z_id.detach().float().cpu().numpy(),
        }


def _load_ifa(identity, spec: CacheSpec):
    """IFA around ``identity``; a network without classes (dlib) gets a codebook of a delegate bank's faces.

    ``spec.ifa`` holds IdentityFeatureAnonymizer's options plus ``codebook``: a delegate-bank folder or Hub id
    (None: the bank bundled with anon_model). Ignored for networks with their own classes (FaceNet's VGGFace2).
    """
    from anon_model.ifa import IdentityFeatureAnonymizer, has_class_head

    options = dict(spec.ifa)
    bank_source = options.pop("codebook", None)
    if not has_class_head(identity):
        from anon_model.bank import DelegateBank
        from anon_model.identity.codebook import IdentityCodebook

        options["codebook"] = IdentityCodebook.from_bank(identity, DelegateBank.from_pretrained(bank_source))
    return IdentityFeatureAnonymizer(identity, **options)


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
        from anon_model.perception.render import appearance_input, geometry_input

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
