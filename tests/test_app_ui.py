"""Unit tests of anon_model.ui (what the app draws and records), on hand-built face records: no gradio, no server."""

from __future__ import annotations

import csv
import re
from pathlib import Path
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from anon_model.bank import DelegateBank
from anon_model.output import AnonOutput, FaceRecord, GuardCheck
from anon_model.perception.align import alignment_matrix, transform_points, warp_to_crop
from anon_model.ui import compare, render, study, views, wording
from anon_model.ui.options import RunOptions, run_pipeline


@pytest.fixture(scope="module")
def bank() -> DelegateBank:
    """The bundled delegate bank (crops and landmarks only; no embedder is loaded)."""
    return DelegateBank.from_pretrained(None)


#: How the guard's limits add up in these records: the recognizer's threshold plus each check's margin.
PARTS_ORIGINAL = (("the recognizer's same-person threshold", 0.6), ("a safety margin", 0.1))
PARTS_BANK = (("how near unrelated people come to the bank (1st percentile)", 0.44),)


def _checks(original: float = 0.82, bank: float = 0.9) -> list[GuardCheck]:
    """The guard's two checks of a face's kept try: its distances to the original and to bank face 4."""
    return [GuardCheck("original", original, 0.7, PARTS_ORIGINAL),
            GuardCheck("original", 1.3, 1.1, (("the recognizer's same-person threshold", 1.0), ("a safety margin", 0.1)),
                       by="facenet-casia"),
            GuardCheck("bank", bank, 0.44, PARTS_BANK, 4)]


def _record(bank: DelegateBank, *, k: int = 2, with_cam: bool = True) -> FaceRecord:
    """A face record built from bank face 2 as if the pipeline had processed it."""
    crop = bank.crop(2)
    s_x = bank.crop_landmarks(2).numpy()
    s_bar = bank.crop_landmarks(1).numpy()
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    cam = np.stack([np.exp(-((xx - 0.4) ** 2 + (yy - 0.45) ** 2) / 0.02), np.exp(-((xx - 0.6) ** 2 + (yy - 0.5) ** 2) / 0.03)])[:k]
    return FaceRecord(
        box=np.array([10.0, 20.0, 110.0, 140.0]), score=0.99, landmarks=s_x + 5, pose=np.zeros(3), crop=crop,
        anonymized=bank.crop(1), landmarks_crop=s_x, landmarks_anon_crop=(s_x + s_bar) / 2,
        classes=["proto 17", "proto 4"][:k] if with_cam else [],
        scores_before=np.array([0.6, 0.3])[:k] if with_cam else None,
        scores_after=np.array([0.1, 0.05])[:k] if with_cam else None,
        cam=cam.astype(np.float32) if with_cam else None, cam_distracted=(cam * 0.1).astype(np.float32) if with_cam else None,
        delegates=[0, 1, 3], delegate_probs=np.array([0.2, 0.5, 0.3]), delegate=1, delegate_mixture=[1, 0],
        delegate_weights=[0.5, 0.5],
        geometry_candidates=[1, 4], geometry_probs=np.array([0.7, 0.3]), geometry_delegate=4,
        landmarks_delegate_crop=s_bar, identity_distance=0.82, identity_threshold=0.6, guard_checks=_checks(),
    )


# ------------------------------------------------------------------------------------------------ render
def test_heatmap_overlay_follows_the_heat():
    crop = np.full((64, 64, 3), 128, np.uint8)
    heat = np.zeros((16, 16), np.float32)
    heat[:8] = 1.0  # top half hot: JET red, bottom cold: JET blue
    out = render.heatmap_overlay(crop, heat)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert out[5, 32, 0] > out[5, 32, 2] and out[60, 32, 2] > out[60, 32, 0]
    assert (crop == 128).all()  # input untouched


def test_draw_landmarks_marks_near_the_points_only(bank):
    crop = np.zeros((256, 256, 3), np.uint8)
    pts = bank.crop_landmarks(0).numpy()
    out = render.draw_landmarks(crop, pts, color=(0, 255, 0))
    x, y = np.round(pts[30]).astype(int)
    assert out[y, x, 1] > 100 and out[..., 0].max() == 0
    assert out[:5, :5].sum() == 0  # the corner is far from any landmark
    with pytest.raises(ValueError):
        render.draw_landmarks(crop, pts[:10])


