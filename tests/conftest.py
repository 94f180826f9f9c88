"""Shared fixtures: the bundled example photos and a session-wide FaceAnalyzer (models load once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no OpenMP spin-waiting on shared cores
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"


@pytest.fixture(scope="session")
def example_paths() -> list[Path]:
    """The bundled public-domain photos (obama*, biden, astronaut)."""
    return sorted(EXAMPLES.glob("*.jpg"))


@pytest.fixture(scope="session")
def analyzer():
    """The offline default perception stack (MTCNN + dlib 68 points)."""
    from anon_model.perception import FaceAnalyzer

    return FaceAnalyzer()
