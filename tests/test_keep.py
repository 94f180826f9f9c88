"""Keep who you choose (issue 24): reference people left pixel for pixel, everyone else as without keep=."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from anon_model.cli import main
from anon_model.errors import AnonModelError
from anon_model.keep import KeepDecision, follow


@pytest.fixture(scope="module")
def pipe():
    from anon_model import AnonPipeline

    return AnonPipeline.from_pretrained(None, device="cpu")


@pytest.fixture(scope="module")
def pair(example_paths) -> np.ndarray:
    """Obama (obama.jpg) and Biden side by side, at half size: two people, one photo."""
    photos = {p.name: Image.open(p).convert("RGB") for p in example_paths}
    left, right = photos["obama.jpg"], photos["biden.jpg"]
    height = 320
    left, right = (im.resize((im.width * height // im.height, height)) for im in (left, right))
    canvas = Image.new("RGB", (left.width + right.width, height))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return np.asarray(canvas)


@pytest.fixture(scope="module")
def obama_ref(example_paths):
    """Another photo of Obama than the one in ``pair``, as the reference to keep."""
    return next(p for p in example_paths if p.name == "obama2.jpg")


def _inside(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return rgb[max(y0, 0):y1, max(x0, 0):x1]


def test_the_reference_person_is_kept_pixel_for_pixel_and_the_other_face_anonymized(pipe, pair, obama_ref):
    references = pipe.reference([obama_ref])  # embedded once, reused by every call
    out = pipe(pair, seed=0, keep=references)
    obama, biden = sorted(out.faces, key=lambda f: f.box[0])
    assert obama.treatment == "kept" and obama.keep.reference == str(obama_ref)
    assert obama.keep.dlib_distance < 0.5 and obama.keep.casia_distance < 0.85
    assert "kept" in obama.treatment_reason and str(obama_ref) in obama.treatment_reason
    result = np.asarray(out.image)
    assert np.array_equal(_inside(result, obama.box), _inside(pair, obama.box))
    assert biden.treatment in ("anonymized", "obscured") and not biden.keep.kept
    assert not np.array_equal(_inside(result, biden.box), _inside(pair, biden.box))
    assert out.counts()["kept"] == 1
    # photos and paths work as keep= too, and give the same decision
    again = pipe(pair, seed=0, keep=str(obama_ref), replace_with="mosaic")
    assert [f.treatment for f in sorted(again.faces, key=lambda f: f.box[0])] == ["kept", "obscured"]


def test_of_three_people_the_reference_person_is_kept_and_the_two_others_become_strangers(pipe, example_paths,
                                                                                        obama_ref):
    """Obama, Biden and the astronaut in one photo, Obama's reference taken elsewhere (obama2.jpg): Obama's face is
    left pixel for pixel, the two others are anonymized (replaced by strangers, not obscured)."""
    photos = {p.name: Image.open(p).convert("RGB") for p in example_paths}
    people = [photos[n] for n in ("obama.jpg", "biden.jpg", "astronaut.jpg")]
    people = [im.resize((im.width * 320 // im.height, 320)) for im in people]
    canvas = Image.new("RGB", (sum(im.width for im in people), 320))
    for k, im in enumerate(people):
        canvas.paste(im, (sum(p.width for p in people[:k]), 0))
    trio = np.asarray(canvas)
    out = pipe(trio, seed=0, keep=[obama_ref])
    obama, *others = sorted(out.faces, key=lambda f: f.box[0])
    assert obama.treatment == "kept" and np.array_equal(_inside(np.asarray(out.image), obama.box), _inside(trio, obama.box))
    assert [f.treatment for f in others] == ["anonymized", "anonymized"]


def test_faces_chosen_by_hand_are_kept_and_the_others_treated_as_usual(pipe, pair):
    """keep_faces (the app's per-face toggle): the chosen face is left as it was, the other gets what it gets without
    the choice; a face number the photo does not have, or a list of photos, is refused."""
    plain = pipe(pair, seed=0, replace_with="mosaic")
    left = min(range(len(plain.faces)), key=lambda i: plain.faces[i].box[0])
    out = pipe(pair, seed=0, replace_with="mosaic", keep_faces=[left])
    chosen, other = out.faces[left], out.faces[1 - left]
    assert chosen.treatment == "kept" and chosen.treatment_reason == "kept as you chose"
    assert np.array_equal(_inside(np.asarray(out.image), chosen.box), _inside(pair, chosen.box))
    assert other.treatment == "obscured" == plain.faces[1 - left].treatment
    with pytest.raises(ValueError, match="no face 5"):
        pipe(pair, seed=0, keep_faces=[5])
    with pytest.raises(ValueError, match="keep_faces= describe one photo"):
        pipe([pair, pair], seed=0, keep_faces=[0])


def test_a_reference_of_someone_absent_changes_nothing(pipe, example_paths, obama_ref):
    biden = next(p for p in example_paths if p.name == "biden.jpg")
    plain = pipe(biden, seed=0)
    with_keep = pipe(biden, seed=0, keep=[obama_ref])
    assert np.array_equal(np.asarray(plain.image), np.asarray(with_keep.image))
    assert [f.treatment for f in with_keep.faces] == [f.treatment for f in plain.faces]
    assert not with_keep.faces[0].keep.kept and with_keep.faces[0].keep.dlib_distance > 0.5


def test_bad_references_are_clear_errors_naming_the_file(pipe, pair, tmp_path):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (120, 130, 140)).save(blank)
    with pytest.raises(AnonModelError, match=r"wall\.png: no face"):
        pipe.reference([blank])
    group = tmp_path / "group.png"
    Image.fromarray(pair).save(group)
    with pytest.raises(AnonModelError, match=r"group\.png: 2 faces.*crop the photo"):
        pipe.reference(group)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    with pytest.raises(AnonModelError, match=r"broken\.jpg"):
        pipe(pair, keep=[broken])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnonModelError, match="no reference photos"):
        pipe.reference(tmp_path / "empty")


def test_a_video_track_matched_once_stays_kept_until_a_recognizer_disagrees():
    kept = KeepDecision(True, "me.jpg", 0.3, 0.6, "kept")
    unsure = KeepDecision(False, "me.jpg", 0.55, 0.9, "not a reference person with room to spare")
    unjudged = KeepDecision(False, reason="not judged, anonymized: too small for step 2")
    stranger = KeepDecision(False, "me.jpg", 0.7, 1.2, "not a reference person")
    assert follow(kept, unsure, 3).kept and "frame 3" in follow(kept, unsure, 3).reason
    assert follow(kept, unjudged, 3).kept
    assert not follow(kept, stranger, 3).kept
    assert not follow(None, unsure, 3).kept


def test_video_frames_keep_the_tracked_reference_person(pipe, pair, obama_ref):
    stream = pipe.video([pair, pair], seed=0, keep=[obama_ref], replace_with="mosaic")
    frames = list(stream)
    tracks = sorted(stream.tracks, key=lambda t: t.boxes[0][0])
    assert [t.treatments for t in tracks] == [["kept", "kept"], ["obscured", "obscured"]]
    obama_box = tracks[0].boxes[1]
    assert np.array_equal(_inside(frames[1], obama_box), _inside(pair, obama_box))


def test_cli_keep_flag_end_to_end(pair, obama_ref, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(pair).save(src / "pair.png")
    code = main(["anonymize", str(src), "-o", str(tmp_path / "out"), "--replace-with", "mosaic",
                 "--keep", str(obama_ref)])
    assert code == 0
    assert "1 kept" in capsys.readouterr().err
    lines = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    faces = sorted((line for line in lines if line["record"] == "face"), key=lambda f: f["box"][0])
    assert [f["treatment"] for f in faces] == ["kept", "obscured"]
    assert faces[0]["keep"]["reference"] == str(obama_ref) and faces[0]["keep"]["dlib"] < 0.5
    assert faces[0]["keep"]["facenet_casia"] < 0.85 and not faces[1]["keep"]["kept"]
    written = np.asarray(Image.open(tmp_path / "out" / "pair.png").convert("RGB"))
    box = faces[0]["box"]
    assert np.array_equal(_inside(written, np.array(box)), _inside(pair, np.array(box)))
    # a reference photo that cannot serve fails the run with its name
    assert main(["anonymize", str(src), "-o", str(tmp_path / "bad"), "--keep", str(src / "pair.png")]) == 1
    assert "pair.png: 2 faces" in capsys.readouterr().err