def test_geometry_map_image_both_shapes():
    lines = np.zeros((32, 32), np.float32)
    lines[10, 5:20] = 1.0
    grey = render.geometry_map_image(lines)
    assert grey.shape == (32, 32, 3) and grey[10, 10].tolist() == [255, 255, 255] and grey[0, 0].tolist() == [0, 0, 0]
    z = np.concatenate([np.full((3, 32, 32), 0.5, np.float32), lines[None]])
    fused = render.geometry_map_image(z)
    assert fused[0, 0].tolist() == [128, 128, 128] and fused[10, 10].tolist() == [255, 255, 255]


def test_draw_boxes_and_framed_keep_size():
    image = np.zeros((120, 200, 3), np.uint8)
    boxed = render.draw_boxes(image, [np.array([20, 30, 80, 100]), np.array([120, 30, 180, 100])])
    assert boxed.shape == image.shape and boxed[60, 20].any() and boxed[60, 180].any() and not boxed[60, 100].any()
    framed = render.framed(np.zeros((40, 40, 3), np.uint8), width=3)
    assert framed[0, 20].tolist() == list(render.COLOR_CHOSEN) and not framed[20, 20].any()


# ------------------------------------------------------------------------------------------------ views
def test_cam_gallery_pairs_h_and_h_hat(bank):
    record = _record(bank)
    items = views.cam_gallery(record)
    assert [c.split(" · ")[0] for _, c in items] == ["where the recognizer looked (H)", "after the distraction (Ĥ)"] * 2
    assert "look-alike 1: proto 17" in items[0][1] and "score 0.60" in items[0][1] and "score 0.10" in items[1][1]
    assert all(img.shape == (256, 256, 3) for img, _ in items)
    assert not np.array_equal(items[0][0], items[1][0])  # H-hat is weaker than H: a different overlay
    assert views.cam_gallery(_record(bank, with_cam=False)) == []


def test_structure_gallery_shows_three_sets_and_z_g(bank):
    items = views.structure_gallery(_record(bank))
    captions = [c for _, c in items]
    assert [c.split(" (")[0] for c in captions[:2]] == ["this face's landmarks", "the borrowed face shape"]
    assert [c[c.rindex("(") + 1:-1] for c in captions] == ["S_x", "S̄", "Ŝ_x", "S_x, S̄, Ŝ_x", "Z_g"]  # symbols second
    z_g = items[4][0]
    assert z_g.shape == (256, 256, 3) and 0 < (z_g > 0).mean() < 0.2  # thin contour lines on black


def test_candidate_galleries_mark_the_drawn(bank):
    record = _record(bank)
    app_items = views.appearance_gallery(record, bank)  # bank 0 and 1 are mixed into Z_a, bank 3 is not
    assert len(app_items) == 3 and "P = 0.500" in app_items[1][1] and bank.sources[1] in app_items[1][1]
    assert [("mixed in, weight 0.50" in c) for _, c in app_items] == [True, True, False]
    assert app_items[1][0][0, 128].tolist() == list(render.COLOR_CHOSEN)
    assert app_items[2][0][0, 128].tolist() != list(render.COLOR_CHOSEN)
    geo = views.geometry_gallery(record, bank)
    assert "chosen" in geo[1][1] and "P = 0.300" in geo[1][1] and "chosen" not in geo[0][1]


