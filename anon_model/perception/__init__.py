"""Perception: detection, 68-point landmarks, head pose, alignment to 256x256 and paste-back, face masks."""

from anon_model.perception.analyzer import FaceAnalyzer
from anon_model.perception.face import Face

__all__ = ["Face", "FaceAnalyzer"]
