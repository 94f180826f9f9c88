"""AnonPipeline: step 1 (AnonPreprocessor: IFA + VCA) -> step 2 (a synthesizer) -> paste-back, loadable as one folder."""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path

import torch
from PIL import Image

from anon_model import __version__
from anon_model.imageio import ImageLike, atomic_write, load_image
from anon_model.output import AnonOutput
from anon_model.perception.align import invert, paste_back, transform_points

INDEX_FILE = "model_index.json"
COMPONENTS = ("preprocessor", "bank", "generator")


class AnonPipeline:
    """Anonymize every face of a photo; see DESIGN.md for the data path and `__call__` for one readable pass."""

    def __init__(self, *, preprocessor, bank, generator) -> None:
        self.preprocessor, self.bank, self.generator = preprocessor, bank, generator

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *, device: str = "cpu",
                        revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | None = None, local_files_only: bool = False) -> "AnonPipeline":
        """Load from a local folder, a Hugging Face Hub repo id, or None for the built-in offline default."""
        if source is None:
            return cls.default(device=device)
        path = Path(source)
        if not path.is_dir():
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(repo_id=str(source), revision=revision, token=token,
                                          cache_dir=cache_dir, local_files_only=local_files_only))
        index_path = path / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"{path} has no {INDEX_FILE}: not an AnonPipeline folder")
        index = json.loads(index_path.read_text())
        parts = {name: _load_component(index[name], path / name, device) for name in COMPONENTS}
        return cls(**parts)

    @classmethod
    def default(cls, *, device: str = "cpu") -> "AnonPipeline":
        """The offline default: MTCNN + dlib perception, dlib-port Psi, the bundled delegate bank, training-free step 2."""
        from anon_model.bank import DelegateBank
        from anon_model.preprocessor import AnonPreprocessor
        from anon_model.synthesis import TrainingFreeSynthesizer

        return cls(preprocessor=AnonPreprocessor(device=device), bank=DelegateBank.default(),
                   generator=TrainingFreeSynthesizer())

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write each component to its own subfolder plus `model_index.json` naming their classes."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        index: dict[str, object] = {"_class_name": type(self).__name__, "_anon_model_version": __version__}
        for name in COMPONENTS:
            component = getattr(self, name)
            component.save_pretrained(out / name)
            index[name] = [type(component).__module__, type(component).__name__]
        with atomic_write(out / INDEX_FILE, "w") as fh:
            json.dump(index, fh, indent=2)
        return out

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload AnonPipeline") -> str:
        """Save to a temporary folder (with the model card as README.md) and upload it as a Hub model repo."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            card = Path(__file__).resolve().parents[1] / "model_card.md"
            if card.is_file():
                (Path(tmp) / "README.md").write_text(card.read_text())
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message).commit_url

    # ------------------------------------------------------------------ inference
    @property
    def step2_name(self) -> str:
        """A one-line description of the step-2 synthesizer in use (the CLI and app print it)."""
        return getattr(self.generator, "description", type(self.generator).__name__)

    def __call__(self, image: ImageLike, *, seed: int | None = 0, k_top: int | None = None,
                 epsilon: float | None = None, k_neighbors: int | None = None, **options) -> AnonOutput:
        """Anonymize every face of `image`; the same seed gives the same output.

        `options` override `PreprocessorConfig` fields for this call only (e.g. use_ifa=False for an ablation).
        """
        rgb = load_image(image)
        rng = torch.Generator().manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        plans = self.preprocessor(rgb, bank=self.bank, k_top=k_top, epsilon=epsilon,
                                  k_neighbors=k_neighbors, generator=rng, **options)
        notes = [f"step 2: {self.step2_name}"]
        if not plans:
            notes.append("no face found: the photo is returned unchanged")
            return AnonOutput(image=Image.fromarray(rgb), faces=[], notes=notes)
        crops = self.preprocessor.synthesize_guarded(plans, self.generator, bank=self.bank, generator=rng)
        out = rgb
        records = []
        for plan, crop in zip(plans, crops):
            face, record = plan.face, plan.record
            out = paste_back(out, crop, face.matrix, face.mask)
            record.anonymized = crop
            if record.landmarks_anon_crop is not None:
                record.landmarks_anon = transform_points(record.landmarks_anon_crop, invert(face.matrix))
            records.append(record)
        return AnonOutput(image=Image.fromarray(out), faces=records, notes=notes)


def _load_component(entry: list[str], folder: Path, device: str):
    """Import the class named in the index (anon_model's own modules only) and load it from its folder."""
    module_name, class_name = entry
    if module_name.split(".")[0] != "anon_model":
        raise ValueError(f"refusing to import {module_name!r}: pipeline components must come from anon_model")
    cls = getattr(importlib.import_module(module_name), class_name)
    component = cls.from_pretrained(folder) if not _takes_device(cls) else cls.from_pretrained(folder, device=device)
    return component.eval() if isinstance(component, torch.nn.Module) else component


def _takes_device(cls) -> bool:
    import inspect

    return "device" in inspect.signature(cls.from_pretrained).parameters
