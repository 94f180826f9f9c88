"""No face left behind: faces step 2 cannot anonymize are obscured, and every record, the CLI and its exit code say so."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from anon_model import AnonPipeline
from anon_model.cli import main
from anon_model.fallback import face_region, obscure, unsuitable
from anon_model.imageio import load_image


@pytest.fixture(scope="module")
def pipe():
    return AnonPipeline.from_pretrained(None)


class Unchanged:
    """A step 2 that changes nothing: the identity guard can never pass it."""

    description = "test synthesizer that returns x"

    def synthesize(self, conds, *, generator=None, effort=0.0):
        return torch.stack([c.x for c in conds])


@pytest.fixture(scope="module")
def useless(pipe):
    """The default pipeline with a step 2 that changes nothing."""
    return AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=Unchanged())


def _region_changed(before: np.ndarray, after: np.ndarray, box) -> float:
    """Fraction of the face box's pixels that changed."""
    x0, y0, x1, y1 = face_region(box, before.shape, 0.0)
    return float(np.any(before[y0:y1, x0:x1] != after[y0:y1, x0:x1], axis=2).mean())


# ---- triage ---------------------------------------------------------------------------------------
def test_unsuitable_names_the_reason(analyzer, example_paths):
    face = analyzer(example_paths[0])[0]
    assert unsuitable(face) is None
    tiny = dataclasses.replace(face, box=face.box[:2].tolist() + (face.box[:2] + 12).tolist())
    assert "too small" in unsuitable(dataclasses.replace(tiny, landmarks=face.landmarks))
    assert "turned too far" in unsuitable(dataclasses.replace(face, pose=np.array([75.0, 0.0, 0.0])))
    assert "landmarks unreliable" in unsuitable(dataclasses.replace(face, landmarks=face.landmarks + 400))


def test_obscure_covers_the_face_and_nothing_far_from_it(analyzer, example_paths):
    image = load_image(example_paths[0])
    face = analyzer(image)[0]
    for method in ("mosaic", "blur", "solid"):
        out = obscure(image, face, method)
        assert _region_changed(image, out, face.box) > 0.9
        x0, y0, x1, y1 = face_region(face.box, image.shape, 0.5)
        far = np.ones(image.shape[:2], bool)
        far[y0:y1, x0:x1] = False
        assert np.array_equal(out[far], image[far])
    with pytest.raises(ValueError, match="mosaic"):
        obscure(image, face, "swirl")


# ---- the pipeline ---------------------------------------------------------------------------------
def test_a_face_the_guard_still_recognizes_is_obscured_never_done(useless, example_paths):
    image = load_image(example_paths[0])
    out = useless(image, seed=0, guard_attempts=2)
    (record,) = out.faces
    assert record.guard_passed is False and record.treatment == "obscured"
    assert "still recognized as the original" in record.treatment_reason and "after 2 tries" in record.treatment_reason
    assert out.counts() == {"anonymized": 0, "obscured": 1, "unchanged": 0, "failed": 0, "kept": 0}
    result = np.asarray(out.image)
    assert _region_changed(image, result, record.box) > 0.9  # the mosaic, not the untouched face
    assert any("obscured" in note for note in out.notes)
    assert np.array_equal(record.anonymized.shape, (256, 256, 3))


class PasteDelegate:
    """A step 2 that pastes the first bank face of the mixture, unchanged: someone real, who must not pass."""

    description = "test synthesizer that returns a bank face"

    def __init__(self, bank) -> None:
        self.bank = bank

    def synthesize(self, conds, *, generator=None, effort=0.0):
        return torch.stack([torch.from_numpy(self.bank.crop(0)).permute(2, 0, 1).float() / 255 for _ in conds])


def test_a_result_that_looks_like_a_bank_person_is_obscured(pipe, example_paths):
    """Far from the original but a real person of the bank (bank face 0's own face): the guard refuses it, naming
    that person."""
    step2 = PasteDelegate(pipe.bank)
    out = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=step2)(
        example_paths[2], seed=0, guard_attempts=2)  # obama.jpg
    (record,) = out.faces
    assert record.identity_distance > 0.65  # not Obama any more...
    assert record.treatment == "obscured"  # ...but bank person 0
    assert f"too close to bank person {pipe.bank.identity_labels[0]}" in record.treatment_reason


