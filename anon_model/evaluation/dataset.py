"""Evaluation datasets: a folder of photos, with identity labels when the layout gives them (IDS needs a gallery).

Layouts, tried in this order:

1. an identity file given explicitly or found in the folder: ``identities.json`` ({file: identity}) or a
   CelebA-style text file ``identity_CelebA.txt`` (``<file> <identity>`` per line). For CelebA-HQ (files ``0.jpg`` ...)
   the names are translated through ``CelebA-HQ-to-CelebA-mapping.txt`` (``idx orig_idx orig_file``) when present;
2. ``DIR/<identity>/*.jpg`` (LFW, VGGFace2): the subfolder is the identity;
3. a plain folder: photos without identity labels ("photos the project did not tune on", group photos): every face
   of each photo is scored against its own original (ReID, intrusion into the bank need no labels; IDS is n/a).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from anon_model.imageio import find_images

__all__ = ["Sample", "load_dataset", "EXAMPLES_DIR"]

#: The bundled public-domain photos (with ``identities.json``: obama*, biden, astronaut = 3 identities).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"
_ID_FILES = ("identities.json", "identity_CelebA.txt")
_CELEBA_HQ_MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"


@dataclass(frozen=True)
class Sample:
    """One photo of the dataset: its path, a stable key (the path relative to the dataset root) and its identity
    (None when the layout gives no label: then every face of the photo is scored, not only the largest)."""

    path: Path
    key: str
    identity: str | None


def _images(folder: Path, *, recursive: bool) -> list[Path]:
    """The photos of a dataset folder (by suffix or, failing that, by content)."""
    return find_images(folder, recursive=recursive)[0]


def _read_identity_file(path: Path) -> dict[str, str]:
    """{file name or relative path: identity} from a JSON object or whitespace-separated ``name identity`` lines."""
    if path.suffix.lower() == ".json":
        return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
    table = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            table[parts[0]] = parts[1]
    return table


def _celeba_hq_names(root: Path) -> dict[str, str]:
    """{CelebA-HQ file stem ("0"): original CelebA file ("000001.jpg")} from the CelebA-HQ mapping file, if present."""
    mapping = root / _CELEBA_HQ_MAPPING
    if not mapping.is_file():
        return {}
    names = {}
    for line in mapping.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            names[parts[0]] = parts[2]
    return names


def load_dataset(root: str | os.PathLike, *, identities: str | os.PathLike | None = None, limit: int | None = None,
                 seed: int = 0) -> list[Sample]:
    """The photos under `root` with their identity labels (None: unlabelled); `limit` draws a seeded random subset."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset folder")
    id_file = Path(identities) if identities else next((root / n for n in _ID_FILES if (root / n).is_file()), None)
    subfolders = [d for d in sorted(root.iterdir()) if d.is_dir() and _images(d, recursive=False)]
    if id_file is not None:
        table = _read_identity_file(id_file)
        hq = _celeba_hq_names(root)
        samples = []
        for path in _images(root, recursive=True):
            key = path.relative_to(root).as_posix()
            identity = table.get(key) or table.get(path.name) or table.get(hq.get(path.stem, ""))
            if identity is not None:
                samples.append(Sample(path, key, identity))
    elif subfolders and not _images(root, recursive=False):
        samples = [Sample(p, p.relative_to(root).as_posix(), d.name) for d in subfolders for p in _images(d, recursive=True)]
    else:
        samples = [Sample(p, p.name, None) for p in _images(root, recursive=False)]
    if not samples:
        raise FileNotFoundError(f"{root}: no photos found (or none named in the identity file)")
    if limit is not None and limit < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
        samples = [samples[i] for i in keep]
    return samples
