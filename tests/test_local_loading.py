"""Local means local: a pipeline folder never starts a download, and says what is missing instead."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket

import pytest

from anon_model.bank import DelegateBank
from anon_model.downloads import downloads_allowed, require_download
from anon_model.errors import MissingWeightsError
from anon_model.pipeline import INDEX_FILE, AnonPipeline
from anon_model.preprocessor import PreprocessorConfig
from anon_model.synthesis import TrainingFreeSynthesizer


class NetworkTouched(Exception):
    """Raised by the patched socket layer: something tried to go online."""


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every connection attempt fails loudly; torch hub's cache is empty (no FaceNet/S3FD/FAN weights on disk)."""
    def refuse(*args, **kwargs):
        raise NetworkTouched(f"network touched: {args[:2]}")

    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr("anon_model.bank.embedder.ARCFACE_FILE", tmp_path / "no_arcface.onnx")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A local pipeline folder of the offline default's components, written without loading any model."""
    root = tmp_path_factory.mktemp("pipe")
    (root / "preprocessor").mkdir()
    (root / "preprocessor" / "config.json").write_text(json.dumps(dataclasses.asdict(PreprocessorConfig())))
    DelegateBank.default().save_pretrained(root / "bank")
    TrainingFreeSynthesizer().save_pretrained(root / "synthesizer")
    index = {"_class_name": "AnonPipeline", "preprocessor": ["anon_model.preprocessor", "AnonPreprocessor"],
             "bank": ["anon_model.bank.store", "DelegateBank"],
             "synthesizer": ["anon_model.synthesis.warp", "TrainingFreeSynthesizer"]}
    (root / INDEX_FILE).write_text(json.dumps(index))
    return root


@pytest.fixture
def crafted(pipeline_dir, tmp_path):
    """A fresh copy of the pipeline folder, to be altered by the test."""
    return shutil.copytree(pipeline_dir, tmp_path / "crafted")


def _edit_json(path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("component", ["preprocessor", "bank", "synthesizer"])
def test_missing_component_folder_is_an_error_naming_it(crafted, component, no_network):
    shutil.rmtree(crafted / component)
    with pytest.raises(FileNotFoundError, match=f"'{component}' component"):
        AnonPipeline.from_pretrained(crafted)


@pytest.mark.parametrize(("file", "changes", "named"), [
    ("preprocessor/config.json", {"identity": "facenet"}, "FaceNet"),
    ("preprocessor/config.json", {"detector": "sfd"}, "S3FD"),
    ("preprocessor/config.json", {"landmarks": "fan"}, "FAN"),
    ("bank/bank.json", {"embedder": "arcface:w600k_r50.onnx"}, "ArcFace"),
])
def test_config_that_needs_a_download_is_a_clear_error_without_network(crafted, no_network, file, changes, named):
    _edit_json(crafted / file, **changes)
    with pytest.raises(MissingWeightsError, match=f"{named}.*allow_downloads=True") as err:
        AnonPipeline.from_pretrained(crafted)
    assert "\n" not in str(err.value)


def test_allow_downloads_lets_the_loader_go_online(crafted, no_network):
    _edit_json(crafted / "preprocessor/config.json", identity="facenet")
    with pytest.raises(NetworkTouched):
        AnonPipeline.from_pretrained(crafted, allow_downloads=True)


def test_downloads_are_off_only_inside_the_block():
    with downloads_allowed(False), pytest.raises(MissingWeightsError, match="S3FD"):
        require_download("S3FD", "pass its path")
    require_download("S3FD", "pass its path")  # outside: allowed (Hub ids, library defaults)
