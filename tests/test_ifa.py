"""IFA (paper §3.1): Eq. 1-5 as tensor functions, batched Grad-CAM, and the anonymizer on real photos."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from anon_model.identity.base import IdentityNetwork
from anon_model.identity.codebook import IdentityCodebook
from anon_model.ifa import IdentityFeatureAnonymizer, assistant_matrix, cam, distract, grad_cam


def _random(b=3, c=16, h=5, w=4, k=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, c, h, w, generator=g, dtype=dtype), torch.randn(b, k, c, generator=g, dtype=dtype),
            torch.rand(b, k, generator=g, dtype=dtype))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_eq3_nullity_top1(dtype, tol):
    a, alphas, _ = _random(k=1, dtype=dtype)
    a_hat = distract(a, alphas, torch.ones(1, dtype=dtype))
    attention = torch.einsum("bkc,bchw->bkhw", alphas, a_hat)  # alpha A_hat at every location
    scale = torch.einsum("bkc,bchw->bkhw", alphas, a).abs().max()
    assert scale > 1  # the input really has attention to remove
    assert attention.abs().max() <= tol * scale
    assert cam(a_hat, alphas).max() <= tol * scale
    assert not torch.allclose(a_hat, a)  # A-hat is not A, and not -A (the paper's invalid solution)
    assert not torch.allclose(a_hat, torch.zeros_like(a))


def test_distract_is_linear_in_a_and_in_weights():
    a1, alphas, w1 = _random(seed=1)
    a2, _, w2 = _random(seed=2)
    lhs = distract(2.0 * a1 - 3.0 * a2, alphas, w1)
    assert torch.allclose(lhs, 2.0 * distract(a1, alphas, w1) - 3.0 * distract(a2, alphas, w1))
    delta = lambda w: distract(a1, alphas, w) - a1  # noqa: E731
    assert torch.allclose(delta(w1 + w2), delta(w1) + delta(w2))
    assert torch.allclose(delta(0.5 * w1), 0.5 * delta(w1))


def test_distract_shapes_and_batching():
    a, alphas, weights = _random(b=4, k=3)
    batched = distract(a, alphas, weights)
    assert batched.shape == a.shape
    for i in range(len(a)):  # (C,h,w) with (K,C) and (K,) == the batched row
        assert torch.allclose(distract(a[i], alphas[i], weights[i]), batched[i])
    shared = distract(a, alphas[0], weights[0])  # (K,C) alphas and (K,) weights broadcast over the batch
    assert torch.allclose(shared[2], distract(a[2], alphas[0], weights[0]))
    assert assistant_matrix(a, alphas).shape == (4, 3, *a.shape[2:])


def test_orthogonal_classes_are_all_distracted_with_unit_weights():
    a, _, _ = _random(b=2, c=8, k=2)
    alphas = torch.zeros(2, 2, 8, dtype=a.dtype)
    alphas[:, 0, :4], alphas[:, 1, 4:] = torch.rand(2, 4, dtype=a.dtype), torch.rand(2, 4, dtype=a.dtype)
    a_hat = distract(a, alphas, torch.ones(2, dtype=a.dtype))
    assert torch.einsum("bkc,bchw->bkhw", alphas, a_hat).abs().max() < 1e-12


class _TinyPsi(IdentityNetwork):
    """A small random identity network with its own class head, for exact Grad-CAM checks."""

    name, threshold, input_size = "tiny", 1.0, 32

    def __init__(self, classes: int = 7) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.tail = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 6))
        self.logits = nn.Linear(6, classes)

    def input_matrices(self, crops, *, landmarks=None):
        step = (crops.shape[-1] - 1) / (self.input_size - 1)
        return torch.tensor([[step, 0.0, 0.0], [0.0, step, 0.0]], dtype=crops.dtype).expand(crops.shape[0], 2, 3)

    def normalize_input(self, window):
        return window * 2 - 1

    def features(self, x):
        return self.body(x)

    def head(self, a):
        return self.tail(a)

    def class_logits(self, f):
        return self.logits(f)

    def distance(self, a, b):
        return torch.linalg.vector_norm(a - b, dim=-1)


def test_grad_cam_matches_per_class_autograd_reference():
    net = _TinyPsi().eval()
    x = net.to_input(torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(3)))
    a = net.features(x).detach()
    head = lambda t: net.class_logits(net.head(t))  # noqa: E731
    classes = torch.tensor([[0, 4], [6, 1], [2, 2]])
    _, alphas, heat = grad_cam(head, a, classes)
    for b in range(3):  # reference: one forward and one backward per face and class
        for i in range(2):
            ab = a[b : b + 1].clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(head(ab)[0, classes[b, i]], ab)
            alpha = grad[0].mean(dim=(1, 2))
            assert torch.allclose(alphas[b, i], alpha, atol=1e-6)
            assert torch.allclose(heat[b, i], torch.relu((alpha[:, None, None] * a[b]).sum(0)), atol=1e-6)


def test_anonymizer_record_on_a_tiny_network():
    net = _TinyPsi().eval()
    crops = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    results = IdentityFeatureAnonymizer(net, k_top=3)(crops)
    assert len(results) == 2
    with torch.no_grad():
        logits = net.class_logits(net.embed(crops))
    for r, row in zip(results, logits):
        assert r.classes == row.topk(3).indices.tolist()
        assert r.cams.shape == r.cams_distracted.shape == (3, 64, 64)
        assert r.attention.shape == (64, 64) and r.attention.min() >= 0 and r.attention.max() == pytest.approx(1.0)
        assert r.weights.sum() == pytest.approx(1.0) and (r.weights[:-1] >= r.weights[1:]).all()
        assert r.feature.shape == r.feature_distracted.shape == (6,)
        assert r.distance == pytest.approx(float((r.feature - r.feature_distracted).norm()), rel=1e-5)
    with pytest.raises(ValueError, match="weights"):
        IdentityFeatureAnonymizer(net, weights="bogus")


@pytest.fixture(scope="module")
def real_faces(analyzer, example_paths):
    from anon_model.imageio import load_image

    faces = [f for p in example_paths for f in analyzer(load_image(p))]
    crops = torch.stack([torch.from_numpy(f.crop).permute(2, 0, 1).float() / 255 for f in faces])
    landmarks = torch.stack([torch.from_numpy(f.crop_landmarks).float() for f in faces])
    return crops, landmarks


def test_ifa_removes_identity_on_real_photos(real_faces):
    from anon_model.identity import load_identity_network

    net = load_identity_network("dlib")
    crops, landmarks = real_faces
    with torch.inference_mode():  # the anonymizer must work even when called inside inference mode
        embeddings = net.embed(crops, landmarks=landmarks)
    distances = {}
    for k, weights in ((1, "scores"), (3, "scores"), (6, "scores"), (3, "ones")):
        row = []
        for i in range(len(crops)):
            others = [j for j in range(len(crops)) if j != i]
            ifa = IdentityFeatureAnonymizer(net, codebook=IdentityCodebook(embeddings[others]), k_top=k, weights=weights)
            with torch.inference_mode():
                r = ifa(crops[i : i + 1], landmarks=landmarks[i : i + 1])[0]
            assert torch.allclose(r.feature, embeddings[i], atol=1e-4)
            row.append(r.distance)
        distances[k, weights] = torch.tensor(row)
    for key, d in distances.items():  # every face's f_x moved beyond the verification threshold
        assert (d > net.threshold).all(), (key, d)
    # docs/k_curve.md: normalized score weights keep K > 1 near top-1 (flat, slightly closer); unit weights
    # add the aligned distractions up, so f_x moves further away as K grows
    assert distances[6, "scores"].mean() <= distances[1, "scores"].mean() < 1.5 * distances[6, "scores"].mean()
    assert (distances[3, "ones"] > distances[1, "scores"]).all()


def test_ifa_speed_and_memory_for_one_face(real_faces):
    """Issue budget: <= 150 ms per 256 face on 2 cores, <= 1 GB extra RAM; measured as one thread's CPU time."""
    import resource
    import time

    from _timing import one_thread

    from anon_model.identity import load_identity_network

    crops, landmarks = real_faces
    net = load_identity_network("dlib")
    with torch.inference_mode():
        book = IdentityCodebook(net.embed(crops[1:], landmarks=landmarks[1:]))
    ifa = IdentityFeatureAnonymizer(net, codebook=book, k_top=3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with one_thread():
        ifa(crops[:1], landmarks=landmarks[:1])  # warm-up
        times = []
        for _ in range(5):
            start = time.process_time()
            ifa(crops[:1], landmarks=landmarks[:1])
            times.append(time.process_time() - start)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    print(f"IFA, one face, K=3: {1000 * min(times):.0f} ms CPU (one thread); peak RSS grew {grown_mb:.0f} MB")
    assert min(times) < 0.15 and grown_mb < 1024
