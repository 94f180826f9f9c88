"""The anonymizers scored by the evaluation harness: baselines, our pipeline with its ablations, external outputs.

Every method maps (photo, its faces) to a photo of the same size:

* ``blur``, ``pixelate``, ``mask``: the classic obfuscations of §4.2 (Figure 3) over each face box widened by 20%;
* ``copy``: the identity "anonymizer" (the photo unchanged): the upper bound of ReID, a sanity check;
* ``ours``: ``AnonPipeline`` as users get it (training-free step 2 unless a trained model folder / Hub id is given;
  faces it cannot anonymize obscured by its fallback); ``ours-trained``: a second pipeline (e.g. the trained
  generator) scored in the same run;
* ablations (Tables 4-6) and the K curve (Figure 6): the method alone, as the paper's tables measure it
  (preprocessor switches of ``VARIANTS``, K, and ``fallback="none"``, so an ablation's failures stay visible);
* ``external``: another method's outputs read from a folder with the dataset's relative paths.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from anon_model import fallback
from anon_model.evaluation.attributes import Located
from anon_model.fallback import face_region
from anon_model.evaluation.dataset import Sample
from anon_model.evaluation.naturalness import replaced_region
from anon_model.imageio import IMAGE_SUFFIXES, load_image

__all__ = ["Method", "Handled", "Blur", "Pixelate", "SolidMask", "Copy", "External", "PipelineMethod", "PipelineProvider",
           "Variant", "VARIANTS", "BASELINES", "make_methods", "k_curve_name"]


#: What a method reports about the faces it handled: per face (box, treatment, the (68, 2) landmarks S-hat_x of the new
#: face it put there, or None when it put none), or None when it reports nothing.
Handled = list[tuple[np.ndarray, str, np.ndarray | None]] | None


class Method:
    """An anonymizer under evaluation: ``method(image, faces, sample=..., seed=...) -> image`` (same size)."""

    name: str

    def describe(self) -> str:
        """Everything that changes this method's outputs (part of the cache fingerprint)."""
        return self.name

    def __call__(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> np.ndarray:
        raise NotImplementedError

    def run(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> tuple[np.ndarray, Handled]:
        """The output photo and what the method says it did to each face (only our pipeline says: else None)."""
        return self(image, faces, sample=sample, seed=seed), None

    def replaced(self, shape: tuple[int, ...], face: Located) -> np.ndarray:
        """Bool (H, W): where this method puts something new for ``face`` when it does not say (``Handled`` None):
        by default where a face replacement would, the region of the face's own landmarks (``replaced_region``)."""
        return replaced_region(face.landmarks, shape)


@dataclass
class _RegionMethod(Method):
    """A baseline that rewrites each face region independently."""

    expand: float = 0.2

    def describe(self) -> str:
        return repr(self)

    def __call__(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> np.ndarray:
        out = image.copy()
        for face in faces:
            x0, y0, x1, y1 = face_region(face.box, image.shape, self.expand)
            if x1 > x0 and y1 > y0:
                out[y0:y1, x0:x1] = self.obfuscate(out[y0:y1, x0:x1])
        return out

    def obfuscate(self, region: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def replaced(self, shape: tuple[int, ...], face: Located) -> np.ndarray:
        """Bool (H, W): the face's box widened by ``expand``, which this method rewrites."""
        x0, y0, x1, y1 = face_region(face.box, shape, self.expand)
        region = np.zeros(shape[:2], bool)
        region[y0:y1, x0:x1] = True
        return region


@dataclass
class Blur(_RegionMethod):
    """Gaussian blur with sigma = `strength` x the face region's width."""

    name: str = "blur"
    strength: float = 0.15

    def obfuscate(self, region: np.ndarray) -> np.ndarray:
        return fallback.blur(region, self.strength)


@dataclass
class Pixelate(_RegionMethod):
    """Mosaic: the face region averaged into `blocks` x `blocks` cells."""

    name: str = "pixelate"
    blocks: int = 8

    def obfuscate(self, region: np.ndarray) -> np.ndarray:
        return fallback.pixelate(region, self.blocks)


@dataclass
class SolidMask(_RegionMethod):
    """The face region filled with one grey."""

    name: str = "mask"
    value: int = 128

    def obfuscate(self, region: np.ndarray) -> np.ndarray:
        return fallback.solid(region, self.value)


@dataclass
class Copy(Method):
    """The identity "anonymizer": returns the photo unchanged (ReID upper bound)."""

    name: str = "copy"

    def __call__(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> np.ndarray:
        return image.copy()


@dataclass
class External(Method):
    """Another method's results: ``folder/<sample key>`` (any image suffix), resized back if only the scale differs."""

    name: str
    folder: Path

    def describe(self) -> str:
        return f"external:{self.folder.resolve()}"

    def find(self, sample: Sample) -> Path:
        """The output file of `sample` in the folder."""
        exact = self.folder / sample.key
        if exact.is_file():
            return exact
        stem = exact.with_suffix("")
        for suffix in sorted(IMAGE_SUFFIXES):
            for candidate in (stem.with_suffix(suffix), stem.with_suffix(suffix.upper())):
                if candidate.is_file():
                    return candidate
        raise FileNotFoundError(f"{self.name}: no output for {sample.key} in {self.folder}")

    def __call__(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> np.ndarray:
        out = load_image(self.find(sample))
        if out.shape == image.shape:
            return out
        (h, w), (oh, ow) = image.shape[:2], out.shape[:2]
        if abs(h / w - oh / ow) > 0.01 * h / w:
            raise ValueError(f"{self.name}: output of {sample.key} is {ow}x{oh}, the photo {w}x{h} (not the same framing)")
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA if ow > w else cv2.INTER_CUBIC)


class PipelineProvider:
    """Loads ``AnonPipeline`` once (lazily) and shares it between ``ours`` and its variants."""

    def __init__(self, model: str | os.PathLike | None = None, *, device: str = "cpu",
                 factory: Callable[[], Any] | None = None) -> None:
        self.model, self.device, self._factory, self._pipe = model, device, factory, None

    @property
    def loaded(self):
        """The pipeline if it has been loaded, else None."""
        return self._pipe

    def get(self):
        """The pipeline, loaded on first use."""
        if self._pipe is None:
            if self._factory is not None:
                self._pipe = self._factory()
            else:
                from anon_model import AnonPipeline

                self._pipe = AnonPipeline.from_pretrained(self.model, device=self.device)
        return self._pipe


@dataclass
class PipelineMethod(Method):
    """Our pipeline, optionally with preprocessor switches (an ablation) or call arguments (K of Eq. 5), both passed
    as per-call options (validated like any call's)."""

    name: str
    provider: PipelineProvider
    overrides: dict[str, Any] = field(default_factory=dict)
    call_kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"pipeline:{self.provider.model}:{sorted(self.overrides.items())}:{sorted(self.call_kwargs.items())}"

    def __call__(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> np.ndarray:
        return self.run(image, faces, sample=sample, seed=seed)[0]

    def run(self, image: np.ndarray, faces: Sequence[Located], *, sample: Sample, seed: int) -> tuple[np.ndarray, Handled]:
        """The output photo and each face record's (box, treatment, S-hat_x): treatment anonymized, obscured,
        unchanged or failed; S-hat_x (photo pixels) for the anonymized faces only (the others got no new face)."""
        out = self.provider.get()(image, seed=seed, **self.overrides, **self.call_kwargs)
        return np.asarray(out.image.convert("RGB")), [
            (np.asarray(f.box), f.treatment, f.landmarks_anon if f.treatment == "anonymized" else None)
            for f in out.faces]


@dataclass(frozen=True)
class Variant:
    """A named ablation of the paper: which table it belongs to, its row label, and the preprocessor switches."""

    name: str
    table: int
    label: str
    overrides: dict[str, Any]


#: Tables 4-6 of the paper as preprocessor switches; each table's reference row is ``ours``.
VARIANTS = (
    Variant("no-ifa", 4, "w./o. IFA", {"use_ifa": False}),
    Variant("no-vaa", 4, "w./o. VAA", {"use_vaa": False}),
    Variant("no-gsa", 4, "w./o. GSA", {"use_gsa": False}),
    Variant("delegates-random", 5, "Rand (random delegates)", {"delegate_sampling": "random"}),
    Variant("delegates-farthest", 5, "KFN (k-farthest delegates)", {"delegate_sampling": "farthest"}),
    Variant("no-ua", 6, "w./o. u_a", {"use_u_a": False}),
    Variant("no-ug", 6, "w./o. u_g", {"use_u_g": False}),
)
#: Call options that score the method alone (no fallback obscuring the faces it fails on).
METHOD_ALONE = {"fallback": "none"}
BASELINES: dict[str, Callable[[], Method]] = {"blur": Blur, "pixelate": Pixelate, "mask": SolidMask, "copy": Copy}


def k_curve_name(k: int) -> str:
    """The method name of ``ours`` with K = k (Figure 6)."""
    return f"ours-k{k}"


def make_methods(names: Sequence[str], *, provider: PipelineProvider | None = None,
                 external: dict[str, str | os.PathLike] | None = None, ablations: bool = False,
                 k_curve: Sequence[int] = (), trained: PipelineProvider | None = None) -> list[Method]:
    """Methods by name ("ours", "blur", "pixelate", "mask", "copy", a variant name), plus external folders,
    every ablation variant, one ``ours`` per K, and ``ours-trained`` (a second pipeline, e.g. with a trained
    generator, next to the training-free default) when asked."""
    provider = provider or PipelineProvider()
    variants = {v.name: v for v in VARIANTS}
    wanted = list(dict.fromkeys([*names, *(["ours", *variants] if ablations else []), *(["ours"] if k_curve else [])]))
    methods: list[Method] = []
    for name in wanted:
        if name in BASELINES:
            methods.append(BASELINES[name]())
        elif name == "ours":
            methods.append(PipelineMethod("ours", provider))
        elif name in variants:
            methods.append(PipelineMethod(name, provider, overrides=dict(variants[name].overrides),
                                          call_kwargs=dict(METHOD_ALONE)))
        else:
            raise ValueError(f"unknown method {name!r}: choose from ours, {', '.join(BASELINES)}, {', '.join(variants)}")
    methods += [PipelineMethod(k_curve_name(k), provider, call_kwargs={"k_top": int(k), **METHOD_ALONE})
                for k in k_curve]
    if trained is not None:
        methods.append(PipelineMethod("ours-trained", trained))
    methods += [External(name, Path(folder)) for name, folder in (external or {}).items()]
    return methods
