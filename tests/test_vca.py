"""VAA and GSA (paper §3.2) on the shipped delegate bank and the bundled photos."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from anon_model.bank import DelegateBank
from anon_model.conditioning import face_conditioning
from anon_model.ipd import appearance_distance, exponential_mechanism, geometry_distance, utility_appearance
from anon_model.perception import landmarks68 as lm
from anon_model.vca import (
    _LOWER_INNER,
    _LOWER_OUTER,
    _UPPER_INNER,
    _UPPER_OUTER,
    _along,
    geometry_structure_anonymization,
    recover_contour_and_mouth,
    refit_geometry,
    visual_appearance_anonymization,
)


@pytest.fixture(scope="module")
def bank(example_bank):
    return example_bank


@pytest.fixture(scope="module")
def faces(analyzer, example_paths, bank):
    """name -> (Face, embedding in the bank's space) for each bundled photo."""
    out = {}
    for p in example_paths:
        face = analyzer(p)[0]
        out[p.stem] = face, bank.embed(face.crop[None], face.crop_landmarks[None].astype(np.float32))[0]
    return out


def _names(bank, indices):
    return {bank.sources[int(i)].split(".")[0].split("/")[-1] for i in indices}


# ---- VAA ----------------------------------------------------------------------------------------
def test_vaa_never_returns_the_same_identity(bank, faces):
    for name, (_, f) in faces.items():
        for seed in range(5):
            a = visual_appearance_anonymization(f, bank, epsilon=1.0, generator=torch.Generator().manual_seed(seed))
            picked = bank.sources[a.sample.chosen]
            assert name.rstrip("23") not in picked
            assert not any(name.rstrip("23") in s for s in _names(bank, a.sample.candidates))


def test_bank_groups_its_faces_by_identity(bank):
    ids = {source.split(".")[0].rstrip("23"): int(i) for source, i in zip(bank.sources, bank.identities())}
    assert len(set(bank.identities().tolist())) == 3 and len(set(ids.values())) == 3  # obama x3, biden, astronaut


def test_vaa_mixes_distinct_identities_other_than_x(bank, faces):
    """The appearance delegate is a mixture of bank people (never x's own, never one person twice)."""
    for name, (_, f) in faces.items():
        a = visual_appearance_anonymization(f, bank, mixture=3, generator=torch.Generator().manual_seed(1))
        people = [bank.sources[i].split(".")[0].rstrip("23") for i in a.sources]
        assert len(people) == len(set(people)) == 2 and name.rstrip("23") not in people  # 3 people, x is one
        assert a.sources[0] == a.sample.chosen and sum(a.weights) == pytest.approx(1.0)
        singles = [bank.crop(i) for i in a.sources]
        assert a.crop.shape == (256, 256, 3) and not any(np.array_equal(a.crop, c) for c in singles)
        np.testing.assert_allclose(a.landmarks, bank.crop_landmarks(a.sources).mean(0).numpy(), atol=1e-4)
    single = visual_appearance_anonymization(f, bank, mixture=1, generator=torch.Generator().manual_seed(1))
    assert single.sources == [single.sample.chosen] and np.array_equal(single.crop, bank.crop(single.sample.chosen))


def test_vaa_candidates_are_the_k_nearest_and_probabilities_follow_eq6(bank, faces):
    _, f = faces["astronaut"]
    a = visual_appearance_anonymization(f, bank, k=3, epsilon=2.0, generator=torch.Generator().manual_seed(0))
    d_all = appearance_distance(f, bank.embeddings)
    others = [i for i in range(len(bank)) if "astronaut" not in bank.sources[i]]
    nearest = sorted(others, key=lambda i: float(d_all[i]))[:3]
    assert a.sample.candidates.tolist() == nearest
    torch.testing.assert_close(a.sample.distances, d_all[nearest])
    torch.testing.assert_close(a.sample.probabilities, exponential_mechanism(utility_appearance(d_all[nearest]), 2.0))
    assert a.sample.chosen in nearest and 0 < a.sample.chosen_probability <= 1
    assert a.crop.shape == (256, 256, 3)
    torch.testing.assert_close(torch.as_tensor(a.landmarks), bank.landmarks[a.sample.chosen] * 256)


def test_vaa_epsilon_extremes(bank, faces):
    _, f = faces["astronaut"]
    uniform = visual_appearance_anonymization(f, bank, epsilon=0.0)
    n = len(uniform.sample.candidates)
    torch.testing.assert_close(uniform.sample.probabilities, torch.full((n,), 1 / n, dtype=torch.float64))
    greedy = visual_appearance_anonymization(f, bank, epsilon=1e4, generator=torch.Generator().manual_seed(3))
    assert greedy.sample.chosen == int(greedy.sample.candidates[greedy.sample.distances.argmin()])


def test_vaa_sampling_frequencies_match_probabilities(bank, faces):
    _, f = faces["astronaut"]
    g = torch.Generator().manual_seed(42)
    draws = [visual_appearance_anonymization(f, bank, epsilon=1.5, generator=g) for _ in range(600)]
    cand = draws[0].sample.candidates.tolist()
    counts = np.array([sum(d.sample.chosen == c for d in draws) for c in cand])
    _, pvalue = stats.chisquare(counts, draws[0].sample.probabilities.numpy() * len(draws))
    assert pvalue > 0.01


def test_vaa_fails_clearly_when_only_the_same_person_is_in_the_bank(bank, faces):
    from anon_model.errors import AnonModelError

    obama_only = DelegateBank(embeddings=bank.embeddings[2:], landmarks=bank.landmarks[2:], poses=bank.poses[2:],
                              crops=bank.crops[2:], sources=bank.sources[2:], embedder="dlib", threshold=0.6,
                              crop_size=256)
    with pytest.raises(AnonModelError, match="no face of another identity"):
        visual_appearance_anonymization(faces["obama"][1], obama_only)


# ---- GSA ----------------------------------------------------------------------------------------
def test_gsa_pose_tolerance_relaxes_and_candidates_respect_it(bank, faces):
    face, f = faces["obama2"]  # yaw ~ 34 degrees: nobody else in the bank is that turned
    g = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f,
                                         pose_tolerance=(5.0, 5.0, 5.0), min_candidates=2,
                                         generator=torch.Generator().manual_seed(0))
    assert g.pose_tolerance[0] > 5.0 and len(g.sample.candidates) >= 2
    gap = (bank.poses[g.sample.candidates] - torch.as_tensor(face.pose, dtype=torch.float32)).abs()
    assert bool((gap <= torch.tensor(g.pose_tolerance)).all())
    assert "obama" not in " ".join(_names(bank, g.sample.candidates))
    strict = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f,
                                              pose_tolerance=(5.0, 5.0, 5.0), min_candidates=1)
    assert len(strict.sample.candidates) <= len(g.sample.candidates)


