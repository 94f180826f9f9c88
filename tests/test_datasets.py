"""A small local `datasets` dataset round-trips through anonymize_dataset and `anon-model anonymize-dataset`.

The pipeline is a stand-in (inverts the picture, reports one face per image whose first pixel is dark), so these tests
check the plumbing: rows, order, other columns, batching into list calls, the faces column, errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets", reason="the datasets extra is not installed (pip install datasets)")

from anon_model.cli import main  # noqa: E402
from anon_model.datasets import anonymize_dataset, load_any  # noqa: E402
from anon_model.output import AnonOutput, FaceRecord  # noqa: E402


class Inverting:
    """Stands in for AnonPipeline: every photo of a list call inverted; a dark first pixel counts as one face."""

    def __init__(self, treatment: str = "obscured") -> None:
        self.treatment, self.calls = treatment, []

    def __call__(self, images, *, seed=0, **options):
        assert isinstance(images, list)
        self.calls.append((len(images), options))
        rgbs = [np.asarray(im) for im in images]
        crop = np.zeros((256, 256, 3), np.uint8)
        faces = [FaceRecord(box=np.array([1.0, 2.0, 3.0, 4.0]), score=1.0, landmarks=np.zeros((68, 2)),
                            pose=np.zeros(3), crop=crop, anonymized=crop, landmarks_crop=np.zeros((68, 2)),
                            treatment=self.treatment, treatment_reason="test", image_index=j)
                 for j, rgb in enumerate(rgbs) if rgb[0, 0, 0] < 128]
        return AnonOutput(images=[Image.fromarray(255 - rgb) for rgb in rgbs], faces=faces)

    def set_progress_bar_config(self, **kwargs) -> None:
        pass


@pytest.fixture()
def small(tmp_path):
    """Five 16x12 pictures (dark ones 'have a face') with a label column, saved to disk."""
    pictures = [Image.new("RGB", (16, 12), (v, 100, 50)) for v in (10, 200, 30, 250, 60)]
    ds = datasets.Dataset.from_dict({"image": pictures, "label": [0, 1, 2, 3, 4]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.Value("int64")}))
    ds.save_to_disk(str(tmp_path / "small"))
    return tmp_path / "small"


def test_anonymize_dataset_replaces_the_column_in_batches(small):
    ds = load_any(str(small), "train")
    pipe = Inverting()
    out = anonymize_dataset(ds, pipe, batch_size=2, faces_column="faces", replace_with="blur")
    assert [n for n, _ in pipe.calls] == [2, 2, 1] and pipe.calls[0][1] == {"replace_with": "blur"}
    assert out["label"] == [0, 1, 2, 3, 4] and len(out) == 5
    for before, after in zip(ds["image"], out["image"]):
        assert np.array_equal(np.asarray(after), 255 - np.asarray(before))
    assert [len(faces) for faces in out["faces"]] == [1, 0, 1, 0, 1]
    assert out["faces"][0][0]["treatment"] == "obscured"
    assert np.array_equal(np.asarray(ds["image"][0]), np.asarray(load_any(str(small), "train")["image"][0]))

    with pytest.raises(ValueError, match="no column 'photo'"):
        anonymize_dataset(ds, pipe, image_column="photo")
    with pytest.raises(Exception, match="could not be anonymized"):
        anonymize_dataset(ds, Inverting(treatment="failed"))


def test_cli_anonymizes_a_dataset_on_disk(small, tmp_path, monkeypatch, capsys):
    from anon_model.pipeline import AnonPipeline

    pipe = Inverting()
    monkeypatch.setattr(AnonPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: pipe))
    code = main(["anonymize-dataset", str(small), "-o", str(tmp_path / "anon"), "--batch-size", "4",
                 "--faces-column", "anon_faces"])
    assert code == 0, capsys.readouterr().err
    saved = datasets.load_from_disk(str(tmp_path / "anon"))
    assert saved.column_names == ["image", "label", "anon_faces"] and [n for n, _ in pipe.calls] == [4, 1]
    assert np.asarray(saved["image"][1])[0, 0, 0] == 255 - 200
    assert main(["anonymize-dataset", str(small), "-o", str(tmp_path / "y"), "--image-column", "img"]) == 1
    assert "no column 'img'" in capsys.readouterr().err
