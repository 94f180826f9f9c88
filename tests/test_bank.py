"""Delegate bank: the shipped default, build from a folder, save/load, the feature space, synthetic faces."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from anon_model.bank import DEFAULT_BANK_DIR, DelegateBank, load_embedder
from anon_model.errors import AnonModelError
from _timing import one_thread


@pytest.fixture(scope="module")
def dlib_embedder():
    return load_embedder("dlib")


@pytest.fixture(scope="module")
def built(example_paths, analyzer, dlib_embedder):
    """A bank of the bundled photos (3 people: Obama in three of them)."""
    return DelegateBank.build(example_paths[0].parent, analyzer=analyzer, identity=dlib_embedder, jpeg_quality=90,
                              progress=False)


def test_default_bank_holds_the_congress_portraits_and_stays_lean():
    """799 public-domain portraits, one person each (the Bioguide ID), under 30 MB, with the notice of their source."""
    bank = DelegateBank.default()
    assert sum(f.stat().st_size for f in DEFAULT_BANK_DIR.iterdir()) < 30_000_000
    assert len(bank) == bank.people == 799 and bank.embedder_name == "dlib" and bank.embeddings.shape == (799, 128)
    assert all(len(p) == 7 and p[0].isalpha() and p[1:].isdigit() for p in bank.identity_labels)  # e.g. A000374
    assert bank.landmarks.shape == (799, 68, 2) and bool(((bank.landmarks > 0) & (bank.landmarks < 1)).all())
    assert bank.poses.shape == (799, 3) and len(bank.attributes) == 799
    assert 0.3 < bank.intrusion.limit < bank.intrusion.median < bank.threshold  # calibrated, not dlib's 0.6
    assert "public domain" in (DEFAULT_BANK_DIR / "README.md").read_text()
    crop = bank.crop(0)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8 and crop.std() > 20
    assert bank.crop(0, size=128).shape == (128, 128, 3)
    assert not {"obama", "biden", "astronaut"} & {p.lower() for p in bank.identity_labels}  # test photos stay out


def test_loading_the_bank_decodes_no_photo(monkeypatch):
    """Start-up stays fast with 799 faces: loading reads arrays and JPEG bytes; a crop is decoded when asked for."""
    import cv2

    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    bank = DelegateBank.load(DEFAULT_BANK_DIR)
    assert decoded == [] and len(bank.crops) == 799
    bank.crop(5)
    assert decoded == [1]


def test_rebuilding_reproduces_the_shipped_bank(tmp_path, analyzer, dlib_embedder):
    """Six of the portraits rebuilt by docs/congress_bank.py's recipe give the shipped rows (where the portraits are)."""
    images = Path(__file__).resolve().parents[2] / "shared" / "faces" / "us-congress" / "images"
    if not images.is_dir():
        pytest.skip(f"the portraits are not at {images} (see docs/congress_bank.py)")
    shipped = DelegateBank.default()
    people = shipped.identity_labels[::150]
    for p in people:
        shutil.copy(images / f"{p}.jpg", tmp_path)
    built = DelegateBank.build(tmp_path, analyzer=analyzer, identity=dlib_embedder, jpeg_quality=90, progress=False)
    rows = [shipped.identity_labels.index(p) for p in built.identity_labels]
    assert sorted(built.identity_labels) == sorted(people)
    torch.testing.assert_close(built.landmarks, shipped.landmarks[rows])
    torch.testing.assert_close(built.embeddings, shipped.embeddings[rows], atol=1e-4, rtol=0)
    assert [a.gender for a in built.attributes] == [shipped.attributes[r].gender for r in rows]


def test_identity_is_the_person_by_folder_or_by_file(tmp_path, example_paths, analyzer, dlib_embedder):
    """A folder per person gives that folder's name to each of its faces; a photo beside no folder is a person of its
    own; mixtures and the intrusion limit count people by these labels, not by clusters of nearby faces."""
    for p in example_paths:
        if "obama" in p.name:
            (tmp_path / "obama").mkdir(exist_ok=True)
            shutil.copy(p, tmp_path / "obama" / p.name)
        else:
            shutil.copy(p, tmp_path / p.name)
    bank = DelegateBank.build(tmp_path, analyzer=analyzer, identity=dlib_embedder, progress=False)
    assert sorted(bank.identity_labels) == ["astronaut", "biden", "obama", "obama", "obama"]
    assert bank.people == 3 and len(torch.unique(bank.identities())) == 3
    obama = [i for i, p in enumerate(bank.identity_labels) if p == "obama"]
    assert len(set(bank.identities()[obama].tolist())) == 1


