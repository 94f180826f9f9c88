"""AnonPipeline: step 1 (AnonPreprocessor: IFA + VCA) -> step 2 (a synthesizer) -> identity guard -> paste-back.

Loadable as one folder (``model_index.json`` naming each component and its subfolder), like a diffusers pipeline.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from anon_model import __version__
from anon_model.conditioning import FaceConditioning
from anon_model.errors import AnonModelError, failure_reason
from anon_model.fallback import FALLBACKS, MASK_SCALE, REPLACE_WITH, obscure, obscuring_method, unsuitable
from anon_model.guard import BestTries, IdentityGuard, InPhoto
from anon_model.imageio import ImageLike, atomic_write, load_image
from anon_model.keep import CHOSEN, KeepDecision, KeepJudge, Reference, ReferenceLike, load_reference_photo, \
    reference_photos, restore_kept
from anon_model.obscuring import Obscurer
from anon_model.output import AnonOutput, Step2Result, face_record, treatment_of
from anon_model.perception.align import as_pasted, paste_back, warp_to_crop
from anon_model.perception.analyzer import Timer, untimed
from anon_model.perception.face import Face
from anon_model.perception.search import SEARCH_MODES
from anon_model.plausibility import PlausibilityCheck, default_check
from anon_model.preprocessor import PreprocessorConfig
from anon_model.vca import DelegateDraw

if TYPE_CHECKING:
    from anon_model.bank import DelegateBank

INDEX_FILE = "model_index.json"
COMPONENTS = ("preprocessor", "bank", "synthesizer")
#: Index keys written by earlier versions, still read: the step-2 slot was called "generator".
LEGACY_KEYS = {"synthesizer": "generator"}
#: ``__call__``'s stages in order, as a ``timer`` sees them (``anon-model bench`` times each).
STAGES = ("detect", "landmarks", "align", "triage", "ifa", "vca", "synthesis", "guard", "paste_back")


class AnonPipeline:
    """Anonymize every face of a photo; see DESIGN.md for the data path and `__call__` for one readable pass.

    Components: ``preprocessor`` (step 1, ``AnonPreprocessor``), ``bank`` (``DelegateBank``) and ``synthesizer``
    (step 2: a trained ``FaceAnonGenerator`` or the ``TrainingFreeSynthesizer``).
    """

    def __init__(self, *, preprocessor, bank, synthesizer, torch_dtype: torch.dtype | None = None) -> None:
        self.preprocessor, self.bank, self.synthesizer = preprocessor, bank, synthesizer
        self.torch_dtype = _check_dtype(torch_dtype, self.device)
        self._progress: dict[str, Any] = {}

    # ------------------------------------------------------------------ device, precision, progress (diffusers-style)
    @property
    def device(self) -> torch.device:
        """Where the networks run (the identity network's device; perception follows it)."""
        return torch.device(self.preprocessor.device)

    def to(self, device: str | torch.device) -> "AnonPipeline":
        """Move every network (perception, identity, a trained synthesizer) to `device`; returns the pipeline."""
        self.preprocessor.to(device)
        self.__dict__.pop("keep_judge", None)  # its FaceNet-CASIA loads again, on the new device
        if isinstance(self.synthesizer, torch.nn.Module):
            self.synthesizer.to(device)
        self.torch_dtype = _check_dtype(self.torch_dtype, self.device)
        return self

    def set_progress_bar_config(self, **kwargs) -> None:
        """tqdm options for the progress bar of a list call (e.g. ``disable=True``, ``desc=``, ``leave=``)."""
        self._progress = dict(kwargs)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, source: str | os.PathLike | None = None, *, device: str | torch.device | None = None,
                        torch_dtype: torch.dtype | None = None,
                        bank: DelegateBank | str | os.PathLike | None = None, revision: str | None = None,
                        token: str | bool | None = None, cache_dir: str | None = None, local_files_only: bool = False,
                        allow_downloads: bool = False) -> "AnonPipeline":
        """Load from a local folder, a Hugging Face Hub repo id, or None for the built-in offline default.

        `device` None picks CUDA when available, else the CPU. `torch_dtype` (float16/bfloat16) runs the networks in
        that precision under autocast, where the device supports it. `bank` (a ``DelegateBank``, or the folder or
        Hub id of one from ``anon-model bank build``) replaces the pipeline's delegate bank, which is then not loaded,
        as diffusers takes a component at load; it follows the download rule below. A local folder loads local files only: a component that would download weights (identity
        "facenet" not in the cache, say) is an error unless ``allow_downloads``. A Hub id allows downloads unless
        ``local_files_only``.
        """
        from anon_model.downloads import downloads_allowed

        if source is None:
            return cls.default(device=device, torch_dtype=torch_dtype, bank=None if bank is None else _load_bank(bank))
        parts, may_download = cls._load_components(source, str(device or default_device()), skip_bank=bank is not None,
                                                   revision=revision, token=token, cache_dir=cache_dir,
                                                   local_files_only=local_files_only, allow_downloads=allow_downloads)
        if bank is not None:
            with downloads_allowed(may_download):  # the same rule as the pipeline's own components
                parts["bank"] = _load_bank(bank)
        return cls(**parts, torch_dtype=torch_dtype)

    @staticmethod
    def _load_components(source: str | os.PathLike, device: str, *, skip_bank: bool, revision: str | None,
                         token: str | bool | None, cache_dir: str | None, local_files_only: bool,
                         allow_downloads: bool) -> tuple[dict[str, Any], bool]:
        """The components of a saved pipeline (a folder, else a Hub repo id), by ``model_index.json`` (its bank
        left out with ``skip_bank``), and whether they may download weights."""
        from anon_model.downloads import downloads_allowed

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
                if name == "bank" and skip_bank:
                    continue
                key = name if name in index else LEGACY_KEYS.get(name, name)
                if key not in index:
                    raise FileNotFoundError(f"{index_path} names no {name!r} component")
                parts[name] = _load_component(index[key], path / key, device)
        return parts, may_download

    @classmethod
    def default(cls, *, device: str | torch.device | None = None, torch_dtype: torch.dtype | None = None,
                bank: DelegateBank | None = None) -> "AnonPipeline":
        """The offline default: MTCNN + dlib perception, dlib-port Psi, the bundled delegate bank (or ``bank``),
        training-free step 2."""
        from anon_model.bank import DelegateBank
        from anon_model.preprocessor import AnonPreprocessor
        from anon_model.synthesis import TrainingFreeSynthesizer

        return cls(preprocessor=AnonPreprocessor(device=str(device or default_device())),
                   bank=bank or DelegateBank.default(), synthesizer=TrainingFreeSynthesizer(), torch_dtype=torch_dtype)

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
            card = importlib.resources.files("anon_model") / "model_card.md"  # package data: a wheel has it too
            if card.is_file():
                (Path(tmp) / "README.md").write_text(card.read_text())
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message).commit_url

    # ------------------------------------------------------------------ inference
    @property
    def step2_name(self) -> str:
        """A one-line description of the step-2 synthesizer in use (the CLI and app print it)."""
        return getattr(self.synthesizer, "description", type(self.synthesizer).__name__)

    def __call__(self, image: ImageLike | Sequence[ImageLike], *, seed: int | None = 0, k_top: int | None = None,
                 epsilon: float | None = None, k_neighbors: int | None = None, replace_with: str = "anonymize",
                 fallback: str = "mosaic", mask_scale: float = MASK_SCALE, boxes: bool = False,
                 face_search: str = "auto", timer: Timer | None = None, faces: list[Face] | None = None,
                 face_seeds: Sequence[int] | None = None,
                 face_draws: Sequence[DelegateDraw | None] | None = None,
                 keep: ReferenceLike | Sequence[ReferenceLike] | None = None,
                 face_keeps: Sequence[KeepDecision | None] | None = None, keep_faces: Sequence[int] = (),
                 **options) -> AnonOutput:
        """Anonymize every face of `image` (or of each image of a list, as one batch); the same seed gives the same
        output. Each face's record says what it got.

        A list gives one output with ``images`` (same order) and every face's record (``image_index`` says whose);
        each image's result is the one it gets alone with the same seed, while the faces of all images go through
        IFA, VCA, synthesis and the guard together. `replace_with`: "anonymize" (the method), or "mosaic" / "blur" /
        "solid" for every face, or "none" (detect only). `fallback`: how faces step 2 cannot handle, or that the
        identity guard still recognizes, are obscured ("none" leaves them, and they are reported as failed).
        `mask_scale`, `boxes`: the area obscured for a face not anonymized: the ellipse inscribed in its box scaled by
        `mask_scale`, or with `boxes` that whole rectangle. `face_search`: which views of the photo are searched for
        faces ("upright", "auto": also an exposure-normalized copy and quarter turns when needed, "thorough": always
        all; ``perception/search.py``). `options` override `PreprocessorConfig` fields for this call only (e.g.
        use_ifa=False for an ablation). An error on one face (its landmarks, pose, alignment, step 2, the guard,
        paste-back) obscures that face with the error as its reason; the rest of the photo goes on.
        `timer(stage)`, when given, returns a context manager wrapped around each stage (see ``STAGES``). `faces`:
        the photo's faces from ``perceive`` (perception is then skipped; a video tracks them in between).
        `face_seeds`: one seed per face, left to right, each face drawing (first try and redraws) from its own
        generator instead of one for the photo. `face_draws`: per face, an earlier delegate draw (a record's
        ``delegate_draw``) to reuse, S-bar refitted to this face, or None to draw: a reused draw is its face's only
        try, rendered at the retry effort it was kept at and held to the naturalness limit plus ``KEPT_SLACK`` (if the
        guard rejects it the face is obscured, never shown as a second stranger: a video track stays one person).
        `keep`: the people to leave as they are (``anon_model.keep``): references from ``reference`` or photos of
        them (paths, folders, images); a face both recognizers match to one with room to spare is kept pixel for pixel
        (treatment "kept"), every other face is handled as without it.
        `face_keeps`: per face, a decision already taken (a video track's) instead of `keep`. `keep_faces`: faces
        to keep as they are by the user's own choice, by their index in the records (the app's per-face toggle).
        `faces`, `face_seeds`, `face_draws`, `face_keeps` and `keep_faces` need a single image.
        """
        _check_choice("replace_with", replace_with, REPLACE_WITH)
        _check_choice("fallback", fallback, (*FALLBACKS, "none"))
        _check_choice("face_search", face_search, SEARCH_MODES)
        batch = isinstance(image, (list, tuple))
        images = list(image) if batch else [image]
        if batch and (keep_faces or any(v is not None for v in (faces, face_seeds, face_draws, face_keeps))):
            raise ValueError("faces=, face_seeds=, face_draws=, face_keeps= and keep_faces= describe one photo: call "
                             "the pipeline on a single image")
        stage = timer or untimed
        cfg = self.preprocessor.resolve(k_top=k_top, epsilon=epsilon, k_neighbors=k_neighbors, **options)
        if replace_with != "anonymize" and keep is None and not keep_faces and faces is None and face_keeps is None:
            # every face alike, none kept: no step 1 or 2 (the same path as the CLI's light runs)
            return Obscurer(self.preprocessor.analyzer)(images, replace_with=replace_with,
                                                        mask_scale=mask_scale, boxes=boxes, face_search=face_search,
                                                        detect_threshold=cfg.detect_threshold,
                                                        max_faces=cfg.max_faces, timer=timer,
                                                        progress=self._progress_bar)
        references = self.reference(keep) if keep is not None else []
        rgbs = [load_image(im) for im in images]
        found = [faces] if faces is not None else [self.perceive(rgb, cfg, timer, search=face_search)
                                                   for rgb in self._progress_bar(rgbs)]
        # one generator per image (so batching does not change an image's result), or one per face (face_seeds)
        rngs = [_face_generators(face_seeds, len(found[0]))] if face_seeds is not None else [
            [rng] * len(f) for rng, f in zip(_image_generators(seed, len(rgbs)), found)]
        draws = [_per_face("face_draws", face_draws, len(found[0]))] if face_draws is not None else [
            [None] * len(f) for f in found]
        # triage: the faces to keep as they are; of the others, those step 2 can anonymize; the rest are obscured,
        # each with its reason
        with stage("triage"):
            keeps = [_per_face("face_keeps", face_keeps, len(found[0]))] if face_keeps is not None else [
                self.keep_judge.decide(rgb, fs, references) if references else [None] * len(fs)
                for rgb, fs in zip(rgbs, found)]
            keeps[0] = list(keeps[0])  # the caller's face_keeps stay as they were
            for i in keep_faces:
                if not 0 <= i < len(found[0]):
                    raise ValueError(f"keep_faces: there is no face {i} (the photo has {len(found[0])})")
                keeps[0][i] = CHOSEN
            reasons = [[self.triage(f) if replace_with == "anonymize" else f"replace_with={replace_with!r}"
                        for f in fs] for fs in found]
        kept = {(j, i) for j, ks in enumerate(keeps) for i, k in enumerate(ks) if k is not None and k.kept}
        for j, i in kept:
            reasons[j][i] = keeps[j][i].reason
        chosen = [(j, i) for j, rs in enumerate(reasons) for i, reason in enumerate(rs) if reason is None]
        results = self._anonymize_each([found[j][i] for j, i in chosen], cfg, [rngs[j][i] for j, i in chosen],
                                       [draws[j][i] for j, i in chosen], stage) if chosen else []
        step2 = {key: result for key, result in zip(chosen, results) if not isinstance(result, str)}
        for (j, i), result in zip(chosen, results):
            if isinstance(result, str) or not result.guard.passed:  # an error on this face, or the guard's verdict
                reasons[j][i] = result if isinstance(result, str) else result.guard.reason()
        method = obscuring_method(replace_with, fallback)
        images, all_records = [], []
        for j, (rgb, fs) in enumerate(zip(rgbs, found)):
            with stage("paste_back"):
                out = rgb
                for i, face in enumerate(fs):
                    if (j, i) in step2:
                        try:
                            out = paste_back(out, step2[j, i].crop, face.matrix, face.mask)
                        except Exception as exc:  # this face is obscured below; the others are pasted
                            reasons[j][i] = failure_reason("paste_back", exc)
                for i, (face, reason) in enumerate(zip(fs, reasons[j])):
                    if reason is not None and method != "none" and (j, i) not in kept:
                        out = obscure(out, face, method, mask_scale=mask_scale, boxes=boxes)
                if any((j, i) in kept for i in range(len(fs))):
                    out = restore_kept(out, rgb, fs, keeps[j])
            records = []
            for i, (face, reason) in enumerate(zip(fs, reasons[j])):
                crop = step2[j, i].crop if reason is None else warp_to_crop(out, face.matrix, face.crop.shape[0])
                treatment = "kept" if (j, i) in kept else treatment_of(reason, replace_with, fallback)
                records.append(face_record(face, crop, step2.get((j, i)), use_ifa=cfg.use_ifa, image_index=j,
                                           treatment=treatment, reason=reason or "", keep=keeps[j][i]))
            images.append(Image.fromarray(out))
            all_records += records
        return AnonOutput(images=images, faces=all_records, notes=[f"step 2: {self.step2_name}"])

    def reference(self, photos: ReferenceLike | Sequence[ReferenceLike]) -> list[Reference]:
        """The people to keep (``__call__``'s `keep`), embedded once so that a script reuses them on every call: each
        photo, or each image of a folder, must show one face that can be judged (an error naming the photo
        otherwise); references already made pass through."""
        cfg, references = self.preprocessor.resolve(), []
        for name, item in reference_photos(photos):
            if isinstance(item, Reference):
                references.append(item)
                continue
            rgb = load_reference_photo(name, item)
            references.append(self.keep_judge.reference(name, rgb, self.perceive(rgb, cfg)))
        return references

    @functools.cached_property
    def keep_judge(self) -> KeepJudge:
        """Who is kept: Psi and FaceNet-CASIA (loaded on first use) on the reference people (``anon_model.keep``)."""
        return KeepJudge(self.preprocessor.identity)

    def video(self, source: str | os.PathLike | Iterable[np.ndarray], dest: str | os.PathLike | None = None, *,
              seed: int | None = 0, **options):
        """Anonymize a clip: a video file into `dest` (``anon_model.video.anonymize_video``: frames, rate, size and
        audio kept; returns its per-track records), or frames (RGB arrays) streamed one by one
        (``anon_model.video.anonymize_frames``: returns an iterator of anonymized frames with ``.tracks``). Every
        tracked person stays one stranger; `options` are those functions' and ``__call__``'s."""
        from anon_model import video

        if isinstance(source, (str, os.PathLike)):
            if dest is None:
                raise ValueError("a video file needs dest=, the path of the anonymized clip")
            return video.anonymize_video(self, source, dest, seed=seed, **options)
        if dest is not None:
            raise ValueError("dest= is for video files: frames are returned as a stream")
        return video.anonymize_frames(self, source, seed=seed, **options)

    def perceive(self, rgb: np.ndarray, cfg: PreprocessorConfig, timer: Timer | None = None, *,
                 search: str = "auto") -> list[Face]:
        """Every face of `rgb`, left to right: boxes, 68 landmarks S_x, pose, aligned 256x256 crop x and its mask
        (``__call__``'s first stages, public so a video can track the faces before anonymizing them). `search`: the
        views of the photo looked at (``__call__``'s `face_search`). A face whose landmarks, pose or alignment
        failed is kept with its ``failure`` (triage obscures it)."""
        return self.preprocessor.analyzer.perceive(rgb, threshold=cfg.detect_threshold, max_faces=cfg.max_faces,
                                                   search=search, timer=timer)

    def triage(self, face: Face) -> str | None:
        """Why step 2 cannot anonymize ``face`` (perception could not finish it, too small, turned too far, landmarks
        that do not fit it, or the check itself raised on it), or None."""
        try:
            return face.failure or unsuitable(face) or self.plausibility.unreliable_landmarks(face.crop,
                                                                                              face.crop_landmarks)
        except Exception as exc:  # one face's error never costs the photo
            return failure_reason("triage", exc)

    @property
    def plausibility(self) -> PlausibilityCheck:
        """The guard's second check (is a result a natural face?) and the triage's landmark check, loaded once."""
        return default_check(str(self.device))

    def _anonymize_each(self, faces: list[Face], cfg: PreprocessorConfig, rngs: list[torch.Generator],
                        reuse: list[DelegateDraw | None], stage: Timer) -> list[Step2Result | str]:
        """``_anonymize`` on the faces together; when that raises, on each face alone, so that an error costs only
        the face it came from: that face gets the error, naming its stage, instead of a result."""
        tracked = _StageTracker(stage)
        try:
            return self._anonymize(faces, cfg, rngs, reuse, tracked)
        except Exception as exc:
            if len(faces) == 1:
                return [failure_reason(tracked.current, exc)]
        return [result for i in range(len(faces))
                for result in self._anonymize_each([faces[i]], cfg, [rngs[i]], [reuse[i]], stage)]

    def _anonymize(self, faces: list[Face], cfg: PreprocessorConfig, rngs: list[torch.Generator],
                   reuse: list[DelegateDraw | None], stage: Timer) -> list[Step2Result]:
        """The paper's method for the faces step 2 can handle: IFA -> VCA -> synthesis -> identity guard, with the
        failures' delegates redrawn (at most ``cfg.guard_attempts`` tries, fewer for a face whose tries stay far from
        passing: ``cfg.guard_give_up``); each face keeps its best try and draws
        from ``rngs[i]`` (one shared generator for a photo, or one per face); a face given a draw to ``reuse`` has
        that one try only."""
        pre, bank = self.preprocessor, self.bank
        with stage("ifa"), self._autocast():  # explain (§3.1): H, H-hat and the recast Z_id of every face
            explained = pre.explain(faces, bank=bank, config=cfg)
        with stage("vca"):  # draw delegates (§3.2): Z_a and S-hat_x -> Z_g
            queries = pre.bank_queries(faces, explained, bank=bank)
            fresh = [i for i, d in enumerate(reuse) if d is None]  # a reused draw needs no attribute estimate
            attributes = dict(zip(fresh, pre.face_attributes([faces[i] for i in fresh], config=cfg)))
            conds, delegates = map(list, zip(*[
                pre.draw_delegates(faces[i], explained[i], queries[i], bank=bank, attributes=attributes.get(i),
                                   generator=rngs[i], config=cfg, reuse=reuse[i]) for i in range(len(faces))]))
        guard = IdentityGuard(pre.identity, others=pre.bank_features(bank), intrusion_limit=pre.intrusion_limit(bank),
                              names=bank.identity_labels, plausibility=self.plausibility)
        with stage("guard"), self._autocast():
            refs = guard.references(conds, InPhoto.of(faces))  # the originals, once for every try
        tries, todo = BestTries(len(faces)), list(range(len(faces)))
        for attempt in range(1, cfg.guard_attempts + 1):
            with stage("synthesis"), self._autocast():  # synthesize (§3.3)
                crops = self._synthesize([conds[i] for i in todo], [rngs[i] for i in todo],
                                         [delegates[i].effort for i in todo]).float()
            with stage("guard"), self._autocast():  # verify: is each result far from its original and from every bank identity?
                seen = as_pasted(crops, [faces[i].matrix for i in todo])  # judged at the size it will have
                tries.add(todo, crops, delegates, guard.verify(seen, [conds[i] for i in todo], refs.select(todo),
                                                               kept=[reuse[i] is not None for i in todo]))
            if attempt == cfg.guard_attempts:
                break
            todo = tries.retry([i for i in tries.failing() if reuse[i] is None], cfg.guard_give_up)  # reused: final
            if not todo:
                break
            with stage("vca"):  # redraw the failures' delegates; the synthesizer may also change more (effort)
                for i in todo:
                    conds[i], delegates[i] = pre.draw_delegates(faces[i], explained[i], queries[i], bank=bank,
                                                                attributes=attributes.get(i), generator=rngs[i],
                                                                config=cfg, effort=attempt / (cfg.guard_attempts - 1))
        return [Step2Result(explained[i], t.delegates, _to_uint8(t.crop), tries.outcome(i, guard))
                for i, t in enumerate(tries.best)]

    def _synthesize(self, conds: list[FaceConditioning], rngs: list[torch.Generator],
                    efforts: list[float]) -> torch.Tensor:
        """Step 2 in one batch per retry effort when the synthesizer draws no noise, else also one per generator (a
        photo's faces, or a video track's face), so batching never changes what a face gets."""
        noisy = getattr(self.synthesizer, "uses_generator", True)
        groups: dict[tuple, list[int]] = {}
        for i, (r, e) in enumerate(zip(rngs, efforts)):
            groups.setdefault((id(r) if noisy else None, e), []).append(i)
        crops: list[torch.Tensor | None] = [None] * len(conds)
        for (_, effort), members in groups.items():
            out = self.synthesizer.synthesize([conds[i] for i in members], generator=rngs[members[0]], effort=effort)
            for i, crop in zip(members, out):
                crops[i] = crop
        return torch.stack(crops)

    def _autocast(self) -> AbstractContextManager:
        """The networks' precision (IFA's Psi, step 2, the guard's recognizer; not VCA's geometry): autocast to
        ``torch_dtype`` when one was asked for, else full precision."""
        if self.torch_dtype in (None, torch.float32):
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.torch_dtype)

    def _progress_bar(self, items: list) -> list:
        """``items`` behind a tqdm bar for a list call of more than one photo (see ``set_progress_bar_config``)."""
        if len(items) < 2 or self._progress.get("disable"):
            return items
        from tqdm.auto import tqdm

        return tqdm(items, **{"desc": "finding faces", "unit": "photo", "leave": False} | self._progress)


