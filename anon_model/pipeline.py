"""AnonPipeline: step 1 (AnonPreprocessor: IFA + VCA) -> step 2 (a synthesizer) -> identity guard -> paste-back.

Loadable as one folder (``model_index.json`` naming each component and its subfolder), like a diffusers pipeline.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anon_model import __version__
from anon_model.conditioning import FaceConditioning
from anon_model.fallback import FALLBACKS, REPLACE_WITH, obscure, obscuring_method, unsuitable
from anon_model.guard import BestTries, IdentityGuard
from anon_model.imageio import ImageLike, atomic_write, load_image
from anon_model.output import AnonOutput, Step2Result, face_record
from anon_model.perception.align import paste_back, warp_to_crop
from anon_model.perception.face import Face
from anon_model.preprocessor import PreprocessorConfig

INDEX_FILE = "model_index.json"
COMPONENTS = ("preprocessor", "bank", "synthesizer")
#: Index keys written by earlier versions, still read: the step-2 slot was called "generator".
LEGACY_KEYS = {"synthesizer": "generator"}
#: ``__call__``'s stages in order, as a ``timer`` sees them (``anon-model bench`` times each).
STAGES = ("detect", "landmarks", "align", "ifa", "vca", "synthesis", "guard", "paste_back")
Timer = Callable[[str], AbstractContextManager]


class AnonPipeline:
    """Anonymize every face of a photo; see DESIGN.md for the data path and `__call__` for one readable pass.

    Components: ``preprocessor`` (step 1, ``AnonPreprocessor``), ``bank`` (``DelegateBank``) and ``synthesizer``
    (step 2: a trained ``FaceAnonGenerator`` or the ``TrainingFreeSynthesizer``).
    """

    def __init__(self, *, preprocessor, bank, synthesizer) -> None:
        self.preprocessor, self.bank, self.synthesizer = preprocessor, bank, synthesizer

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *, device: str = "cpu",
                        revision: str | None = None, token: str | bool | None = None,
                        cache_dir: str | None = None, local_files_only: bool = False,
                        allow_downloads: bool = False) -> "AnonPipeline":
        """Load from a local folder, a Hugging Face Hub repo id, or None for the built-in offline default.

        A local folder loads local files only: a component that would download weights (identity "facenet" not in
        the cache, say) is an error unless ``allow_downloads``. A Hub id allows downloads unless ``local_files_only``.
        """
        from anon_model.downloads import downloads_allowed

        if source is None:
            return cls.default(device=device)
        path = Path(source)
        may_download = allow_downloads
        if not path.is_dir():
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(repo_id=str(source), revision=revision, token=token,
                                          cache_dir=cache_dir, local_files_only=local_files_only))
            may_download = not local_files_only
        index_path = path / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"{path} has no {INDEX_FILE}: not an AnonPipeline folder")
        index = json.loads(index_path.read_text())
        parts = {}
        with downloads_allowed(may_download):
            for name in COMPONENTS:
                key = name if name in index else LEGACY_KEYS.get(name, name)
                if key not in index:
                    raise FileNotFoundError(f"{index_path} names no {name!r} component")
                parts[name] = _load_component(index[key], path / key, device)
        return cls(**parts)

    @classmethod
    def default(cls, *, device: str = "cpu") -> "AnonPipeline":
        """The offline default: MTCNN + dlib perception, dlib-port Psi, the bundled delegate bank, training-free step 2."""
        from anon_model.bank import DelegateBank
        from anon_model.preprocessor import AnonPreprocessor
        from anon_model.synthesis import TrainingFreeSynthesizer

        return cls(preprocessor=AnonPreprocessor(device=device), bank=DelegateBank.default(),
                   synthesizer=TrainingFreeSynthesizer())

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
        return getattr(self.synthesizer, "description", type(self.synthesizer).__name__)

    def __call__(self, image: ImageLike, *, seed: int | None = 0, k_top: int | None = None,
                 epsilon: float | None = None, k_neighbors: int | None = None, replace_with: str = "anonymize",
                 fallback: str = "mosaic", timer: Timer | None = None, faces: list[Face] | None = None,
                 face_seeds: Sequence[int] | None = None, **options) -> AnonOutput:
        """Anonymize every face of `image`; the same seed gives the same output. Each face's record says what it got.

        `replace_with`: "anonymize" (the method), or "mosaic" / "blur" / "solid" for every face, or "none" (detect
        only). `fallback`: how faces step 2 cannot handle, or that the identity guard still recognizes, are obscured
        ("none" leaves them, and they are reported as failed). `options` override `PreprocessorConfig` fields for this
        call only (e.g. use_ifa=False for an ablation). `timer(stage)`, when given, returns a context manager wrapped
        around each stage (see ``STAGES``). `faces`: the photo's faces from ``perceive`` (perception is then skipped;
        a video tracks them in between). `face_seeds`: one seed per face, left to right, each face drawing (first try
        and redraws) from its own generator instead of one for the photo (a video's track keeps its delegates).
        """
        _check_choice("replace_with", replace_with, REPLACE_WITH)
        _check_choice("fallback", fallback, (*FALLBACKS, "none"))
        stage = timer or _untimed
        cfg = self.preprocessor.resolve(k_top=k_top, epsilon=epsilon, k_neighbors=k_neighbors, **options)
        rgb = load_image(image)
        rng = torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63))  # global RNG untouched
        notes = [f"step 2: {self.step2_name}"]
        if faces is None:
            faces = self.perceive(rgb, cfg, timer)
        rngs = [rng] * len(faces) if face_seeds is None else _face_generators(face_seeds, len(faces))
        if not faces:
            notes.append("no face found: the photo is returned unchanged")
            return AnonOutput(image=Image.fromarray(rgb), faces=[], notes=notes)
        # triage: the faces step 2 can anonymize; the others are obscured, each with its reason
        reasons = [unsuitable(f) if replace_with == "anonymize" else f"replace_with={replace_with!r}" for f in faces]
        chosen = [i for i, reason in enumerate(reasons) if reason is None]
        step2 = dict(zip(chosen, self._anonymize([faces[i] for i in chosen], cfg, [rngs[i] for i in chosen],
                                                 stage))) if chosen else {}
        for i, result in step2.items():
            if not result.guard.passed:
                reasons[i] = result.guard.reason()
        method = obscuring_method(replace_with, fallback)
        with stage("paste_back"):
            out = rgb
            for i, result in step2.items():
                out = paste_back(out, result.crop, faces[i].matrix, faces[i].mask)
            for face, reason in zip(faces, reasons):
                if reason is not None and method != "none":
                    out = obscure(out, face, method)
        records = []
        for i, (face, reason) in enumerate(zip(faces, reasons)):
            treatment = _treatment(reason, replace_with, fallback)
            crop = step2[i].crop if reason is None else warp_to_crop(out, face.matrix, face.crop.shape[0])
            records.append(face_record(face, crop, step2.get(i), use_ifa=cfg.use_ifa, treatment=treatment,
                                       reason=reason or ""))
        notes += [f"face {i + 1}: {r.treatment}, {r.treatment_reason}" for i, r in enumerate(records) if r.treatment_reason]
        return AnonOutput(image=Image.fromarray(out), faces=records, notes=notes)

    def perceive(self, rgb: np.ndarray, cfg: PreprocessorConfig, timer: Timer | None = None) -> list[Face]:
        """Every face of `rgb`, left to right: boxes, 68 landmarks S_x, pose, aligned 256x256 crop x and its mask
        (``__call__``'s first stages, public so a video can track the faces before anonymizing them)."""
        stage, analyzer = timer or _untimed, self.preprocessor.analyzer
        with stage("detect"):
            detections = analyzer.detect(rgb, threshold=cfg.detect_threshold, max_faces=cfg.max_faces)
        with stage("landmarks"):
            points = analyzer.landmark(rgb, detections)
        with stage("align"):
            return analyzer.align(rgb, detections, points)

    def _anonymize(self, faces: list[Face], cfg: PreprocessorConfig, rngs: list[torch.Generator],
                   stage: Timer) -> list[Step2Result]:
        """The paper's method for the faces step 2 can handle: IFA -> VCA -> synthesis -> identity guard, with the
        failures' delegates redrawn (at most ``cfg.guard_attempts`` tries); each face keeps its best try and draws
        from ``rngs[i]`` (one shared generator for a photo, or one per face)."""
        pre, bank = self.preprocessor, self.bank
        with stage("ifa"):  # explain (§3.1): H, H-hat and the recast Z_id of every face
            explained = pre.explain(faces, bank=bank, config=cfg)
        with stage("vca"):  # draw delegates (§3.2): Z_a and S-hat_x -> Z_g
            queries = pre.bank_queries(faces, explained, bank=bank)
            conds, delegates = map(list, zip(*[pre.draw_delegates(f, e, q, bank=bank, generator=r, config=cfg)
                                               for f, e, q, r in zip(faces, explained, queries, rngs)]))
        guard = IdentityGuard(pre.identity, others=pre.bank_features(bank))
        originals = torch.stack([e.feature.detach() for e in explained]).float()
        tries, todo, effort = BestTries(len(faces)), list(range(len(faces))), 0.0
        for attempt in range(1, cfg.guard_attempts + 1):
            with stage("synthesis"):  # synthesize (§3.3)
                crops = self._synthesize([conds[i] for i in todo], [rngs[i] for i in todo], effort)
            with stage("guard"):  # verify: is each result far from its original and from every bank identity?
                tries.add(todo, crops, delegates, guard.verify(crops, [conds[i] for i in todo], originals[todo]))
            todo = tries.failing(guard.limit)
            if not todo or attempt == cfg.guard_attempts:
                break
            with stage("vca"):  # redraw the failures' delegates; the synthesizer may also change more (effort)
                for i in todo:
                    conds[i], delegates[i] = pre.draw_delegates(faces[i], explained[i], queries[i], bank=bank,
                                                                generator=rngs[i], config=cfg)
            effort = attempt / (cfg.guard_attempts - 1)
        return [Step2Result(explained[i], t.delegates, _to_uint8(t.crop), tries.outcome(i, guard))
                for i, t in enumerate(tries.best)]

    def _synthesize(self, conds: list[FaceConditioning], rngs: list[torch.Generator], effort: float) -> torch.Tensor:
        """Step 2 in one batch when the faces share a generator (a photo), else face by face, each with its own."""
        if all(r is rngs[0] for r in rngs):
            return self.synthesizer.synthesize(conds, generator=rngs[0], effort=effort)
        return torch.cat([self.synthesizer.synthesize([c], generator=r, effort=effort) for c, r in zip(conds, rngs)])


def _face_generators(seeds: Sequence[int], n_faces: int) -> list[torch.Generator]:
    """One generator per face from ``face_seeds`` (exactly one seed per face, or a clear error)."""
    if len(seeds) != n_faces:
        raise ValueError(f"face_seeds has {len(seeds)} seed(s) for {n_faces} face(s): give one per face")
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _treatment(reason: str | None, replace_with: str, fallback: str) -> str:
    """What a face got: anonymized (nothing stood in the way), unchanged (asked for), else obscured, or failed when
    step 2 could not anonymize it and the fallback is "none"."""
    if reason is None:
        return "anonymized"
    if replace_with == "none":
        return "unchanged"
    return "failed" if replace_with == "anonymize" and fallback == "none" else "obscured"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A clear error for an option value no stage understands."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _untimed(stage: str) -> AbstractContextManager:
    """The default timer: nothing."""
    return nullcontext()


def _to_uint8(crop: torch.Tensor) -> np.ndarray:
    """A synthesized crop (3,S,S) in [0,1] as (S,S,3) uint8."""
    return (crop.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _load_component(entry: list[str], folder: Path, device: str):
    """Import the class named in the index (anon_model's own modules only) and load it from its folder."""
    module_name, class_name = entry
    if module_name.split(".")[0] != "anon_model":
        raise ValueError(f"refusing to import {module_name!r}: pipeline components must come from anon_model")
    if not folder.is_dir():  # never read as a Hub id: the pipeline folder is incomplete
        raise FileNotFoundError(f"{folder}: folder of the {folder.name!r} component missing (named in {INDEX_FILE})")
    cls = getattr(importlib.import_module(module_name), class_name)
    component = cls.from_pretrained(folder) if not _takes_device(cls) else cls.from_pretrained(folder, device=device)
    return component.eval() if isinstance(component, torch.nn.Module) else component


def _takes_device(cls) -> bool:
    import inspect

    return "device" in inspect.signature(cls.from_pretrained).parameters