def test_the_intrusion_limit_rejects_a_member_and_passes_strangers():
    """The limit calibrated on the bank: a member's own face is inside it (rejected as that person); faces of
    other members, strangers to each other, are beyond it all but PERCENTILE % of the time."""
    from anon_model.bank.calibrate import PERCENTILE, nearest_other

    bank = DelegateBank.default()
    limit = bank.intrusion.limit
    own = torch.cdist(bank.embeddings[:50], bank.embeddings).min(1).values
    assert bool((own < limit).all())  # itself: distance 0
    others = nearest_other(bank.embeddings, bank.embeddings, bank.identities(), bank.identities())
    assert abs(float((others < limit).float().mean()) * 100 - PERCENTILE) < 0.5
    assert float((others < bank.threshold).float().mean()) > 0.5  # dlib's fixed 0.6 would reject most of them


def test_a_bank_of_format_1_loads_without_attributes_and_a_newer_one_is_refused(built, tmp_path):
    import json

    built.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "bank.json").read_text())
    assert meta["version"] == 3 and len(meta["attributes"]["gender"]) == len(built)
    del meta["attributes"]
    (tmp_path / "bank.json").write_text(json.dumps({**meta, "version": 1}))
    old = DelegateBank.load(tmp_path)
    assert old.attributes is None and old.sources == built.sources and len(old) == len(built)
    old.save_pretrained(tmp_path / "again")
    assert "attributes" not in json.loads((tmp_path / "again" / "bank.json").read_text())
    (tmp_path / "bank.json").write_text(json.dumps({**meta, "version": 4}))
    with pytest.raises(AnonModelError, match="format version 4.*upgrade anon_model"):
        DelegateBank.load(tmp_path)


def test_feature_space_groups_the_same_person(built):
    bank = built
    is_obama = torch.tensor(["obama" in s for s in bank.sources])
    for i in range(len(bank)):
        same = bank.same_identity(bank.embeddings[i])
        assert torch.equal(same, is_obama if is_obama[i] else torch.arange(len(bank)) == i), bank.sources[i]


def test_embedding_a_crop_matches_the_bank_row(built, analyzer, example_paths):
    bank = built
    face = analyzer(example_paths[1])[0]  # biden
    f = bank.embed(face.crop[None], face.crop_landmarks[None].astype(np.float32))[0]
    d = bank.distances(f)
    assert int(d.argmin()) == bank.sources.index("biden.jpg#0") and float(d.min()) < 1e-3


def test_save_and_load_round_trip(built, tmp_path):
    built.save_pretrained(tmp_path / "bank")
    for loaded in (DelegateBank.load(tmp_path / "bank"), DelegateBank.from_pretrained(tmp_path / "bank"),
                   DelegateBank.from_pretrained(tmp_path, subfolder="bank")):
        assert loaded.sources == built.sources and loaded.crops == built.crops
        assert torch.equal(loaded.embeddings, built.embeddings) and torch.equal(loaded.landmarks, built.landmarks)
        assert loaded.embedder_name == "dlib" and loaded.threshold == pytest.approx(0.6)
    assert len(DelegateBank.from_pretrained(None)) == 799


def test_load_rejects_a_folder_without_a_bank(tmp_path):
    with pytest.raises(AnonModelError, match="no delegate bank"):
        DelegateBank.load(tmp_path)


