"""Hugging Face ``datasets``: anonymize an image column (``anonymize_dataset``) and ``anon-model anonymize-dataset``.

Needs the ``datasets`` package (``pip install 'anon_model[datasets]'``). The images go through the pipeline
``batch_size`` at a time (one list call per ``Dataset.map`` batch); the other columns are kept as they are. Rows
are not cached between calls (``load_from_cache_file=False``): a cache keyed without the pipeline could hand back
another model's results.
"""
from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anon_model.errors import AnonModelError
from anon_model.extras import require
from anon_model.fallback import REPLACE_WITH

if TYPE_CHECKING:
    import datasets

    from anon_model.pipeline import AnonPipeline

__all__ = ["anonymize_dataset", "load_any", "add_dataset_arguments", "run_anonymize_dataset"]


def anonymize_dataset(ds: datasets.Dataset, pipe: AnonPipeline, *, image_column: str = "image",
                      batch_size: int = 8, seed: int | None = 0, faces_column: str | None = None,
                      **options) -> datasets.Dataset:
    """A new dataset with every image of ``image_column`` anonymized (same rows, order and other columns).

    ``options`` go to each pipeline call (``replace_with``, ``fallback``, ``detect_threshold``, ...). With
    ``faces_column``, each row also gets what its faces got (box, treatment, reason; no pixels). A face left
    recognizable (``fallback="none"``) is an error naming the row, never a silently published face.
    """
    datasets = require("datasets", "anonymize_dataset")
    if image_column not in ds.column_names:
        raise ValueError(f"no column {image_column!r} in the dataset (columns: {', '.join(ds.column_names)})")
    features = ds.features.copy()
    features[image_column] = datasets.Image()
    if faces_column:
        features[faces_column] = [{"box": datasets.Sequence(datasets.Value("float32")),
                                   "treatment": datasets.Value("string"), "reason": datasets.Value("string")}]

    def anonymize(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        images = [image.convert("RGB") for image in batch[image_column]]
        results = pipe(images, seed=seed, **options).split()
        for row, result in zip(indices, results):
            if result.counts()["failed"]:
                raise AnonModelError(f"row {row}: {result.counts()['failed']} face(s) could not be anonymized "
                                     "(fallback none): nothing written")
        batch[image_column] = [result.image for result in results]
        if faces_column:
            batch[faces_column] = [[{"box": [float(v) for v in f.box], "treatment": f.treatment,
                                     "reason": f.treatment_reason} for f in result.faces] for result in results]
        return batch

    return ds.map(anonymize, batched=True, batch_size=batch_size, with_indices=True, features=features,
                  load_from_cache_file=False, new_fingerprint=uuid.uuid4().hex, desc="anonymizing")


def load_any(name_or_dir: str, split: str) -> datasets.Dataset:
    """``split`` of a dataset: a folder written by ``save_to_disk``, else anything ``load_dataset`` reads (a Hub id,
    or a local folder of images / data files)."""
    datasets = require("datasets", "anon-model anonymize-dataset")
    path = Path(name_or_dir)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{path} has no split {split!r} (splits: {', '.join(loaded)})")
            return loaded[split]
        return loaded
    return datasets.load_dataset(name_or_dir, split=split)


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anon-model anonymize-dataset``."""
    parser.add_argument("dataset", metavar="NAME_OR_DIR",
                        help="a Hugging Face Hub dataset id, a folder written by save_to_disk, or a folder of images")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to save the new dataset to")
    parser.add_argument("--split", default="train", help="split to anonymize (default train)")
    parser.add_argument("--image-column", default="image", help="column holding the images (default image)")
    parser.add_argument("--faces-column", default=None, metavar="NAME",
                        help="also add a column NAME saying what each row's faces got (box, treatment, reason)")
    parser.add_argument("--push-to-hub", default=None, metavar="ID", help="also upload the result as dataset repo ID")
    parser.add_argument("--model", default=None, metavar="ID|DIR", help="pipeline (default: the built-in offline one)")
    parser.add_argument("--bank", default=None, metavar="DIR|ID",
                        help="delegate bank to draw from instead of the pipeline's")
    parser.add_argument("--device", default=None, help="torch device (default: CUDA when available, else the CPU)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for delegate sampling (default 0)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per pipeline call (default 8)")
    parser.add_argument("--replace-with", default="anonymize", choices=REPLACE_WITH,
                        help="what every detected face gets (default anonymize)")
    parser.add_argument("--threshold", "--thresh", type=float, default=None, metavar="T",
                        help="face detection confidence in [0, 1] (default 0.9)")
    parser.add_argument("--keep", nargs="+", action="extend", default=None, metavar="REF",
                        help="people to leave as they are: photos (or folders) of them, one face each "
                        "(as anon-model anonymize --keep; faces kept only when both recognizers agree)")


def run_anonymize_dataset(args: argparse.Namespace) -> int:
    """Run ``anon-model anonymize-dataset``: load, anonymize, save (and push)."""
    from anon_model.pipeline import AnonPipeline

    try:
        ds = load_any(args.dataset, args.split)
        pipe = AnonPipeline.from_pretrained(args.model, device=args.device, bank=args.bank or None)
        pipe.set_progress_bar_config(disable=True)  # Dataset.map shows its own
        options: dict[str, Any] = {"replace_with": args.replace_with, "detect_threshold": args.threshold,
                                   "keep": pipe.reference(args.keep) if args.keep else None}
        result = anonymize_dataset(ds, pipe, image_column=args.image_column, batch_size=args.batch_size,
                                   seed=args.seed, faces_column=args.faces_column, **options)
    except (AnonModelError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result.save_to_disk(args.output)
    print(f"anon-model: {len(result)} row(s) of {args.dataset} ({args.split}) -> {args.output}", file=sys.stderr)
    if args.push_to_hub:
        result.push_to_hub(args.push_to_hub)
        print(f"anon-model: pushed to the Hub as dataset {args.push_to_hub}", file=sys.stderr)
    return 0
