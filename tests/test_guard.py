"""The guard's second check: a result that does not look like a face with the structure asked for counts as failing,
and a face whose every try is implausible is obscured with that reason, never reported as anonymized."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from anon_model import AnonPipeline
from anon_model.guard import (ATTACKS, BRIGHTNESS_ONLY, GIVE_UP_AFTER, GREYSCALE_THRESHOLDS, LEVELLED_TWIN, MAX_GAIN,
                              TURNS_ONLY, BestTries, GuardOutcome, IdentityGuard, InPhoto, Verdict, brighten, equalize,
                              rotate, view_twins)
from anon_model.perception.face import colour_counts
from anon_model.plausibility import KEPT_SLACK, MAX_NME, Plausibility, default_check, landmark_nme


def _as_result(face) -> tuple[torch.Tensor, SimpleNamespace]:
    """A real face's crop as a step-2 result (3,S,S) in [0,1], asked for its own structure S_x."""
    x = torch.from_numpy(face.crop).permute(2, 0, 1).float() / 255
    s_x = torch.from_numpy(face.crop_landmarks).float()
    return x, SimpleNamespace(x=x, landmarks=s_x, landmarks_anon=s_x)


@pytest.fixture(scope="module")
def pipe():
    return AnonPipeline.from_pretrained(None)


@pytest.fixture(scope="module")
def real(analyzer, example_paths):
    """The bundled photos' faces as results that are exactly what was asked for."""
    crops, conds = zip(*[_as_result(analyzer(p)[0]) for p in example_paths])
    return torch.stack(crops), list(conds)