def test_build_skips_bad_files_and_refuses_empty_folders(tmp_path, example_paths, analyzer, dlib_embedder):
    with pytest.raises(AnonModelError, match="no images"):
        DelegateBank.build(tmp_path, analyzer=analyzer, identity=dlib_embedder, progress=False)
    (tmp_path / "sub").mkdir()
    shutil.copy(example_paths[1], tmp_path / "sub" / "b.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="broken.jpg"):
        bank = DelegateBank.build(tmp_path, analyzer=analyzer, identity=dlib_embedder, progress=False)
    assert bank.sources == ["sub/b.jpg#0"]


def test_build_speed(example_paths, analyzer, dlib_embedder, tmp_path):
    """>= 5 faces/s with models loaded, in CPU seconds of ONE thread (what 2 idle cores beat, busy machine or not)."""
    for i in range(4):
        for p in example_paths:
            shutil.copy(p, tmp_path / f"{i}_{p.name}")
    with one_thread():
        start = time.process_time()
        bank = DelegateBank.build(tmp_path, analyzer=analyzer, identity=dlib_embedder, progress=False)
        rate = len(bank) / (time.process_time() - start)
    print(f"bank build: {rate:.1f} faces per CPU second")
    assert len(bank) == 20 and rate >= 5


# ---- synthetic faces (diffusers) -----------------------------------------------------------------
def test_synth_with_a_tiny_random_ddpm_runs_and_finds_no_face(tmp_path, analyzer, dlib_embedder):
    """The real diffusers path (load, DDIM swap, sampling) with a random UNet: its noise holds no face."""
    from diffusers import DDIMPipeline, DDPMPipeline, DDPMScheduler, UNet2DModel

    from anon_model.bank.synth import _unconditional_pipeline

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)).save_pretrained(tmp_path / "ddpm")
    pipe = _unconditional_pipeline(str(tmp_path / "ddpm"), "cpu")
    assert isinstance(pipe, DDIMPipeline)
    generator = torch.Generator().manual_seed(0)
    images = pipe(batch_size=2, generator=generator, num_inference_steps=2, output_type="np").images
    assert images.shape == (2, 32, 32, 3)
    with pytest.warns(UserWarning, match="faces found in 0 of 3"), pytest.raises(AnonModelError, match="no face"):
        DelegateBank.synthesize(2, model=str(tmp_path / "ddpm"), analyzer=analyzer, identity=dlib_embedder,
                                steps=2, max_images=3, batch_size=2, progress=False)


class _PhotoSampler:
    """Stands in for a trained face diffusion model: returns the bundled photos as its 'samples'."""

    def __init__(self, paths: list[Path]) -> None:
        from anon_model.imageio import load_image

        self.images = [load_image(p) for p in paths]
        self.calls = 0

    def __call__(self, *, batch_size, generator, num_inference_steps, output_type):
        assert output_type == "np" and isinstance(generator, torch.Generator)
        picked = [self.images[(self.calls + i) % len(self.images)] for i in range(batch_size)]
        self.calls += batch_size
        size = min(min(im.shape[:2]) for im in picked)
        batch = np.stack([im[:size, :size] for im in picked]).astype(np.float32) / 255.0

        class Out:
            images = batch

        return Out()


def test_synth_fills_the_bank_with_detected_faces(example_paths, analyzer, dlib_embedder):
    """What happens after sampling (detect, align, embed, store), shown with real photos as the samples."""
    sampler = _PhotoSampler([p for p in example_paths if "obama" not in p.name])
    bank = DelegateBank.synthesize(2, model=sampler, analyzer=analyzer, identity=dlib_embedder, batch_size=1,
                                   progress=False)
    assert len(bank) == 2 and sampler.calls == 2
    assert all(s.startswith("synth:_PhotoSampler#") for s in bank.sources)
    assert bank.info["samples"] == 2


# ---- ArcFace feature space (plumbing only: no ArcFace weights here) ------------------------------
def test_arcface_embedder_plumbing_with_a_tiny_onnx(tmp_path, analyzer, example_paths):
    """insightface's ArcFace wrapper around a tiny random ONNX net (same input/output shapes as w600k_r50)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, 512)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["data"], ["pooled"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["pooled", "w"], ["fc1"])],
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", 512])],
        initializer=[weight],
    )
    path = tmp_path / "tiny_arcface.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    embedder = load_embedder(str(path))
    assert embedder.name == "arcface:tiny_arcface.onnx" and embedder.threshold == pytest.approx(np.sqrt(1.4))
    faces = [analyzer(p)[0] for p in example_paths[:2]]
    bank = DelegateBank.from_faces(faces, ["a", "b"], identity=embedder)
    assert bank.embeddings.shape == (2, 512)
    torch.testing.assert_close(bank.embeddings.norm(dim=1), torch.ones(2))
    assert not torch.allclose(bank.embeddings[0], bank.embeddings[1])
    assert [x.gender for x in bank.attributes] == ["female", "male"]  # astronaut, biden
    assert DelegateBank.from_faces(faces, ["a", "b"], identity=embedder, attributes=False).attributes is None