def test_without_a_fallback_the_face_is_reported_failed(useless, example_paths):
    out = useless(example_paths[0], seed=0, guard_attempts=1, fallback="none")
    assert [f.treatment for f in out.faces] == ["failed"] and out.counts()["failed"] == 1


def _small(path, divisor: int) -> np.ndarray:
    """The photo shrunk by ``divisor`` on a plain 400x300 canvas."""
    face = Image.open(path).convert("RGB")
    small = face.resize((face.width // divisor, face.height // divisor), Image.LANCZOS)
    canvas = Image.new("RGB", (400, 300), (120, 130, 140))
    canvas.paste(small, (150, 100))
    return np.asarray(canvas)


def test_a_tiny_face_is_obscured_with_its_reason(pipe, example_paths):
    """A face ~13 px wide (detectable, too small to synthesize) gets the fallback, not a 256-px synthesis."""
    image = _small(example_paths[0], 6)  # astronaut.jpg
    out = pipe(image, seed=0)
    assert out.faces, "the small face must be detected for this test to mean anything"
    for record in out.faces:
        assert record.treatment == "obscured" and "too small" in record.treatment_reason
        assert _region_changed(image, np.asarray(out.image), record.box) > 0.9


def test_a_small_face_becomes_a_stranger_not_a_mosaic(pipe, example_paths):
    """Faces of 16-40 px go through step 2 like any other (judged at the size they are pasted at)."""
    image = _small(example_paths[4], 4)  # obama3.jpg, ~18 px
    (record,) = pipe(image, seed=0).faces
    assert 16 <= record.box[2] - record.box[0] < 40
    assert record.treatment == "anonymized" and record.guard_passed


def test_replace_with_a_classical_method_or_nothing(pipe, example_paths):
    image = load_image(example_paths[0])
    blurred = pipe(image, replace_with="blur")
    assert [f.treatment for f in blurred.faces] == ["obscured"] and "blur" in blurred.faces[0].treatment_reason
    assert blurred.faces[0].cam is None  # step 2 did not run
    untouched = pipe(image, replace_with="none")
    assert [f.treatment for f in untouched.faces] == ["unchanged"]
    assert np.array_equal(np.asarray(untouched.image), image)
    with pytest.raises(ValueError, match="replace_with"):
        pipe(image, replace_with="swap")


def test_the_obscurer_gives_what_the_pipelines_full_pass_gives(pipe, example_paths):
    """A call that only obscures runs on the ``Obscurer`` (nothing of steps 1 and 2); the pipeline's own pass, taken
    when faces may be kept, obscures the same pixels and records the same faces."""
    image = np.concatenate([load_image(example_paths[i])[:275, :225] for i in (1, 2, 3)], axis=1)  # faces side by side
    light = pipe(image, replace_with="blur", mask_scale=1.6)
    full = pipe(image, replace_with="blur", mask_scale=1.6, face_keeps=[None] * len(light.faces))
    assert len(light.faces) >= 2 and np.array_equal(np.asarray(light.image), np.asarray(full.image))
    assert not np.array_equal(np.asarray(light.image), image)
    for a, b in zip(light.faces, full.faces):
        assert (a.treatment, a.treatment_reason) == (b.treatment, b.treatment_reason) == ("obscured", "replace_with='blur'")
        assert np.array_equal(a.box, b.box) and np.array_equal(a.anonymized, b.anonymized)


# ---- the command line -----------------------------------------------------------------------------
def test_cli_counts_treatments_and_fails_a_file_left_recognizable(useless, example_paths, tmp_path, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr(AnonPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: useless))
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(example_paths[0], src / "a.jpg")

    assert main(["anonymize", str(src), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "0 anonymized, 1 obscured" in err and "still recognized" in err
    assert (tmp_path / "out" / "a.png").is_file()

    assert main(["anonymize", str(src), "-o", str(tmp_path / "out2"), "--fallback", "none"]) == 1
    err = capsys.readouterr().err
    assert "could not be anonymized" in err and "1 failed" in err
    assert not (tmp_path / "out2" / "a.png").exists()  # a recognizable face is never written as done