def test_mixture_gallery_shows_the_mix_and_its_weighted_sources(bank):
    from anon_model.vca import mix_faces

    record = dataclasses.replace(_record(bank), delegate_mixture=[1, 0, 3], delegate_weights=[0.5, 0.3, 0.2])
    items = views.mixture_gallery(record, bank)
    assert [c for _, c in items] == ["the blend the new face takes its look from: 3 bank faces (Z_a)",
                                     f"source: bank #1 ({bank.sources[1]}) · weight 0.50",
                                     f"source: bank #0 ({bank.sources[0]}) · weight 0.30",
                                     f"source: bank #3 ({bank.sources[3]}) · weight 0.20"]
    assert np.array_equal(items[0][0], mix_faces(bank, [1, 0, 3], [0.5, 0.3, 0.2])[0])
    assert all(not np.array_equal(items[0][0], source) for source, _ in items[1:])  # no one's face as such
    assert np.array_equal(items[1][0], bank.crop(1))
    note = views.delegate_note(record)
    assert "a blend of 3 bank faces (weights 0.50, 0.30, 0.20), so no single real person is pasted in" in note
    assert "single bank face" in views.delegate_note(dataclasses.replace(record, delegate_mixture=[1],
                                                                          delegate_weights=[1.0]))
    assert "gender" not in note  # no attribute filter recorded: nothing said about it
    record.attribute_filter = "gender (male) and age 50-64"  # what VAA's draw reports (DelegateDraw.attribute_filter)
    assert "Candidates were narrowed to this face's estimated gender (male) and age 50-64." in views.delegate_note(record)
    record.attribute_filter = "none: no female face among the bank's candidates"
    assert "could not be matched to this face's gender and age (no female face" in views.delegate_note(record)
    off = dataclasses.replace(record, delegate_mixture=[], delegate_weights=[], geometry_delegate=None)
    assert views.mixture_gallery(off, bank) == [] and "own look (borrowing a look, VAA, is off)" in views.delegate_note(off)
    assert "own shape (borrowing a shape, GSA, is off)" in views.delegate_note(off)


def _obscured(bank: DelegateBank, reason: str, *, step2: bool, checks: list[GuardCheck] | None = None) -> FaceRecord:
    """A face the pipeline obscured: after step 2 failed the guard (``step2``, with its ``checks``), or without step 2."""
    if step2:
        return dataclasses.replace(_record(bank), treatment="obscured", treatment_reason=reason,
                                   guard_checks=_checks() if checks is None else checks)
    record = _record(bank, with_cam=False)
    return dataclasses.replace(record, treatment="obscured", treatment_reason=reason, delegates=[],
                               delegate_probs=None, delegate=None, delegate_mixture=[], delegate_weights=[],
                               geometry_candidates=[], geometry_probs=None, geometry_delegate=None,
                               identity_distance=None, identity_threshold=None, guard_checks=[])


def test_summary_says_in_plain_words_which_faces_were_obscured_and_why(bank):
    tiny = _obscured(bank, "too small for step 2 (31 px < 40 px)", step2=False)
    out = AnonOutput(image=Image.new("RGB", (200, 160)), faces=[_record(bank), _record(bank), tiny],
                     notes=["step 2: test", "face 3: obscured, too small for step 2 (31 px < 40 px)"])
    assert views.summary(out) == ("**3 faces: 2 anonymized, 1 obscured**\n- 2 faces were replaced by strangers: the "
                                  "identity check finds each to be neither the person nor anyone in the face bank.\n"
                                  "- Face 3 was obscured: it is too small to be replaced by a new face.")
    kept = _obscured(bank, "still recognized as the original (distance 0.69 < 0.70) after 4 tries", step2=True,
                     checks=_checks(original=0.698))
    text = views.summary(AnonOutput(image=Image.new("RGB", (8, 8)), faces=[kept]))
    assert text == ("**1 face obscured**\n- Face 1 was obscured: every new face made for it still looked too much "
                    "like the original person.")
    assert views.summary(AnonOutput(image=Image.new("RGB", (8, 8)), faces=[tiny, _record(bank)])).splitlines()[1] == (
        "- Face 2 was replaced by a stranger: the identity check finds it to be neither the person nor anyone in the "
        "face bank.")
    assert "No face found" in views.summary(AnonOutput(image=Image.new("RGB", (8, 8)), faces=[]))
    assert views.boxed_result(out).shape == (160, 200, 3)


