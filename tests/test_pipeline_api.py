"""The diffusers-style surface of AnonPipeline: lists as one batch, .images, .to(), torch_dtype, progress bar."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from anon_model import AnonPipeline
from anon_model.pipeline import default_device


@pytest.fixture(scope="module")
def pipe():
    return AnonPipeline.from_pretrained(None, device="cpu")


@pytest.fixture(scope="module")
def two_photos(example_paths):
    by_name = {p.stem: p for p in example_paths}
    return [by_name["astronaut"], by_name["biden"]]


def test_a_list_is_one_batch_with_each_photo_as_it_gets_alone(pipe, two_photos):
    entered: list[str] = []

    @contextmanager
    def timer(stage):
        entered.append(stage)
        yield

    out = pipe(two_photos, seed=5, timer=timer)
    alone = [pipe(p, seed=5) for p in two_photos]
    assert len(out.images) == 2 and [f.image_index for f in out.faces] == [0, 1]
    assert entered.count("ifa") == 1, "the faces of both photos should go through IFA together"
    for single, part in zip(alone, out.split()):
        assert np.array_equal(np.asarray(single.image), np.asarray(part.image))
        assert part.counts() == single.counts() and part.notes == single.notes
        assert [f.delegate for f in part.faces] == [f.delegate for f in single.faces]
    assert out.counts()["anonymized"] + out.counts()["obscured"] == 2
    with pytest.raises(ValueError, match="2 photos"):
        out.image
    assert alone[0].images == [alone[0].image]


def test_a_list_refuses_per_photo_arguments(pipe, two_photos):
    with pytest.raises(ValueError, match="single image"):
        pipe(two_photos, face_seeds=[1])


def test_progress_bar_shows_for_lists_and_can_be_switched_off(pipe, two_photos, capsys):
    pipe(two_photos, seed=0, replace_with="blur")
    assert "finding faces" in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=True)
    try:
        pipe(two_photos, seed=0, replace_with="blur")
        assert "finding faces" not in capsys.readouterr().err
    finally:
        pipe.set_progress_bar_config()


def test_torch_dtype_runs_the_networks_in_that_precision(pipe, two_photos):
    half = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=pipe.synthesizer,
                        torch_dtype=torch.bfloat16)
    seen: list[torch.dtype] = []
    conv = next(m for m in pipe.preprocessor.identity.modules() if isinstance(m, torch.nn.Conv2d))
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        out = half(two_photos[0], seed=0)
    finally:
        hook.remove()
    assert torch.bfloat16 in seen, "the identity network should have run under bfloat16 autocast"
    assert out.faces[0].treatment in ("anonymized", "obscured") and out.faces[0].identity_distance is not None
    with pytest.raises(ValueError, match="not supported"):
        AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=pipe.synthesizer, torch_dtype="half")


def test_device_defaults_to_cuda_when_there_is_one_and_to_moves_the_pipeline(pipe, monkeypatch):
    assert pipe.to("cpu") is pipe and pipe.device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
