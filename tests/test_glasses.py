"""The glasses score VAA leaves glasses wearers out by: frames drawn on a bare face raise it past the threshold."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from anon_model.perception.glasses import GLASSES_SCORE, glasses_score


@pytest.fixture(scope="module")
def bare_faces(analyzer, example_paths, example_bank):
    """The bundled faces the bank takes as bare (none of the bundled people wears glasses)."""
    faces = [analyzer(p)[0] for p in example_paths]
    assert not bool(example_bank.glasses.any())
    return faces


def _with_frames(crop: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``crop`` with a thin dark pair of rims around the eyes and a bridge across the nose between them."""
    out = crop.copy()
    iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    for eye in (slice(36, 42), slice(42, 48)):
        centre = points[eye].mean(0)
        axes = (int(0.38 * iod), int(0.24 * iod))
        cv2.ellipse(out, tuple(int(v) for v in centre), axes, 0, 0, 360, (30, 30, 30), 2)
    left, right = points[39], points[42]
    y = int(round((left[1] + right[1]) / 2 - 0.05 * iod))
    cv2.line(out, (int(left[0]), y), (int(right[0]), y), (30, 30, 30), 2)
    return out


def test_frames_raise_the_glasses_score_past_the_threshold(bare_faces):
    for face in bare_faces:
        bare = glasses_score(face.crop, face.crop_landmarks)
        framed = glasses_score(_with_frames(face.crop, face.crop_landmarks), face.crop_landmarks)
        assert bare < GLASSES_SCORE <= framed, (bare, framed)


def test_the_bank_stores_the_scores(example_bank, tmp_path):
    from anon_model.bank import DelegateBank

    again = DelegateBank.load(example_bank.save_pretrained(tmp_path))
    assert again._glasses_scores is not None  # read from the file, not measured again
    stored, measured = again.glasses_scores.numpy(), example_bank.glasses_scores.numpy()
    np.testing.assert_allclose(stored, measured, atol=6e-4)  # kept to 3 decimals
    assert example_bank.subset([1, 2]).glasses_scores.tolist() == example_bank.glasses_scores[[1, 2]].tolist()