def test_the_figures_name_each_limit_and_its_parts_in_one_precision(bank):
    tiny = _obscured(bank, "too small for step 2 (31 px < 40 px)", step2=False)
    close = _obscured(bank, "still recognized as the original", step2=True, checks=_checks(original=0.698))
    out = AnonOutput(image=Image.new("RGB", (8, 8)), faces=[_record(bank), close, tiny], notes=["step 2: test"])
    text = views.figures(out, [f"person{i}.jpg#0" for i in range(5)])
    assert "**Face 1** (anonymized). Identity distances of the new face in the photo, after 1 try:" in text
    assert ("- dlib: 0.82 from the original person; needs at least 0.70 = the recognizer's same-person threshold 0.60 + "
            "a safety margin 0.10: ✔ far enough") in text
    assert ("- facenet-casia: 1.30 from the original person; needs at least 1.10 = the recognizer's same-person "
            "threshold 1.00 + a safety margin 0.10: ✔ far enough") in text
    assert ("- dlib: 0.90 from the nearest person of the face bank (bank face 4, person4.jpg#0); needs at least 0.44 = "
            "how near unrelated people come to the bank (1st percentile) 0.44: ✔ far enough") in text
    assert "**Face 2** (obscured). Identity distances of the best new face tried (discarded)" in text
    assert "- dlib: 0.69 from the original person; needs at least 0.70" in text and "✘ too close" in text  # not "0.70 < 0.70"
    assert "**Face 3** (obscured): no new face was tried, so no distances (too small for step 2 (31 px < 40 px))." in text
    assert text.endswith("**What ran:** step 2: test.")
    assert all(len(n.split(".")[1]) == 2 for n in re.findall(r"\b\d\.\d+\b", text))  # two decimals throughout


def test_face_status_says_what_the_face_got_in_one_plain_sentence(bank):
    assert views.face_status(_record(bank), 1) == "**Face 1 was replaced by a stranger.**"
    tiny = views.face_status(_obscured(bank, "too small for step 2 (31 px < 40 px)", step2=False), 3)
    assert tiny.startswith("**Face 3 was obscured: it is too small to be replaced by a new face.**")
    assert "did not run" in tiny and "px" not in tiny
    tried = views.face_status(_obscured(bank, "still recognized as bank face 4", step2=True, checks=_checks(bank=0.4)), 1)
    assert "looked too much like one of the real people" in tried and "discarded" in tried and "bank face 4" not in tried
    failed = dataclasses.replace(_record(bank), treatment="failed", treatment_reason="still recognized")
    assert "NOT anonymized" in views.face_status(failed, 2)


@pytest.mark.parametrize("reason, expected", [
    ("still recognized as the original (distance 0.69 < 0.70) after 4 tries", "still looked too much like the original"),
    ("still recognized as bank face 2 (distance 0.61 < 0.65) after 4 tries", "one of the real people"),
    ("step 2 could not make a natural-looking face (no face found in the result) after 4 tries", "natural-looking"),
    ("head turned too far for step 2 (yaw 75 degrees)", "turned too far"),
    ("landmarks unreliable (they cover 12% of the face box)", "could not be located"),
    ("replace_with='blur'", "the settings asked"),
    ("a reason added later: zeta-check 0.3 > 0.2", wording.GENERIC),  # unknown: a plain generic clause, never raw
])
def test_every_reason_reads_as_one_plain_sentence(bank, reason, expected):
    record = _obscured(bank, reason, step2=False)
    sentence = wording.outcome(record, 1)
    assert expected in sentence and sentence.startswith("Face 1 was obscured: ") and sentence.endswith(".")
    assert not re.search(r"\d\.\d|step 2|bank face|zeta", sentence)  # no figures, no jargon, no raw note


def test_the_guard_checks_speak_before_the_reason_note(bank):
    """Whatever the note says, a face whose record shows it too close to the original is said to be so."""
    record = _obscured(bank, "a reworded note", step2=True, checks=_checks(original=0.5))
    assert "like the original person" in wording.why_not_replaced(record)
    record = _obscured(bank, "a reworded note", step2=True, checks=_checks(bank=0.4))
    assert "one of the real people" in wording.why_not_replaced(record)
    assert wording.why_not_replaced(_record(bank)) == ""


@pytest.mark.parametrize("value, limit, shown", [
    (0.698, 0.7, "0.69"), (0.6949, 0.7, "0.69"), (0.7, 0.7, "0.70"), (0.7049, 0.7, "0.70"), (0.823, 0.7, "0.82"),
    (0.6833, 0.6837, "just under 0.68"), (0.5, None, "0.50"), (0.29, 0.2901, "just under 0.29"),
])
def test_a_distance_never_reads_as_on_the_wrong_side_of_its_limit(value, limit, shown):
    assert wording.distance(value, limit) == shown