def _scramble_eyes(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The band of both eyes and the band of the mouth swapped: eyes where the mouth was, and the other way round."""
    out = crop.copy()
    eyes, mouth = landmarks[36:48, 1].mean(), landmarks[48:68, 1].mean()
    half = 16
    e, m = (slice(int(v) - half, int(v) + half) for v in (eyes, mouth))
    out[e], out[m] = crop[m], crop[e]
    return out


def test_landmark_nme_ignores_pose_and_scale_but_not_shape(real):
    _, conds = real
    s = conds[0].landmarks.numpy().astype(np.float64)
    angle = np.radians(20)
    moved = 1.3 * s @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) + 7
    assert landmark_nme(moved, s) < 1e-9
    bent = s.copy()
    bent[36:48] += [0, 20]  # the eyes dropped to the nose
    assert landmark_nme(bent, s) > MAX_NME


def test_real_faces_are_plausible(real):
    crops, conds = real
    result = default_check()(crops, conds)
    assert result.passed.all(), (result.score, result.error)
    assert [result.reason(i) for i in range(len(crops))] == [""] * len(crops)


def test_broken_faces_are_not_plausible(real):
    """A blank crop, the eyes scrambled with the mouth, the face turned 90 degrees in the crop: none passes."""
    crops, conds = real
    check = default_check()
    face = (crops[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    broken = {
        "blank": np.full_like(face, 128),
        "scrambled": _scramble_eyes(face, conds[0].landmarks.numpy()),
        "turned 90": np.ascontiguousarray(np.rot90(face)),
    }
    images = torch.stack([torch.from_numpy(b).permute(2, 0, 1).float() / 255 for b in broken.values()])
    result = check(images, [conds[0]] * len(broken))
    assert not result.passed.any(), dict(zip(broken, zip(result.score, result.error)))
    assert result.reason(0) == "no face found in the result"
    assert all(result.reason(i) for i in range(len(broken)))


def _verdict(distance: float | list[float], reason: str = "") -> Verdict:
    """Each face's verdict (one per ``distance``): that distance to the original and to the bank, implausible when
    ``reason`` is given."""
    d = torch.tensor(np.atleast_1d(distance), dtype=torch.float32)
    plausible = Plausibility(np.ones(len(d)), np.full(len(d), 0.2 if reason else 0.0), max_error=0.1)
    return Verdict(d, d, torch.zeros(len(d), dtype=torch.long), d + 0.5, plausible, limit=0.65, original_limit=0.65,
                   second_limit=1.0)


def _guard(limit: float = 0.65, original_limit: float = 0.65, second_limit: float = 1.0) -> SimpleNamespace:
    """What ``BestTries.outcome`` reads of a guard."""
    return SimpleNamespace(identity=SimpleNamespace(threshold=0.6), limit=limit, original_limit=original_limit,
                           original_margin=original_limit - 0.6, second_limit=second_limit,
                           second=SimpleNamespace(name="facenet-casia"),
                           name_of=lambda i: f"bank person P{i}")


def _outcome(tries: BestTries, limit: float = 0.65) -> GuardOutcome:
    return tries.outcome(0, _guard(limit, limit))


def test_a_distorted_try_fails_and_never_replaces_a_passing_one():
    tries, crop = BestTries(1), torch.zeros(1, 3, 4, 4)
    tries.add([0], crop, [None], _verdict(0.9, "distorted"))  # far from everyone, but no natural face
    assert tries.failing() == [0]
    outcome = _outcome(tries)
    assert not outcome.passed and "natural-looking" in outcome.reason() and "recognized" not in outcome.reason()
    tries.add([0], crop, [None], _verdict(0.7))  # natural and far enough
    assert tries.failing() == [] and tries.best[0].number == 2
    assert _outcome(tries).passed and _outcome(tries).reason() == ""
    tries.add([0], crop, [None], _verdict(1.2, "distorted"))  # farther still, distorted: never replaces a pass
    assert tries.best[0].number == 2 and _outcome(tries).attempts == 3


def test_each_recognizer_and_the_bank_limit_must_pass_on_its_own():
    """Not the original under dlib AND under FaceNet-CASIA (each its own limit), and no nearer to a bank person
    than the bank's calibrated limit: failing any one fails the try, and the reason names which."""
    limits = dict(limit=0.44, original_limit=0.62, second_limit=1.02)

    def verdict(original: float, second: float, bank: float) -> Verdict:
        plausible = Plausibility(np.array([1.0]), np.array([0.0]), max_error=0.1)
        return Verdict(torch.tensor([original]), torch.tensor([bank]), torch.tensor([3]), torch.tensor([second]),
                       plausible, **limits)

    guard = _guard(**limits)
    cases = {"by dlib": verdict(0.6, 1.2, 0.7), "by facenet-casia": verdict(0.8, 0.95, 0.7),
             "too close to bank person P3": verdict(0.8, 1.2, 0.43)}
    for words, v in cases.items():
        tries = BestTries(1)
        tries.add([0], torch.zeros(1, 3, 4, 4), [None], v)
        assert tries.failing() == [0] and words in tries.outcome(0, guard).reason(), words
    tries = BestTries(1)
    tries.add([0], torch.zeros(1, 3, 4, 4), [None], verdict(0.63, 1.03, 0.45))  # just beyond all three
    assert tries.failing() == [] and tries.outcome(0, guard).passed


def test_only_a_face_whose_best_try_stays_far_within_a_limit_is_given_up():
    """After GIVE_UP_AFTER tries, a face whose best try is more than the give-up distance within a limit gets no
    more tries; one nearer passing, one with fewer tries, or any face without the rule (inf) does."""
    crop = torch.zeros(1, 3, 4, 4)
    tries = BestTries(3)
    for _ in range(GIVE_UP_AFTER):
        tries.add([0, 1], torch.zeros(2, 3, 4, 4), [None] * 3, _verdict([0.4, 0.6]))  # 0.25 / 0.05 within 0.65
    tries.add([2], crop, [None] * 3, _verdict(0.4))  # far within, but one try only
    assert tries.retry([0, 1, 2], float("inf")) == [0, 1, 2] and not tries.given_up
    assert tries.retry([0, 1, 2], 0.12) == [1, 2] and tries.given_up == {0}
    assert "(too far from passing to try more)" in tries.outcome(0, _guard()).reason()
    assert "to try more" not in tries.outcome(1, _guard()).reason()


def test_the_guard_judges_the_views_an_attacker_tries(pipe, real):
    """The original itself, equalized or brightened, is still the original to both recognizers: the guard rejects
    x as its own result, and equalize is Pillow's."""
    from PIL import Image, ImageOps

    crops, conds = real
    image = (crops[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ours = (equalize(crops[:1])[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    theirs = np.asarray(ImageOps.equalize(Image.fromarray(image))).astype(int)
    assert np.array_equal(ours, theirs) and np.abs(image.astype(int) - theirs).mean() > 10
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    refs = guard.references(conds)
    assert refs.psi.shape[0] == len(ATTACKS) and refs.second.shape[:2] == (len(ATTACKS), len(conds))
    verdict = guard.verify(crops, conds, refs)
    assert bool((verdict.original < 1e-3).all()) and bool((verdict.second < 1e-3).all())
    assert bool((verdict.room < 0).all())


def test_a_result_that_fails_any_view_fails(pipe, real, monkeypatch):
    """Two strangers' faces as each other's results pass as they are; add a view in which every face looks the same
    and they fail under it, whatever the other views say."""
    crops, conds = real
    asked = [SimpleNamespace(x=conds[i].x, landmarks=conds[i].landmarks, landmarks_anon=conds[j].landmarks)
             for i, j in ((0, 1), (1, 0))]  # the astronaut's face answered with Biden's, and the other way round
    results = crops[[1, 0]]
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    assert bool((guard.verify(results, asked, guard.references(asked)).room >= 0).all())
    monkeypatch.setitem(ATTACKS, "fogged", lambda c, p, u: (torch.full_like(c, 0.5), p))
    verdict = guard.verify(results, asked, guard.references(asked))
    assert bool((verdict.room < 0).all()) and bool((verdict.original < 1e-3).all())


def test_each_recognizer_sees_all_views_in_one_batch(pipe, real, monkeypatch):
    """The originals' views are embedded in one call, and a result that passes as it is has its other views embedded
    in one more: FaceNet-CASIA costs about half as much per face at batch 5 as at batch 1."""
    crops, conds = real
    asked = [SimpleNamespace(x=conds[i].x, landmarks=conds[i].landmarks, landmarks_anon=conds[j].landmarks)
             for i, j in ((0, 1), (1, 0))]
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    embed, calls = guard.second.embed, []
    monkeypatch.setattr(guard.second, "embed", lambda images, points: calls.append(len(images)) or embed(images, points))
    refs = guard.references(asked)
    # FaceNet-CASIA prewhitens (brightened and darkened are "as is" to it), and for upright faces the views at their
    # roll repeat the levelled ones: as is, equalized and turned either way
    assert calls == [2 * 4]
    assert bool((guard.verify(crops[[1, 0]], asked, refs).room >= 0).all())
    # as it is: framed by S-hat_x and by S_x, in one call; then the other views, "in its photo", brightened and
    # darkened too since their twin "as is" was checked apart
    assert calls[1:] == [2 * 2, 2 * 6]


def test_a_view_at_the_faces_roll_is_embedded_only_for_a_rolled_face(pipe, real):
    """For a face level in its photo the views at its roll are their levelled twins' (embedded once); for a face
    rolled in it they are embedded, and they differ."""
    _, conds = real
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    refs = guard.references(conds[:2], InPhoto.alone(2, [0.5, 12.0]))
    names = list(ATTACKS)
    for rolled, levelled in LEVELLED_TWIN.items():
        r, l = names.index(rolled), names.index(levelled)
        np.testing.assert_array_equal(refs.second[r, 0], refs.second[l, 0])
        assert np.linalg.norm(refs.second[r, 1] - refs.second[l, 1]) > 0.05


def test_each_recognizer_embeds_only_the_views_it_tells_apart(pipe, real):
    """dlib levels a face by its landmarks: the views that only turn the photo are its unturned twins; FaceNet-CASIA
    prewhitens: brightened and darkened are the photo as it is. Embedded anyway, the two people are as far apart in
    each such view as in its twin (within 0.02)."""
    _, conds = real
    names = list(ATTACKS)
    assert view_twins(names, levels_faces=True, prewhitens=False) == [TURNS_ONLY.get(n) for n in names]
    assert view_twins(names[1:], levels_faces=False, prewhitens=True) == [None] * (len(names) - 1)  # no "as is"
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    rolled = InPhoto.alone(2, [0.5, 12.0])
    refs = guard.references(conds[:2], rolled)
    x = torch.stack([c.x for c in conds[:2]]).float()
    s_x = torch.stack([c.landmarks for c in conds[:2]]).float()
    for view, twin in {**TURNS_ONLY, **BRIGHTNESS_ONLY}.items():
        v, t = names.index(view), names.index(twin)
        pixels, framing = ATTACKS[view](x, s_x, rolled)
        if view in TURNS_ONLY:
            torch.testing.assert_close(refs.psi[v], refs.psi[t])
            with torch.inference_mode():
                e = pipe.preprocessor.identity.embed(pixels, landmarks=framing)
            apart, twin_apart = (float(pipe.preprocessor.identity.distance(a[0], a[1])) for a in (e, refs.psi[t]))
        else:
            np.testing.assert_array_equal(refs.second[v], refs.second[t])
            e = guard.second.embed(list((pixels * 255).round().byte().permute(0, 2, 3, 1).numpy()), list(framing.numpy()))
            apart, twin_apart = (float(np.linalg.norm(a[0] - a[1])) for a in (e, refs.second[t]))
        assert abs(apart - twin_apart) < 0.02, view


def test_the_views_are_framed_where_the_face_is_found_on_the_result(pipe, real, monkeypatch):
    """An attacker looks for the face on the result: with the naturalness check on, every view of a result that
    passes as it is (the view as it is again too) is framed by the landmarks that check found, not by S-hat_x."""
    crops, conds = real
    asked = [SimpleNamespace(x=conds[i].x, landmarks=conds[i].landmarks, landmarks_anon=conds[j].landmarks)
             for i, j in ((0, 1), (1, 0))]
    shifted = np.stack([c.landmarks_anon.numpy() for c in asked]) + 3.0  # "found" 3 px off S-hat_x

    class Finder:
        max_error, min_score = 0.1, 0.5

        def __call__(self, images, conds):
            return Plausibility(np.ones(len(images)), np.zeros(len(images)), found=shifted[:len(images)])

    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=Finder())
    embed, framed = guard.second.embed, []
    monkeypatch.setattr(guard.second, "embed",
                        lambda images, points: framed.append(np.stack(points)) or embed(images, points))
    refs = guard.references(asked)
    assert bool((guard.verify(crops[[1, 0]], asked, refs).room >= 0).all())
    views = framed[-1].reshape(4, 2, 68, 2)  # upright: as is, equalized, turned either way (see above)
    np.testing.assert_allclose(views[0], shifted, atol=1e-4)  # as it is, framed where the face was found
    np.testing.assert_allclose(views[1], shifted, atol=1e-4)  # equalized: pixels only, same framing


def test_a_kept_draw_has_slack_at_the_naturalness_limit(pipe, real):
    """A video track's kept draw passes the naturalness check up to KEPT_SLACK beyond its limit (the landmarker's
    frame-to-frame wander must not blink it to a mosaic); a fresh try with the same error fails, naming the limit."""
    crops, conds = real
    asked = [SimpleNamespace(x=conds[i].x, landmarks=conds[i].landmarks, landmarks_anon=conds[j].landmarks)
             for i, j in ((0, 1), (1, 0))]
    error = MAX_NME + KEPT_SLACK / 2

    class Wobbly:
        max_error, min_score = MAX_NME, 0.5

        def __call__(self, images, conds):
            return Plausibility(np.ones(len(images)), np.full(len(images), error))

    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=Wobbly())
    refs = guard.references(asked)
    verdict = guard.verify(crops[[1, 0]], asked, refs, kept=[True, False])
    assert bool((verdict.room >= 0).all())  # both are strangers: only the naturalness limit tells them apart
    assert verdict.implausible(0) == ""
    assert f"landmark error {error:.3f} > {MAX_NME:.3f}" in verdict.implausible(1)
    assert all(guard.verify(crops[[1, 0]], asked, refs).implausible(k) for k in (0, 1))


def test_a_crop_is_equalized_and_brightened_as_its_whole_photo_would_be(real):
    """The attacker equalizes or brightens the whole photo: a face crop in a large bright photo, and a result pasted
    in its place, look in the guard's views exactly as they do in the whole photo so treated, which is not how the
    crop looks treated alone (obama2.jpg enlarged 4x was found again only in the whole photo equalized); unless
    equalizing the whole photo would posterize the face."""
    from PIL import Image, ImageOps

    crops, conds = real
    as_uint8 = lambda t: (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    x, result = as_uint8(crops[0]), as_uint8(crops[1])  # a stranger's face as the result
    photo = np.random.default_rng(0).normal(190, 45, (700, 900, 3)).clip(0, 255).astype(np.uint8)  # bright, busy
    top, left = 300, 400
    photo[top:top + 256, left:left + 256] = x
    face = SimpleNamespace(matrix=np.array([[1.0, 0, -left], [0, 1.0, -top]]), crop=x,
                           crop_landmarks=conds[0].landmarks.numpy(), photo_histogram=colour_counts(photo),
                           mask=np.ones((256, 256), np.float32))
    where = InPhoto.of([face])
    pasted = photo.copy()
    pasted[top:top + 256, left:left + 256] = result
    region = (slice(top, top + 256), slice(left, left + 256))
    for crop, whole in ((crops[:1], photo), (crops[1:2], pasted)):
        seen = as_uint8(equalize(crop, where)[0])
        assert np.array_equal(seen, np.asarray(ImageOps.equalize(Image.fromarray(whole)))[region])
        assert np.abs(seen.astype(int) - as_uint8(equalize(crop)[0])).mean() > 10  # not the crop equalized alone
        brightened = brighten(torch.from_numpy(whole).permute(2, 0, 1)[None].float() / 255)
        assert torch.allclose(brighten(crop, where), brightened[0, :, region[0], region[1]], atol=1e-6)
    photo[:] = 235  # a plain backdrop: equalized whole, the face would be posterized (a view that shows no one)
    photo[region] = x
    face.photo_histogram = colour_counts(photo)
    assert np.array_equal(equalize(crops[:1], InPhoto.of([face])), equalize(crops[:1]))  # so the crop alone counts


def test_brightening_goes_as_far_as_the_highlights_allow():
    """A dark crop is brightened by the full gain; a bright one only until its 99th percentile reaches white, so the
    view never washes a face out."""
    dark, bright = ((torch.rand(2, 1, 3, 32, 32) * torch.tensor([0.5, 0.95])[:, None, None, None, None] * 255).round()
                    / 255)  # whole levels, as in a photo
    assert torch.allclose(brighten(dark), dark * MAX_GAIN)
    lifted = brighten(bright)
    gain = float((lifted / bright)[bright > 0.1].min())
    assert 1.0 < gain < MAX_GAIN and float((bright * gain > 1 + 1e-6).float().mean()) <= 0.01
    assert float(lifted.max()) == 1.0


def test_a_turned_view_carries_its_landmarks_along():
    """The turned view moves each landmark with the pixels: a bright dot at a landmark is still under it after."""
    crops, points = torch.zeros(1, 3, 64, 64), torch.tensor([[[40.0, 20.0]]])
    crops[0, :, 19:22, 39:42] = 1.0
    turned, moved = rotate(crops, points, degrees=30)
    x, y = moved[0, 0].round().long().tolist()
    assert float(turned[0, 0, y, x]) > 0.5 and not torch.allclose(moved, points)
    assert float(turned[0, 0, 20, 40]) < 0.5  # the dot left its old place


def test_the_turned_view_shows_the_face_as_the_turned_photo_does():
    """The attacker turns the photo, not the levelled crop: a face rolled in its photo must be seen in the guard's
    turned view at its roll plus the turn (eye line compared with the photo's, turned by the same 15 degrees)."""
    from anon_model.guard import TURN, InPhoto, _turned
    from anon_model.perception.align import alignment_matrix, crop_turn, transform_points

    def eye_angle(points: np.ndarray) -> float:  # counter-clockwise as seen (y points down)
        d = points[42:48].mean(0) - points[36:42].mean(0)
        return float(np.degrees(np.arctan2(-d[1], d[0])))

    rng = np.random.default_rng(0)
    face = np.zeros((68, 2))
    face[36:42], face[42:48] = [80, 100] + rng.normal(0, 1, (6, 2)), [140, 100] + rng.normal(0, 1, (6, 2))
    face[30], face[48], face[54] = [110, 130], [90, 160], [130, 160]
    face[:36], face[60:] = [110, 120], [110, 160]
    for roll in (-10.0, 0.0, 12.0):
        c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
        photo = (face - 110) @ np.array([[c, -s], [s, c]]) + [300, 200]  # rolled counter-clockwise by `roll`
        matrix = alignment_matrix(photo)
        crop_points = torch.from_numpy(transform_points(photo, matrix)).float()[None]
        assert abs(eye_angle(crop_points[0].numpy())) < 1.0 and crop_turn(matrix) == pytest.approx(-roll, abs=1.0)
        where = InPhoto.alone(1, [crop_turn(matrix)])
        _, seen = _turned(TURN)(torch.zeros(1, 3, 256, 256), crop_points, where)
        assert eye_angle(seen[0].numpy()) == pytest.approx(eye_angle(photo) + TURN, abs=1.0)
        for view in LEVELLED_TWIN:  # the untouched and the equalized photo, the face at its own roll
            _, untouched = ATTACKS[view](torch.zeros(1, 3, 256, 256), crop_points, where)
            assert eye_angle(untouched[0].numpy()) == pytest.approx(eye_angle(photo), abs=1.0)


def test_reason_names_each_check_that_failed():
    tries = BestTries(1)
    tries.add([0], torch.zeros(1, 3, 4, 4), [None], _verdict(0.3, "distorted"))
    reason = _outcome(tries).reason()
    assert "still recognized as the original" in reason and "natural-looking" in reason and "after 1 tries" in reason


class Blank:
    """A step 2 whose every result is a grey square: far from everyone, and no face."""

    description = "test synthesizer that returns a blank crop"

    def synthesize(self, conds, *, generator=None, effort=0.0):
        return torch.full((len(conds), 3, *conds[0].x.shape[-2:]), 0.5)


def test_a_face_whose_every_try_is_implausible_is_obscured_never_anonymized(pipe, example_paths):
    blank = AnonPipeline(preprocessor=pipe.preprocessor, bank=pipe.bank, synthesizer=Blank())
    out = blank(example_paths[0], seed=0, guard_attempts=2)
    (record,) = out.faces
    assert record.treatment == "obscured" and record.guard_passed is False and record.attempts == 2
    assert "step 2 could not make a natural-looking face (no face found in the result)" in record.treatment_reason
    assert out.counts()["anonymized"] == 0


def test_the_second_recognizer_also_frames_the_result_where_the_original_was(pipe, real):
    """An attacker who knows where the original face was crops the result there (S_x), not where step 2 was asked to
    put the new face: x itself, asked for a structure far off its own, is still x to FaceNet-CASIA."""
    crops, conds = real
    asked = [SimpleNamespace(x=c.x, landmarks=c.landmarks, landmarks_anon=c.landmarks + 60) for c in conds[:2]]
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    verdict = guard.verify(crops[:2], asked, guard.references(asked))
    assert float(verdict.second.max()) < 0.3, verdict.second


def test_guard_without_the_check_sees_identity_only(pipe, real):
    crops, conds = real
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False, second=False)
    verdict = guard.verify(crops, conds, guard.references(conds))
    assert verdict.plausibility is None and verdict.implausible(0) == ""


def test_triage_sends_a_face_whose_landmarks_do_not_fit_it_to_the_fallback(pipe, analyzer, example_paths):
    """x's own landmarks are checked once, before step 2: a face the landmarker missed gets no tries at all."""
    import dataclasses

    face = analyzer(example_paths[0])[0]
    assert pipe.triage(face) is None
    missed = face.crop_landmarks.copy()
    missed[36:48] += [0, 25]  # eyes where the nose is: landmarks that do not sit on this face
    reason = pipe.triage(dataclasses.replace(face, crop_landmarks=missed))
    assert reason and "landmarks do not fit it" in reason


def test_preview_asks_the_runs_own_triage(pipe, example_paths, monkeypatch):
    """--preview colours a face by the triage the run applies (landmark fit included), not a part of it."""
    from anon_model.batch.preview import preview

    monkeypatch.setattr(type(pipe), "triage", lambda self, face: "the face's landmarks do not fit it")
    from anon_model.imageio import load_image

    _, entries = preview(pipe, load_image(example_paths[0]), pipe.preprocessor.resolve())
    assert [(e["step2"], e["reason"]) for e in entries] == [(False, "the face's landmarks do not fit it")]


def test_a_greyscale_face_is_judged_at_the_recognizers_greyscale_thresholds(pipe, real, analyzer, example_paths):
    """Grey, both recognizers call different people the same far more often at their colour thresholds, so a
    greyscale face (found so in its photo) must be beyond their greyscale thresholds, a colour face beyond the colour
    ones, a washed-out colour face too; the face's outcome and its checks say which."""
    from PIL import Image, ImageEnhance

    from anon_model.output import guard_checks

    photo = Image.open(example_paths[0]).convert("RGB")
    views = (photo, photo.convert("L").convert("RGB"), ImageEnhance.Color(photo).enhance(0.08))  # skin chroma 1.5
    faces = [analyzer(np.asarray(im))[0] for im in views]
    assert InPhoto.of(faces).grey.tolist() == [False, True, False]
    where = InPhoto.of(faces[:2])
    guard = IdentityGuard(pipe.preprocessor.identity, plausibility=False)
    psi, second = guard.limits(where)
    margin = guard.original_margin
    assert psi.tolist() == pytest.approx([0.6 + margin, GREYSCALE_THRESHOLDS["dlib"] + margin])
    assert second.tolist() == pytest.approx([1.0 + margin, GREYSCALE_THRESHOLDS["facenet-casia"] + margin])
    assert GREYSCALE_THRESHOLDS["facenet-casia"] < 1.0 and GREYSCALE_THRESHOLDS["dlib"] < 0.6

    crops, conds = real
    verdict = guard.verify(crops[[1, 1]], [conds[0], conds[0]], guard.references([conds[0]] * 2, where))
    tries = BestTries(2)
    tries.add([0, 1], crops[[1, 1]], [None, None], verdict)
    colour, grey = tries.outcome(0, guard), tries.outcome(1, guard)
    assert not colour.greyscale and grey.greyscale
    assert colour.second_limit == pytest.approx(1.0 + margin) and grey.second_limit == pytest.approx(second[1])
    assert grey.threshold == pytest.approx(GREYSCALE_THRESHOLDS["dlib"])
    assert "for greyscale faces" in guard_checks(grey)[0].parts[0][0]
    assert "greyscale" not in guard_checks(colour)[0].parts[0][0]
