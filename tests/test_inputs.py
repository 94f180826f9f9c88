"""Inputs as users have them (16-bit and float pictures, HEIC/GIF/PPM files) and output folders that cannot be used."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from anon_model.cli import main
from anon_model.errors import ImageError
from anon_model.imageio import find_images, load_image


@pytest.fixture(scope="module")
def grey(example_paths) -> np.ndarray:
    """A face photo as 8-bit grey (H, W)."""
    return np.asarray(Image.open(example_paths[0]).convert("L"))


def _as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def test_16bit_grey_png_keeps_its_contrast_and_its_face(grey, analyzer, tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")  # really stored with 16 bits
    rgb = load_image(path)
    assert np.array_equal(rgb, _as_rgb(grey))  # value / 257, not clipped white
    assert analyzer(rgb), "the face of the 16-bit photo was not found"


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16B", ">u2"), ("I", "<i4")])
def test_16bit_pil_modes_scale_to_8bit(grey, mode, dtype):
    image = Image.fromarray((grey.astype(np.uint16) * 257).astype(dtype))
    assert image.mode == mode
    assert np.array_equal(load_image(image), _as_rgb(grey))


def test_uint16_array_scales_by_its_range(grey):
    assert np.array_equal(load_image(grey.astype(np.uint16) * 257), _as_rgb(grey))
    assert np.array_equal(load_image(grey / 255.0), _as_rgb(grey))  # floats in [0, 1] as before


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_array_with_nan_or_inf_is_a_clear_error(grey, bad):
    arr = grey / 255.0
    arr[3, 4] = bad
    with pytest.raises(ImageError, match="NaN or infinite") as err:
        load_image(arr)
    assert "\n" not in str(err.value)


def _save_heic(image: Image.Image, path) -> None:
    """Write a HEIC file with pillow-heif's own API (no opener registered by the test), or skip the test when this
    machine's pillow-heif cannot encode."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif (a dependency) is not installed")
    try:
        pillow_heif.from_pillow(image).save(path)
    except (OSError, RuntimeError, ValueError) as exc:
        pytest.skip(f"pillow-heif cannot write HEIC here ({exc}); runs wherever its wheel has an encoder")


def test_heic_by_name_is_read(example_paths, analyzer, tmp_path):
    photo = Image.open(example_paths[0]).convert("RGB")
    path = tmp_path / "phone.heic"
    _save_heic(photo, path)
    rgb = load_image(path)
    assert rgb.shape == (photo.height, photo.width, 3)
    assert analyzer(rgb)


def test_folder_of_ppm_gif_heic_is_processed_and_other_files_are_listed(example_paths, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    photo = Image.open(example_paths[0]).convert("RGB")
    photo.save(src / "a.ppm")
    photo.save(src / "b.gif")
    _save_heic(photo, src / "c.heic")
    shutil.copy(example_paths[0], src / "d_no_suffix")  # a JPEG without a suffix: found by content
    (src / "notes.txt").write_text("not a photo")
    (src / ".hidden.jpg").write_bytes(b"")  # hidden files are ignored

    images, others = find_images(src)
    assert [p.name for p in images] == ["a.ppm", "b.gif", "c.heic", "d_no_suffix"]
    assert [p.name for p in others] == ["notes.txt"]

    code = main(["anonymize", str(src), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d_no_suffix.png", "manifest.jsonl"]
    assert [line for line in err.splitlines() if line.startswith("skip:")] == \
        [f"skip: {src / 'notes.txt'}: not an image or video (format unrecognised)"]
    assert "1 other file(s) skipped" in err and ".hidden" not in err


def _output_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("")
    return tmp_path / "taken"


def _output_under_a_file(tmp_path):
    return _output_is_a_file(tmp_path) / "sub"


def _output_read_only(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("this user (root) can write to a read-only folder; the case runs as a normal user")
    return folder / "sub"


@pytest.mark.parametrize("make_output", [_output_is_a_file, _output_under_a_file, _output_read_only])
def test_unusable_output_folder_is_one_error_before_models_load(example_paths, tmp_path, capsys, monkeypatch,
                                                                  make_output):
    from anon_model.pipeline import AnonPipeline

    def no_loading(*args, **kwargs):
        raise AssertionError("models were loaded although the output folder is unusable")

    monkeypatch.setattr(AnonPipeline, "from_pretrained", no_loading)
    outdir = make_output(tmp_path)
    code = main(["anonymize", *map(str, example_paths[:3]), "-o", str(outdir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error:") and str(outdir) in err[0]