def test_the_record_carries_the_guards_limits_with_their_parts():
    from anon_model.guard import GuardOutcome
    from anon_model.output import guard_checks

    outcome = GuardOutcome(distance=0.72, bank_distance=0.61, nearest=3, threshold=0.6, limit=0.65, original_limit=0.7,
                           attempts=4, kept=2, passed=False)
    original, nearest = guard_checks(outcome)
    assert (original.against, original.distance, original.limit, original.passed) == ("original", 0.72, 0.7, True)
    assert (nearest.against, nearest.bank_index, nearest.limit, nearest.passed) == ("bank", 3, 0.65, False)
    assert wording.limit_parts(original) == "0.70 = the recognizer's same-person threshold 0.60 + a safety margin 0.10"
    assert sum(v for _, v in nearest.parts) == pytest.approx(nearest.limit)
    no_bank = dataclasses.replace(outcome, bank_distance=float("inf"), nearest=-1)
    assert [c.against for c in guard_checks(no_bank)] == ["original"]


def test_tables(bank):
    record = _record(bank)
    table = views.explain_table(record)
    assert "| # | look-alike identity (c_i) | score before (A) | score after (Â) |" in table
    assert "| 1 | proto 17 | 0.60 | 0.10 |" in table and "0.82 from the original person; needs at least 0.70" in table
    assert "did not run" in views.explain_table(_record(bank, with_cam=False))
    rejected = views.explain_table(_obscured(bank, "still recognized", step2=True, checks=_checks(original=0.65)))
    assert "best new face tried (discarded)" in rejected and "0.65 from the original person" in rejected
    assert "✘ too close" in rejected


# ------------------------------------------------------------------------------------------------ options
def test_run_pipeline_passes_every_setting_per_call():
    seen = {}

    def pipe(image, **kwargs):
        seen.update(kwargs)
        return "out"

    assert run_pipeline(pipe, np.zeros((8, 8, 3), np.uint8), RunOptions(seed=4, k_top=2, epsilon=0.5, use_vaa=False)) == "out"
    assert seen == dict(seed=4, k_top=2, epsilon=0.5, k_neighbors=10, use_ifa=True, use_vaa=False, use_gsa=True)


def test_options_key_depends_on_photo_and_settings():
    a, b = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    b[0, 0, 0] = 1
    assert RunOptions().key(a) == RunOptions().key(a.copy())
    assert len({RunOptions().key(a), RunOptions().key(b), RunOptions(seed=1).key(a), RunOptions(use_gsa=False).key(a)}) == 4


# ------------------------------------------------------------------------------------------------ compare
class _FakeBank:
    """Identity space = mean colour of the crop's centre (enough to tell a changed face from an unchanged one)."""

    threshold = 20.0
    embedder_name = "fake"

    def embed(self, crops, landmarks):
        return torch.from_numpy(np.asarray(crops, np.float32)[:, 96:160, 96:160].mean(axis=(1, 2)))


def _photo_and_output(bank) -> tuple[np.ndarray, AnonOutput]:
    """A photo holding bank face 2 (aligned so its crop is known) and an 'anonymized' copy with the face darkened."""
    s_x = bank.crop_landmarks(2).numpy()
    matrix = alignment_matrix(s_x, 256)
    photo = warp_to_crop(bank.crop(2), matrix, 256)  # a photo in which the face sits where S_x says
    landmarks = transform_points(s_x, matrix)
    crop = warp_to_crop(photo, alignment_matrix(landmarks, 256), 256)
    record = dataclasses.replace(_record(bank), landmarks=landmarks, crop=crop, landmarks_crop=s_x)
    anon = photo.copy()
    anon[60:200, 60:200] //= 3
    return photo, AnonOutput(image=Image.fromarray(anon), faces=[record])