def test_gsa_prefers_distinct_geometry_and_recovers_contour_and_mouth(bank, faces):
    face, f = faces["biden"]
    g = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f, epsilon=1e4,
                                         recover="contour_and_mouth", generator=torch.Generator().manual_seed(0))
    d = geometry_distance(torch.as_tensor(face.crop_landmarks, dtype=torch.float32),
                          bank.landmarks[g.sample.candidates] * 256)
    torch.testing.assert_close(g.sample.distances, d)
    assert g.sample.chosen == int(g.sample.candidates[d.argmax()])  # u_g: most distinct structure
    s_x, s_hat, s_bar = face.crop_landmarks, g.anonymized_landmarks, g.delegate_landmarks
    np.testing.assert_allclose(s_hat[lm.JAW], s_x[lm.JAW])
    np.testing.assert_allclose(s_hat[lm.INNER_LIPS], s_x[lm.INNER_LIPS])
    inner_face = slice(17, 48)
    iod = np.linalg.norm(s_x[36:42].mean(0) - s_x[42:48].mean(0))
    assert np.linalg.norm(s_hat[inner_face] - s_x[inner_face], axis=1).mean() > 0.02 * iod  # geometry changed
    assert not np.allclose(s_hat, s_bar)  # S-hat_x is not S-bar (paper: less identity intrusion)


def test_recover_expression_takes_the_delegates_structure_and_xs_expression(bank, faces):
    """Our default S-hat_x: the delegate's jaw and eye shapes (fitted onto x's pose), x's mouth opening and eye
    opening; the paper's variant keeps x's jaw instead."""
    from anon_model.vca import _eye_opening, recover_expression

    face, _ = faces["biden"]
    s_x = face.crop_landmarks.astype(np.float64)
    s_bar = bank.crop_landmarks(0).numpy().astype(np.float64)  # the astronaut's face
    s_hat = recover_expression(s_bar, s_x)
    iod = np.linalg.norm(s_x[36:42].mean(0) - s_x[42:48].mean(0))
    assert np.linalg.norm(s_hat[lm.JAW] - s_x[lm.JAW], axis=1).mean() > 0.05 * iod  # not x's jaw
    np.testing.assert_allclose(s_hat[lm.INNER_LIPS], s_x[lm.INNER_LIPS])  # x's mouth opening
    for eye in (lm.RIGHT_EYE, lm.LEFT_EYE):
        assert _eye_opening(s_hat[eye]) == pytest.approx(_eye_opening(s_x[eye]), rel=0.02)  # scaled upright


