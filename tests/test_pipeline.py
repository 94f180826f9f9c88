"""AnonPipeline: output shape, determinism, save/load round trip without network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
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


def test_no_seed_leaves_torch_global_rng_alone(pipe, example_paths):
    """seed=None draws a fresh seed for this call without re-seeding (or advancing) torch's global generator."""
    pipe(example_paths[0], seed=0)  # warm-up: the very first call advances torch's generator once (lazy set-up)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    pipe(example_paths[0], seed=None)
    assert torch.equal(torch.rand(3), expected)


def test_save_then_load_gives_identical_output(pipe, example_paths, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert {"preprocessor", "bank", "synthesizer"} <= set(index)
    loaded = AnonPipeline.from_pretrained(tmp_path / "pipe")
    a = np.asarray(pipe(example_paths[1], seed=7).image)
    b = np.asarray(loaded(example_paths[1], seed=7).image)
    assert np.array_equal(a, b)


def test_bank_given_at_load_replaces_the_pipelines(pipe, tmp_path):
    """``from_pretrained(..., bank=)`` takes a bank folder (as ``anon-model bank build`` writes it) or a bank, and
    names a path that holds none."""
    from anon_model.errors import AnonModelError

    pipe.bank.save_pretrained(tmp_path / "bank")
    loaded = AnonPipeline.from_pretrained(None, bank=tmp_path / "bank")
    assert loaded.bank is not pipe.bank and torch.equal(loaded.bank.embeddings, pipe.bank.embeddings)
    pipe.save_pretrained(tmp_path / "pipe")
    (tmp_path / "pipe" / "bank" / "bank.safetensors").unlink()  # the saved pipeline's own bank is not read
    assert torch.equal(AnonPipeline.from_pretrained(tmp_path / "pipe", bank=tmp_path / "bank").bank.embeddings,
                       pipe.bank.embeddings)
    assert AnonPipeline.from_pretrained(None, bank=pipe.bank).bank is pipe.bank
    with pytest.raises(AnonModelError, match="neither a bank folder nor a Hub repo id"):
        AnonPipeline.from_pretrained(None, bank=tmp_path / "nope")


def test_photo_without_face_is_returned_unchanged(pipe):
    blank = np.full((120, 160, 3), 200, np.uint8)
    out = pipe(blank)
    assert out.faces == [] and np.array_equal(np.asarray(out.image), blank)
    assert any("no face" in n for n in out.notes)


def test_unknown_delegate_sampling_is_rejected(pipe, example_paths):
    with pytest.raises(ValueError, match="delegate_sampling"):
        pipe(example_paths[0], delegate_sampling="nearest-ish")
    with pytest.raises(ValueError, match="guard_give_up"):
        pipe(example_paths[0], guard_give_up=-0.1)


def test_unknown_option_is_rejected_by_name(pipe, example_paths):
    with pytest.raises(TypeError, match="use_gsaa"):
        pipe(example_paths[0], use_gsaa=False)


def test_folder_of_an_earlier_version_with_a_generator_entry_loads(pipe, example_paths, tmp_path):
    """Folders written before the step-2 slot was renamed name it "generator": they load the same."""
    folder = pipe.save_pretrained(tmp_path / "old")
    (folder / "synthesizer").rename(folder / "generator")
    index = json.loads((folder / "model_index.json").read_text())
    index["generator"] = index.pop("synthesizer")
    (folder / "model_index.json").write_text(json.dumps(index))
    loaded = AnonPipeline.from_pretrained(folder)
    assert np.array_equal(np.asarray(loaded(example_paths[1], seed=7).image), np.asarray(pipe(example_paths[1], seed=7).image))


class _Recorder:
    """A step 2 that returns x itself (always recognized) except on call ``delegate_on``, where it returns the
    appearance delegate's face; it remembers each call's S-hat_x and effort."""

    description = "test synthesizer"

    def __init__(self, delegate_on: int | None = None) -> None:
        self.calls, self.delegate_on = [], delegate_on

    def synthesize(self, conds, *, generator=None, effort=0.0):
        self.calls.append(([c.landmarks_anon.clone() for c in conds], effort))
        use_delegate = len(self.calls) == self.delegate_on
        return torch.stack([(c.delegate_crop if use_delegate else c.x).float() for c in conds])


def test_guard_retries_a_bounded_number_of_times_and_reports_failure(pipe, example_paths):
    """A step 2 that changes nothing: every try fails, the face is reported as failed, the tries are bounded."""
    step2 = _Recorder()
    out = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)(
        example_paths[0], seed=0, guard_attempts=3)
    (record,) = out.faces
    assert record.attempts == 3 and len(step2.calls) == 3 and record.guard_passed is False
    assert record.treatment == "obscured" and "still recognized as the original" in record.treatment_reason
    assert "after 3 tries" in record.treatment_reason
    assert [effort for _, effort in step2.calls] == [0.0, 0.5, 1.0]  # the synthesizer is asked to change more
    assert record.identity_distance < 0.15  # x vs x (judged at its size in the photo: only resampling moved it)


