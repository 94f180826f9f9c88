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


def test_a_reused_draw_keeps_the_stranger_on_a_new_frame(pipe, two_photos):
    """face_draws= (a video track's kept draw): same appearance mixture and S-bar, S-hat refitted to the new face."""
    from PIL import Image

    first = pipe(two_photos[0], seed=1).faces[0]  # a seed whose draw the guard passes
    assert first.treatment == "anonymized" and first.delegate_draw is not None
    photo = Image.open(two_photos[0])
    squeezed = photo.resize((int(photo.width * 0.92), photo.height))  # the same person, a slightly different shape
    faces = pipe.perceive(np.asarray(squeezed.convert("RGB")), pipe.preprocessor.config)
    again = pipe(squeezed, seed=123, faces=faces, face_draws=[first.delegate_draw]).faces[0]
    assert again.delegate_mixture == first.delegate_mixture and again.geometry_delegate == first.geometry_delegate
    assert not np.allclose(again.landmarks_anon_crop, first.landmarks_anon_crop), "S-hat follows the new landmarks"
    with pytest.raises(ValueError, match="face_draws has 2 entries for 1 face"):
        pipe(squeezed, faces=faces, face_draws=[None, None])
