"""AnonPipeline: output shape, determinism, save/load round trip without network."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from anon_model import AnonPipeline


@pytest.fixture(scope="module")
def pipe():
    return AnonPipeline.from_pretrained(None)


def test_output_matches_input_size_and_has_a_record_per_face(pipe, example_paths):
    src = Image.open(example_paths[0])
    out = pipe(src, seed=0)
    assert out.image.size == src.size
    assert len(out.faces) == 1
    rec = out.faces[0]
    assert rec.anonymized.shape == (256, 256, 3)
    assert rec.delegate_probs is not None and abs(float(np.sum(rec.delegate_probs)) - 1) < 1e-5
    assert rec.cam is not None and rec.cam.shape[1:] == (256, 256)
    assert any("step 2" in n for n in out.notes)


def test_same_seed_same_output(pipe, example_paths):
    a = np.asarray(pipe(example_paths[2], seed=3).image)
    b = np.asarray(pipe(example_paths[2], seed=3).image)
    assert np.array_equal(a, b)


def test_save_then_load_gives_identical_output(pipe, example_paths, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert {"preprocessor", "bank", "generator"} <= set(index)
    loaded = AnonPipeline.from_pretrained(tmp_path / "pipe")
    a = np.asarray(pipe(example_paths[1], seed=7).image)
    b = np.asarray(loaded(example_paths[1], seed=7).image)
    assert np.array_equal(a, b)


def test_photo_without_face_is_returned_unchanged(pipe):
    blank = np.full((120, 160, 3), 200, np.uint8)
    out = pipe(blank)
    assert out.faces == [] and np.array_equal(np.asarray(out.image), blank)
    assert any("no face" in n for n in out.notes)


def test_unknown_delegate_sampling_is_rejected(pipe, example_paths):
    with pytest.raises(ValueError, match="delegate_sampling"):
        pipe(example_paths[0], delegate_sampling="nearest-ish")


def test_guard_record_describes_the_kept_try(pipe, example_paths, monkeypatch):
    """The guard keeps the try farthest from x; the face's record must show that try's delegates, not the last."""
    import torch

    from anon_model.imageio import load_image

    calls = []

    class ThirdTryOnly:
        """Returns x itself (recognized) except on the third call, where it returns the delegate's face."""

        def synthesize(self, conds, generator=None):
            calls.append([c.landmarks_anon.clone() for c in conds])
            third = len(calls) == 3
            return torch.stack([(c.delegate_crop if third else c.x).float() for c in conds])

    pre, bank = pipe.preprocessor, pipe.bank
    monkeypatch.setattr(pre.identity, "threshold", 10.0)  # nothing passes: all four tries run
    rng = torch.Generator().manual_seed(0)
    plans = pre(load_image(example_paths[0]), bank=bank, generator=rng, epsilon=0.0)
    pre.synthesize_guarded(plans, ThirdTryOnly(), bank=bank, generator=rng)
    record = plans[0].record
    assert record.attempts == 4 and len(calls) == 4
    np.testing.assert_allclose(record.landmarks_anon_crop, calls[2][0].numpy(), atol=1e-4)
    np.testing.assert_allclose(plans[0].cond.landmarks_anon.numpy(), calls[2][0].numpy(), atol=1e-4)
    assert record.identity_distance > 0.6  # dlib's real threshold: the delegate's face is someone else