def default_device() -> str:
    """CUDA when available, else the CPU (the pipeline, CLI and app all start from this)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_dtype(dtype: torch.dtype | None, device: torch.device) -> torch.dtype | None:
    """A clear error for a precision autocast cannot run on `device` (float16/bfloat16 on CUDA; bfloat16 on CPU)."""
    if dtype in (None, torch.float32):
        return dtype
    if not isinstance(dtype, torch.dtype) or not torch.amp.autocast_mode.is_autocast_available(device.type):
        raise ValueError(f"torch_dtype={dtype!r} is not supported on {device}")
    try:
        with torch.autocast(device.type, dtype=dtype):
            pass
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"torch_dtype={dtype} is not supported on {device}: {exc}") from None
    return dtype


def _image_generators(seed: int | None, n_images: int) -> list[torch.Generator]:
    """One generator per photo, each seeded with `seed` (a photo gets what it gets alone); None draws fresh seeds
    without touching torch's global RNG."""
    return [torch.Generator().manual_seed(seed if seed is not None else secrets.randbits(63)) for _ in range(n_images)]


def _per_face(name: str, values: Sequence, n_faces: int) -> list:
    """A per-face argument as a list: exactly one entry per face, or a clear error."""
    if len(values) != n_faces:
        raise ValueError(f"{name} has {len(values)} entr{'y' if len(values) == 1 else 'ies'} for {n_faces} face(s): "
                         "give one per face")
    return list(values)


