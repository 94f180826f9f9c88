"""The anonymize command on a folder with good photos, a corrupt file and a non-image."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from anon_model.cli import collect_inputs, main


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
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "noface.png"]
    assert not list(out.glob(".*"))  # no temporary files left behind
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
