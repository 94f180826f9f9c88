"""x's skin tone for VAA, checked against its features as the bank shows them: the same in a dark or a bright photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anon_model.attributes import skin_tone
from anon_model.bank import DEFAULT_BANK_DIR, DelegateBank
from anon_model.bank.tone import MIN_FACES, ToneModel


def test_the_fit_recovers_a_linear_tone_and_how_far_the_bank_lies_from_it():
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(400, 16, generator=gen) * 0.3
    direction = torch.randn(16, generator=gen)
    tones = embeddings @ direction * 30 + 20 + torch.randn(400, generator=gen)  # noise of 1 degree
    tones[:50] = float("nan")  # greyscale faces: no tone measured
    model = ToneModel.fit(embeddings, tones)
    fresh = torch.randn(20, 16, generator=gen) * 0.3
    truth = (fresh @ direction * 30 + 20).numpy()
    assert np.abs(np.array([model(e) for e in fresh]) - truth).max() < 3.0
    assert 0.8 < model.spread < 2.5  # the 80th percentile of |N(0, 1)| is 1.28
    assert model.settle(fresh[0], truth[0] + 1.0) == truth[0] + 1.0  # a measurement that agrees stands
    assert abs(model.settle(fresh[0], truth[0] + 40.0) - truth[0]) < 3.0  # one far off gives way to the reading
    assert abs(model.settle(fresh[0], float("nan")) - truth[0]) < 3.0  # a greyscale face gets the reading


def test_a_bank_too_small_to_fit_on_leaves_the_tone_to_the_photo(example_bank):
    few = torch.full((MIN_FACES + 10,), float("nan"))
    few[:MIN_FACES - 1] = 10.0
    assert ToneModel.fit(torch.randn(MIN_FACES + 10, 8), few) is None
    assert example_bank.tone_model is None and example_bank.tone_of(example_bank.embeddings[0], -12.5) == -12.5


@pytest.fixture(scope="module")
def shipped_bank() -> DelegateBank:
    return DelegateBank.load(DEFAULT_BANK_DIR)


def _tones(bank: DelegateBank, analyzer, path, gain: float = 1.0) -> tuple[float, float]:
    """The photo's face's tone as measured on its cheeks, and as the bank settles it."""
    face = analyzer(np.clip(np.asarray(Image.open(path).convert("RGB")) * gain, 0, 255).astype(np.uint8))[0]
    measured = skin_tone(face.crop, face.crop_landmarks)
    return measured, bank.tone_of(bank.embed(face.crop[None], face.crop_landmarks[None])[0], measured)


def test_darkening_the_photo_moves_the_measured_tone_not_the_settled_one(shipped_bank, analyzer, example_paths):
    biden = next(p for p in example_paths if p.name == "biden.jpg")
    (measured, settled), (measured_dark, settled_dark) = (_tones(shipped_bank, analyzer, biden, g) for g in (1, 0.6))
    assert abs(measured_dark - measured) > 30  # exposure alone moves the photo's ITA from brown to dark
    assert abs(settled_dark - settled) < 5


def test_one_person_in_three_photos_reads_closer_and_apart_from_another(shipped_bank, analyzer, example_paths):
    tones = {p.stem: _tones(shipped_bank, analyzer, p) for p in example_paths if p.stem != "astronaut"}
    obama = np.array([tones[n] for n in ("obama", "obama2", "obama3")])
    assert tones["biden"][0] < obama[:, 0].min()  # measured: the photos' light decides, even which man is darker
    assert np.ptp(obama[:, 1]) < np.ptp(obama[:, 0]) / 2 and tones["biden"][1] > obama[:, 1].max() + 5


def test_the_delegates_record_says_when_the_tone_was_read_from_features(shipped_bank, analyzer, example_paths):
    from anon_model.preprocessor import x_skin_tone

    faces = {p.stem: analyzer(p)[0] for p in example_paths if p.stem in ("biden", "astronaut")}
    said = {name: x_skin_tone(f, shipped_bank.embed(f.crop[None], f.crop_landmarks[None])[0], shipped_bank)
            for name, f in faces.items()}
    assert said["astronaut"][1] == ""  # a well-lit photo: its own measurement stands
    assert said["biden"][1] == "read from its features; the photo's light measured -24"