def _face_generators(seeds: Sequence[int], n_faces: int) -> list[torch.Generator]:
    """One generator per face from ``face_seeds``."""
    return [torch.Generator().manual_seed(int(s)) for s in _per_face("face_seeds", seeds, n_faces)]


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A clear error for an option value no stage understands."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


class _StageTracker:
    """A timer around another that remembers the last stage entered: the stage an error came from."""

    def __init__(self, timer: Timer) -> None:
        self.timer, self.current = timer, ""

    def __call__(self, stage: str) -> AbstractContextManager:
        self.current = stage
        return self.timer(stage)


def _to_uint8(crop: torch.Tensor) -> np.ndarray:
    """A synthesized crop (3,S,S) in [0,1] as (S,S,3) uint8."""
    return (crop.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _load_bank(bank: DelegateBank | str | os.PathLike) -> DelegateBank:
    """A ``DelegateBank`` as it is, or loaded from its folder or Hub id (a clear error when it is neither)."""
    from anon_model.bank import DelegateBank

    if isinstance(bank, DelegateBank):
        return bank
    try:
        return DelegateBank.from_pretrained(bank)
    except (OSError, ValueError) as exc:
        raise AnonModelError(f"delegate bank {bank}: neither a bank folder nor a Hub repo id holding one ({exc})") \
            from None


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