def test_a_face_far_from_passing_is_given_up_after_a_few_tries(pipe, example_paths):
    """A step 2 that changes nothing stays far within dlib's limit (x against x): after GIVE_UP_AFTER tries it gets no
    more, and its reason says why; without the rule it gets every try."""
    from anon_model.guard import GIVE_UP_AFTER

    step2 = _Recorder()
    steps = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)
    (record,) = steps(example_paths[0], seed=0, guard_attempts=GIVE_UP_AFTER + 2).faces
    assert record.attempts == GIVE_UP_AFTER == len(step2.calls) and record.treatment == "obscured"
    assert f"after {GIVE_UP_AFTER} tries (too far from passing to try more)" in record.treatment_reason
    step2.calls.clear()
    (record,) = steps(example_paths[0], seed=0, guard_attempts=GIVE_UP_AFTER + 2,
                      guard_give_up=float("inf")).faces
    assert record.attempts == GIVE_UP_AFTER + 2 == len(step2.calls)
    assert "to try more" not in record.treatment_reason


def test_guard_record_describes_the_kept_try(pipe, example_paths, monkeypatch):
    """The guard keeps the try farthest from x; the face's record must show that try's delegates, not the last."""
    monkeypatch.setattr(pipe.preprocessor.identity, "threshold", 10.0)  # nothing passes: all four tries run
    step2 = _Recorder(delegate_on=3)
    out = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)(
        example_paths[0], seed=0, epsilon=0.0, guard_attempts=4, guard_give_up=float("inf"))
    record = out.faces[0]
    assert record.attempts == 4 and len(step2.calls) == 4 and record.guard_passed is False
    np.testing.assert_allclose(record.landmarks_anon_crop, step2.calls[2][0][0].numpy(), atol=1e-4)
    assert record.identity_distance > 0.6  # dlib's real threshold: the delegate's face is someone else
    # the kept crop is what was pasted back, and the record's crop is the anonymized one, not the original
    assert not np.array_equal(record.anonymized, record.crop)


def test_a_reused_draw_is_rendered_with_the_effort_it_was_kept_at(pipe, example_paths, monkeypatch):
    """A video track reuses its kept draw with one try per frame: step 2 must render it as it was when it was kept
    (the retry's effort), not as a first try, else a draw kept at full effort comes back half as changed."""
    monkeypatch.setattr(pipe.preprocessor.identity, "threshold", 10.0)  # nothing passes: all four tries run
    step2 = _Recorder(delegate_on=3)
    first = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)(
        example_paths[0], seed=0, epsilon=0.0, guard_attempts=4, guard_give_up=float("inf"))
    draw = first.faces[0].delegate_draw
    assert draw.effort == 2 / 3  # the third try (of four) was kept
    step2.calls.clear()
    again = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)(
        example_paths[0], seed=0, face_draws=[draw])
    assert [effort for _, effort in step2.calls] == [2 / 3]
    assert again.faces[0].delegate_draw.effort == 2 / 3


def test_only_a_reused_draw_gets_the_kept_slack(pipe, example_paths, monkeypatch):
    """The guard is told which results render a draw a video track kept (their naturalness limit has KEPT_SLACK
    more); fresh tries are judged at the limit."""
    from anon_model.guard import IdentityGuard

    verify, told = IdentityGuard.verify, []
    monkeypatch.setattr(IdentityGuard, "verify",
                        lambda self, *a, kept=None: told.append(list(kept)) or verify(self, *a, kept=kept))
    first = pipe(example_paths[0], seed=0, guard_attempts=1)
    pipe(example_paths[0], seed=0, face_draws=[first.faces[0].delegate_draw])
    assert told == [[False], [True]]
