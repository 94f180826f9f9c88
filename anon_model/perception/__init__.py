"""Perception: detection, 68-point landmarks, head pose, alignment to 256x256 and paste-back, face masks.

``FaceAnalyzer`` and ``Face`` are imported on first use, so a light submodule (``weights``, ``landmarks68``, ``nms``)
does not load the detectors' dependencies.
"""

__all__ = ["Face", "FaceAnalyzer"]


def __getattr__(name: str):
    if name == "FaceAnalyzer":
        from anon_model.perception.analyzer import FaceAnalyzer

        return FaceAnalyzer
    if name == "Face":
        from anon_model.perception.face import Face

        return Face
    raise AttributeError(f"module 'anon_model.perception' has no attribute {name!r}")
