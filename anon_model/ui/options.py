"""Per-request settings of the app and how they reach the shared pipeline (as per-call overrides, never by mutation)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np

from anon_model.keep import Reference
from anon_model.output import AnonOutput


@dataclass(frozen=True)
class RunOptions:
    """What a visitor sets: top-K distraction, privacy budget, neighbours, seed and the three step-1 switches."""

    seed: int = 0
    k_top: int = 3
    epsilon: float = 1.0
    k_neighbors: int = 10
    use_ifa: bool = True
    use_vaa: bool = True
    use_gsa: bool = True

    def settings(self) -> dict[str, Any]:
        """The pipeline's keyword arguments, each as its field's type (Gradio hands numbers over as floats)."""
        return {f.name: type(f.default)(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def key(self, image: np.ndarray, keep: Sequence[Reference] = (), keep_faces: Sequence[int] = ()) -> str:
        """A digest of the photo, these settings, the references and the faces to keep: equal keys mean an equal
        output."""
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
        digest.update(repr((image.shape, tuple(self.settings().values()), tuple(keep_faces))).encode())
        for reference in keep:
            digest.update(reference.dlib.tobytes() + reference.casia.tobytes())
        return digest.hexdigest()


def run_pipeline(pipe, image: np.ndarray, options: RunOptions, keep: Sequence[Reference] = (),
                 keep_faces: Sequence[int] = ()) -> AnonOutput:
    """Call ``pipe`` with ``options`` (and the people to ``keep``, the faces the visitor chose to keep); the IFA/VAA/GSA
    switches are per-call overrides, so requests never mix."""
    extra = {**({"keep": list(keep)} if keep else {}), **({"keep_faces": list(keep_faces)} if keep_faces else {})}
    return pipe(image, **options.settings(), **extra)