def test_compare_measures_every_method_alike(bank):
    photo, out = _photo_and_output(bank)
    methods = {"identity": lambda rgb, o: rgb, "grey": lambda rgb, o: np.full_like(rgb, 200)}
    results = compare.compare(_FakeBank(), photo, out, methods)
    assert [r.name for r in results] == ["original", "ours", "identity", "grey"]
    d = {r.name: r.distances[0] for r in results}
    assert d["identity"] < 1.0 < d["ours"] and d["grey"] > 20.0  # an untouched face stays at ~0
    tiles = compare.compare_gallery(results, limits=[20.0], face=0)
    assert tiles[0][1] == "original" and "⚠ recognized" in tiles[2][1] and "⚠" not in tiles[3][1]
    assert all(t[0].shape == (256, 256, 3) for t in tiles)
    assert compare.compare_gallery(results, limits=[20.0])[1][0].shape == photo.shape
    assert "⚠" not in "".join(c for _, c in compare.compare_gallery(results, limits=[None]))  # no guard, no verdict
    note = views.compare_note(out, "fake")
    assert "the limit the identity check applied to the face, 0.70 = the recognizer's same-person threshold 0.60" in note


# ------------------------------------------------------------------------------------------------ study
def test_study_outcomes_and_rates(tmp_path):
    q1 = study.make_q1("Q1/ours/0/1", "ours", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))
    gallery = [np.full((4, 4, 3), i, np.uint8) for i in range(7)]
    emb = np.arange(7, dtype=np.float32)[:, None]
    q2 = study.make_q2("Q2/blur/3", "blur", np.zeros((4, 4, 3), np.uint8), np.array([2.2], np.float32), gallery, emb,
                       [i == 3 for i in range(7)])
    assert [int(r[0, 0, 0]) for r in q2.references] == [2, 3, 1, 4, 0]  # nearest first, top 5
    assert q2.same == [False, True, False, False, False] and q2.choices[-1] == study.NOT_APPEAR
    assert q1.outcome("Yes") == "reid" and q1.outcome("Not sure") == "none"
    assert q2.outcome("2") == "reid" and q2.outcome("1") == "ids" and q2.outcome(study.NOT_APPEAR) == "none"
    with pytest.raises(ValueError):
        q2.outcome("6")
    log = study.StudyLog(tmp_path / "answers.csv")
    for item, answer in [(q1, "Yes"), (q1, "No"), (q1, "No"), (q1, "Not sure"), (q2, "1"), (q2, "2"), (q2, "Not appear")]:
        log.record(item, answer, participant="p1")
    rates = log.rates()
    assert rates["ours"]["Q1 ReID %"] == pytest.approx(25.0)
    assert rates["blur"]["Q2 ReID %"] == pytest.approx(100 / 3) and rates["blur"]["Q2 IDS %"] == pytest.approx(100 / 3)
    with open(tmp_path / "answers.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == study.FIELDS and len(rows) == 8
    assert all(len(cell) < 40 for row in rows for cell in row)  # ids and answers only: no image data
    table = study.rates_markdown(rates)
    assert "| blur |" in table and "33.3" in table and "25.0" in table


def test_study_pool_draws_valid_items(bank):
    crops = {n: bank.crop(i) for i, n in enumerate(["astronaut", "biden", "obama", "obama2", "obama3"])}

    def anonymize(rgb):
        s_x = bank.crop_landmarks(0).numpy()
        record = dataclasses.replace(_record(bank), crop=rgb, landmarks=s_x, landmarks_crop=s_x)
        return AnonOutput(image=Image.fromarray(rgb // 2), faces=[record])

    photos = {n: (n.rstrip("0123456789"), c) for n, c in crops.items()}
    pool = study.StudyPool(photos, anonymize=anonymize, methods={"blur": lambda rgb, o: rgb // 3}, bank=_FakeBank())
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        item = pool.item(rng)
        seen.add((item.question, item.method))
        assert item.query.shape == (256, 256, 3)
        if item.question == "Q1":
            assert item.item_id.startswith("Q1/") and item.same == [True]
            a, b = (int(v) for v in item.item_id.split("/")[2:])
            assert pool.photos()[a].identity == pool.photos()[b].identity == "obama" and a != b
        else:
            assert len(item.references) == 4 and len(item.choices) == 5  # the other four photos
    assert seen == {(q, m) for q in ("Q1", "Q2") for m in ("ours", "blur")}


def test_available_methods_are_the_evaluation_baselines(bank):
    photo, out = _photo_and_output(bank)
    methods = compare.available_methods()
    assert {"blur", "pixelate"} <= set(methods) and "copy" not in methods
    for name, fn in methods.items():
        result = fn(photo, out)
        assert result.shape == photo.shape and not np.array_equal(result, photo), name


def test_the_examples_are_listed_in_one_place_with_their_sources():
    from anon_model.ui import examples

    readme = (examples.FOLDER / "README.md").read_text(encoding="utf-8")
    listed = examples.paths(examples.PHOTOS + examples.CLIPS)
    assert listed and all(path.is_file() and path.name in readme for path in listed)


def test_space_front_matter_matches_the_app():
    import gradio
    import yaml

    root = Path(__file__).resolve().parents[1]
    text = (root / "space" / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert (root / meta["app_file"]).is_file() and str(meta["python_version"]).startswith("3.")
    assert meta["models"] and all("/" in m for m in meta["models"])
    requirements = (root / "space" / "requirements.txt").read_text().lower()
    assert "dlib" in requirements and "facenet-pytorch" in requirements and "\ngradio" not in requirements


# ------------------------------------------------------------------------------------------------ inline, private
def test_inline_views_carry_the_images_and_escape_captions():
    import base64
    import io
    import re

    from anon_model.ui import inline

    before, after = np.zeros((3000, 1000, 3), np.uint8), np.full((3000, 1000, 3), 255, np.uint8)
    slider = inline.slider_html(before, after)
    shown = [Image.open(io.BytesIO(base64.b64decode(d))) for d in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', slider)]
    assert [im.size for im in shown] == [(inline.PREVIEW_SIDE // 3, inline.PREVIEW_SIDE)] * 2  # downscaled alike
    assert np.asarray(shown[0]).min() > 250 and np.asarray(shown[1]).max() < 5  # "after" below, "before" on top
    assert 'style="aspect-ratio: 1000 / 3000"' in slider  # the slider keeps the photo's shape, not its pixel size
    grid = inline.gallery_html([(before[:8, :8], "<b>H</b> · p=0.6")], columns=6)
    assert "&lt;b&gt;H&lt;/b&gt;" in grid and "<b>" not in grid and "--columns: 6" in grid and "--tile" not in grid
    assert "--columns: 2; --tile: 320px" in inline.gallery_html([], columns=2, tile=320)
    legend = inline.legend_html(render.colorbar(), "0: ignored", "1: <most>")
    assert legend.count("data:image/jpeg;base64,") == 1 and "1: &lt;most&gt;" in legend


def test_colorbar_is_the_heatmaps_scale():
    bar = render.colorbar(width=64, height=4)
    assert bar.shape == (4, 64, 3) and (bar[0] == bar[3]).all()
    assert bar[0, 0, 2] > 100 > bar[0, 0, 0] and bar[0, -1, 0] > 100 > bar[0, -1, 2]  # blue (0) to red (1)
    grey = np.full((1, 64, 3), 128, np.uint8)
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)[None]
    assert np.abs(render.heatmap_overlay(grey, ramp, alpha=1.0).astype(int) - bar[:1]).max() <= 1


def test_read_photo_refuses_in_one_sentence(tmp_path):
    from anon_model.ui.private import PhotoRefused, read_photo

    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 5000)).save(huge)
    with pytest.raises(PhotoRefused, match=r"^This upload cannot be used: image too large \(5000x5000 = 25 MP; limit 2 MP\);"):
        read_photo(huge, max_pixels=2_000_000)
    text = tmp_path / "text.png"
    text.write_text("no photo")
    with pytest.raises(PhotoRefused, match="not an image") as caught:
        read_photo(text, max_pixels=2_000_000)
    assert str(tmp_path) not in str(caught.value) and str(caught.value).count(".") == 1  # no server path; one sentence
    small = tmp_path / "small.png"
    Image.new("RGB", (20, 10)).save(small)
    assert read_photo(small, max_pixels=2_000_000).shape == (10, 20, 3)