def test_gsa_push_moves_the_structure_away_from_x_and_keeps_its_expression(bank, faces):
    """The guard's retries push S-bar beyond itself, away from S_x: the nose and brows end (1 + push) times as far
    from x's as the delegate's are, x's mouth opening stays, and a video track's refit keeps the push."""
    face, f = faces["biden"]
    s_x = face.crop_landmarks.astype(np.float64)
    plain, pushed = (geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f, push=push,
                                                      generator=torch.Generator().manual_seed(0))
                     for push in (0.0, 0.5))
    assert pushed.sample.chosen == plain.sample.chosen and pushed.push == 0.5
    np.testing.assert_allclose(pushed.delegate_landmarks, plain.delegate_landmarks)  # S-bar itself is the same
    nose_brows = list(range(17, 36))
    gap = lambda s: np.linalg.norm(s[nose_brows] - s_x[nose_brows], axis=1).mean()  # noqa: E731
    assert gap(pushed.anonymized_landmarks) == pytest.approx(1.5 * gap(plain.anonymized_landmarks), rel=0.05)
    np.testing.assert_allclose(pushed.anonymized_landmarks[lm.INNER_LIPS], s_x[lm.INNER_LIPS])
    again = refit_geometry(pushed, s_x, bank)
    np.testing.assert_allclose(again.anonymized_landmarks, pushed.anonymized_landmarks, atol=1e-6)


def test_recover_keeps_the_delegates_lip_thickness_and_xs_opening():
    rng = np.random.default_rng(0)
    base = np.zeros((68, 2))
    base[lm.JAW] = np.stack([np.linspace(40, 216, 17), 150 + 60 * np.sin(np.linspace(0, np.pi, 17))], 1)
    base[17:48] = rng.uniform(80, 170, (31, 2))
    width = np.linspace(100, 156, 7)
    base[_UPPER_OUTER] = np.stack([width, [190, 184, 180, 182, 180, 184, 190]], 1)
    base[_LOWER_OUTER] = np.stack([width[::-1], [190, 198, 204, 206, 204, 198, 190]], 1)
    base[_UPPER_INNER] = np.stack([np.linspace(104, 152, 5), [190, 188, 188, 188, 190]], 1)
    base[_LOWER_INNER] = np.stack([np.linspace(152, 104, 5), [190, 192, 192, 192, 190]], 1)
    original = base.copy()
    original[60:68, 1] += np.array([0, -4, -4, -4, 0, 6, 6, 6])  # x's mouth is open
    delegate = base.copy()
    delegate[_UPPER_OUTER[1:-1], 1] -= 5  # the delegate has a thicker upper lip
    out = recover_contour_and_mouth(delegate, original)
    np.testing.assert_allclose(out[lm.INNER_LIPS], original[lm.INNER_LIPS])
    t = np.linspace(0, 1, 7)
    for outer, inner in ((_UPPER_OUTER, _UPPER_INNER), (_LOWER_OUTER, _LOWER_INNER)):
        np.testing.assert_allclose(out[outer] - _along(out[inner], t), delegate[outer] - _along(delegate[inner], t))
    np.testing.assert_allclose(out[17:48], delegate[17:48])


def test_face_conditioning_follows_the_contract(bank, faces):
    face, f = faces["biden"]
    g = torch.Generator().manual_seed(0)
    a = visual_appearance_anonymization(f, bank, generator=g)
    geo = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f, generator=g)
    c = face_conditioning(face, a, geo, z_id=f, attention=np.ones((256, 256), np.float32))
    shapes = {"x": (3, 256, 256), "z_id": (128,), "z_a": (3, 256, 256), "z_g": (4, 256, 256), "landmarks": (68, 2),
              "landmarks_anon": (68, 2), "delegate_crop": (3, 256, 256), "delegate_landmarks": (68, 2),
              "mask": (256, 256), "attention": (256, 256)}
    for name, shape in shapes.items():
        value = getattr(c, name)
        assert value.shape == shape and value.dtype == torch.float32, name
    assert float(c.x.max()) <= 1 and float(c.delegate_crop.max()) <= 1
    torch.testing.assert_close(c.landmarks_anon, torch.as_tensor(geo.anonymized_landmarks, dtype=torch.float32))


