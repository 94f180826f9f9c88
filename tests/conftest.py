"""Shared fixtures: the bundled example photos and a session-wide FaceAnalyzer (models load once)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no OpenMP spin-waiting on shared cores
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"
RECALL_SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "recall.py"


@pytest.fixture(scope="session")
def example_paths() -> list[Path]:
    """The bundled public-domain photos (obama*, biden, astronaut)."""
    return sorted(EXAMPLES.glob("*.jpg"))


@pytest.fixture(scope="session")
def example_bank(tmp_path_factory, example_paths):
    """A delegate bank of the bundled photos: 3 people (Obama's three photos in a folder of their own, so one person),
    small enough that tests can name every face (the shipped default holds 799 Congress portraits)."""
    import shutil

    from anon_model.bank import DelegateBank

    folder = tmp_path_factory.mktemp("example_bank")
    (folder / "obama").mkdir()
    for p in example_paths:
        shutil.copy(p, folder / "obama" / p.name if "obama" in p.name else folder / p.name)
    return DelegateBank.build(folder, jpeg_quality=90, progress=False)


@pytest.fixture(scope="session")
def analyzer():
    """The offline default perception stack (MTCNN + dlib 68 points)."""
    from anon_model.perception import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="session")
def recall():
    """docs/recall.py as a module: the set builder and the matching rule the report uses."""
    spec = importlib.util.spec_from_file_location("docs_recall", RECALL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cutouts(recall, analyzer):
    """The bundled faces (and mirror images) with context, and each face box inside its cut-out."""
    return recall.face_cutouts(analyzer.detector)
