"""Identity networks Psi: the dlib .dat reader, the torch port against dlib itself, chip framing, FaceNet, codebook."""
from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
import torch

from anon_model.identity import load_identity_network
from anon_model.identity.chip import chip_matrix, face_box
from anon_model.identity.codebook import IdentityCodebook
from anon_model.identity.dlib_format import read_dlib_net
from anon_model.imageio import load_image
from anon_model.perception.weights import dlib_model_file


@pytest.fixture(scope="module")
def net():
    return load_identity_network("dlib")


@pytest.fixture(scope="module")
def dlib_faces(example_paths):
    """Per face of the bundled photos: image, dlib's 68-point shape, dlib's chip and dlib's own descriptor."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))
    faces = []
    for path in example_paths:
        image = load_image(path)
        for rect in detector(image, 1):
            shape = predictor(image, rect)
            chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
            faces.append((image, shape, chip, np.array(recognizer.compute_face_descriptor(chip))))
    assert len(faces) >= 5
    return faces


def test_reader_sees_the_whole_network():
    parsed = read_dlib_net()
    kinds = [layer.kind for layer in parsed.layers]
    counts = {k: kinds.count(k) for k in set(kinds)}
    assert counts == {"con": 29, "affine": 29, "relu": 29, "add_prev": 14, "avg_pool": 5, "max_pool": 1, "fc": 1}
    assert parsed.loss["distance_threshold"] == pytest.approx(0.6)
    assert parsed.input["size"] == (150, 150) and parsed.input["means"][0] == pytest.approx(122.782)
    n = sum(v.size for layer in parsed.layers for v in layer.attrs.values() if isinstance(v, np.ndarray))
    assert n == 5_614_592


def test_port_matches_dlib_on_the_same_chip(net, dlib_faces):
    chips = torch.stack([torch.from_numpy(chip).permute(2, 0, 1).float() / 255 for _, _, chip, _ in dlib_faces])
    with torch.inference_mode():
        ours = net.head(net.features(net.normalize_input(chips))).double().numpy()
    reference = np.stack([d for *_, d in dlib_faces])
    errors = np.linalg.norm(ours - reference, axis=1)
    assert errors.max() <= 1e-3, errors  # the issue asks <= 0.01; the port is exact to float rounding (~1e-6)


def test_chip_geometry_reproduces_dlib_get_face_chip(dlib_faces):
    import cv2

    for image, shape, chip, _ in dlib_faces:
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        m = chip_matrix(face_box(landmarks), size=150, padding=0.25)
        ours = cv2.warpAffine(image, m, (150, 150), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).astype(np.float64)
        diff = np.abs(ours - chip)
        assert diff.mean() < 0.6 and diff.max() <= 6.0  # dlib truncates where cv2 rounds (max 4 seen with OpenCV 4.13)


def test_embed_from_analyzer_crops_agrees_with_dlib(net, analyzer, example_paths):
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))
    for path in example_paths:
        image = load_image(path)
        for face in analyzer(image):
            parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks])
            shape = dlib.full_object_detection(dlib.rectangle(*[int(v) for v in face.box]), parts)
            reference = torch.tensor(np.array(recognizer.compute_face_descriptor(image, shape)), dtype=torch.float32)
            crop = torch.from_numpy(face.crop).permute(2, 0, 1)[None].float() / 255
            with torch.inference_mode():
                with_landmarks = net.embed(crop, landmarks=torch.from_numpy(face.crop_landmarks)[None].float())[0]
                fixed_window = net.embed(crop)[0]
            # measured (docs/chip_window.py): 0.02-0.05 with landmarks (two resamplings), 0.07-0.18 fixed
            assert net.distance(with_landmarks, reference) < 0.08, path.name
            assert net.distance(fixed_window, reference) < 0.25, path.name


def test_verification_on_bundled_photos(net, analyzer, example_paths):
    faces = {p.stem: analyzer(load_image(p))[0] for p in example_paths}
    crops = torch.stack([torch.from_numpy(f.crop).permute(2, 0, 1).float() / 255 for f in faces.values()])
    landmarks = torch.stack([torch.from_numpy(f.crop_landmarks).float() for f in faces.values()])
    with torch.inference_mode():
        e = dict(zip(faces, net.embed(crops, landmarks=landmarks)))
    assert net.name == "dlib" and net.threshold == pytest.approx(0.6)
    assert net.distance(e["obama"], e["obama2"]) < net.threshold and net.distance(e["obama"], e["obama3"]) < net.threshold
    assert net.distance(e["obama"], e["biden"]) > net.threshold and net.distance(e["biden"], e["astronaut"]) > net.threshold


def test_embed_is_differentiable(net):
    crops = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0), requires_grad=True)
    net.embed(crops).sum().backward()
    assert crops.grad is not None and torch.isfinite(crops.grad).all() and crops.grad.abs().sum() > 0


def test_save_and_reload_as_hub_model(net, tmp_path):
    net.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors"}
    again = load_identity_network(tmp_path)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.equal(again.embed(x), net.embed(x))
    assert not again.training


def test_facenet_split_reproduces_inception_resnet(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    model = InceptionResnetV1(classify=True, num_classes=8631).eval()
    torch.save(model.state_dict(), tmp_path / "facenet.pt")
    psi = load_identity_network(tmp_path / "facenet.pt")
    x = psi.to_input(torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(2)))
    assert x.shape == (2, 3, 160, 160)
    with torch.inference_mode():
        a = psi.features(x)
        f = psi.head(a)
        assert a.shape == (2, 1792, 3, 3) and f.shape == (2, 512)
        assert torch.allclose(psi.class_logits(f), model(x), atol=1e-5)
        model.classify = False
        assert torch.allclose(torch.nn.functional.normalize(f), model(x), atol=1e-6)
    assert psi.distance(f[0], 3 * f[0]) == pytest.approx(0.0, abs=1e-6)  # L2 of normalized embeddings


def test_facenet_pretrained_vggface2():
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home

    cached = Path(get_torch_home()) / "checkpoints" / "20180402-114759-vggface2.pt"
    if not cached.is_file():
        pytest.skip("FaceNet VGGFace2 weights not downloaded (no internet here); runs wherever facenet-pytorch has fetched them")
    psi = load_identity_network("facenet")
    with torch.inference_mode():
        logits = psi.class_logits(psi.embed(torch.rand(1, 3, 256, 256)))
    assert logits.shape == (1, 8631)


def test_codebook_ranks_like_cosine_and_adds_own_identity():
    g = torch.Generator().manual_seed(5)
    prototypes, f = torch.randn(6, 16, generator=g) * 3, torch.randn(4, 16, generator=g)
    book = IdentityCodebook(prototypes, names=list("abcdef"))
    cosine = torch.nn.functional.cosine_similarity(f[:, None], prototypes[None], dim=-1)
    assert torch.equal(book(f).argsort(1), cosine.argsort(1))
    with_own = book(f, own=2 * f)
    assert with_own.shape == (4, 7) and torch.equal(with_own.argmax(1), torch.full((4,), 6))
    assert book.class_names(with_own=True)[-1] == "self"