def test_farthest_baseline_takes_the_k_farthest_faces(bank, faces):
    """Paper Table 5's k-farthest-neighbour delegates: VAA by identity distance, GSA by landmark distance."""
    face, f = faces["astronaut"]
    a = visual_appearance_anonymization(f, bank, k=2, epsilon=0.0, farthest=True)
    d_all = appearance_distance(f, bank.embeddings)
    others = [i for i in range(len(bank)) if "astronaut" not in bank.sources[i]]
    assert a.sample.candidates.tolist() == sorted(others, key=lambda i: -float(d_all[i]))[:2]
    g = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f, k=2, farthest=True)
    near = geometry_structure_anonymization(face.crop_landmarks, face.pose, bank, embedding=f, k=len(bank))
    assert set(g.sample.candidates.tolist()) <= set(near.sample.candidates.tolist())
    assert float(g.sample.distances.min()) >= float(near.sample.distances.sort(descending=True).values[1]) - 1e-6


# ---- attributes kept: VAA's candidates share x's gender and age bracket --------------------------
def test_vaa_matches_gender_and_age_bracket_where_the_bank_has_them(bank, faces):
    from anon_model.attributes import FaceAttributes

    assert [a.gender for a in bank.attributes] == ["female", "male", "male", "male", "male"]  # shipped estimates
    _, astronaut = faces["astronaut"]
    older_man = FaceAttributes("male", 52.0)  # bracket 50-64: obama2 (51), obama3 (53) of the bank
    a = visual_appearance_anonymization(astronaut, bank, mixture=1, attributes=older_man)
    assert _names(bank, a.sample.candidates) == {"obama2", "obama3"} and a.attribute_filter == "gender (male) and age 50-64"
    two = visual_appearance_anonymization(astronaut, bank, mixture=2, attributes=older_man)  # the bracket holds 1 person
    assert _names(bank, two.sample.candidates) == {"biden", "obama", "obama2", "obama3"} and len(two.sources) == 2
    assert two.attribute_filter == "gender (male); age 50-64 left too few faces"
    _, obama = faces["obama"]
    woman = FaceAttributes("female", 40.0)
    single = visual_appearance_anonymization(obama, bank, mixture=1, attributes=woman)
    assert _names(bank, single.sample.candidates) == {"astronaut"} and single.attribute_filter.startswith("gender (female)")
    mixed = visual_appearance_anonymization(obama, bank, mixture=3, attributes=woman)  # one woman: no mixture of her
    assert _names(bank, mixed.sample.candidates) == {"astronaut", "biden"} and len(mixed.sources) == 2
    assert mixed.attribute_filter == "none: one female person among the bank's candidates, and a mixture needs two"
    alone = visual_appearance_anonymization(astronaut, bank, attributes=FaceAttributes("female", 30.0))
    assert alone.attribute_filter == "none: no female face among the bank's candidates" and len(alone.sample.candidates) == 4
    off = visual_appearance_anonymization(astronaut, bank, mixture=1)
    assert off.attribute_filter == "off" and len(off.sample.candidates) == 4


def test_vaa_leaves_glasses_wearers_out_while_enough_people_remain(bank, faces):
    """A mixture averages its members, so a member's glasses would show half-transparent: VAA leaves glasses out,
    unless that leaves fewer people than the mixture needs."""
    import copy

    worn = copy.copy(bank)
    worn._glasses_scores = torch.tensor([0.0 if "biden" not in s else 9.0 for s in bank.sources])
    _, astronaut = faces["astronaut"]
    one = visual_appearance_anonymization(astronaut, worn, mixture=1)
    assert _names(worn, one.sample.candidates) == {"obama", "obama2", "obama3"}
    assert one.attribute_filter == "off; no glasses"
    two = visual_appearance_anonymization(astronaut, worn, mixture=2)  # without biden: one person left
    assert "biden" in _names(worn, two.sample.candidates) and two.attribute_filter == "off"


def test_vaa_draws_unfiltered_from_a_bank_without_attributes(bank, faces):
    from anon_model.attributes import FaceAttributes
    from anon_model.vca import DelegateDraw

    old = DelegateBank(embeddings=bank.embeddings, landmarks=bank.landmarks, poses=bank.poses, crops=bank.crops,
                       sources=bank.sources, embedder="dlib", threshold=0.6, crop_size=256)  # a format-1 bank
    a = visual_appearance_anonymization(faces["astronaut"][1], old, mixture=1, attributes=FaceAttributes("male", 52.0))
    assert len(a.sample.candidates) == 4 and a.attribute_filter.startswith("none: the bank has no gender/age")
    draw = DelegateDraw(a, geometry_structure_anonymization(faces["astronaut"][0].crop_landmarks, faces["astronaut"][0].pose, old))
    assert draw.attribute_filter == a.attribute_filter
