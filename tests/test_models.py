"""The step-2 networks (paper §3.3): ResBlock, AdaIN, SumPooling, FaceAnonGenerator (E, FC, T) and D."""
from __future__ import annotations

import json

import pytest
import torch

from anon_model.models import AdaIN, FaceAnonGenerator, MultiScaleDiscriminator, ResBlock, SumPooling

TINY_G = {"encoder_channels": [4, 8, 8, 8, 8, 8], "translator_channels": [4, 8, 8], "n_middle": 1, "style_dim": 16}
TINY_D = {"channels": [4, 8], "num_scales": 2}


def _inputs(batch: int = 2, dim: int = 128, size: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=g), torch.rand(batch, 3, size, size, generator=g), \
        torch.rand(batch, 4, size, size, generator=g)


def _randomize_adain(model: torch.nn.Module) -> None:
    """AdaIN starts as plain instance norm (zero affine): give it random weights so conditions matter."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, AdaIN):
            torch.nn.init.normal_(m.affine.weight, std=0.5)


@pytest.mark.parametrize(("resample", "size_out"), [(None, 16), ("down", 8), ("up", 32)])
def test_resblock_resamples_and_changes_channels(resample, size_out):
    block = ResBlock(3, 5, resample=resample, norm="instance")
    assert block(torch.rand(2, 3, 16, 16)).shape == (2, 5, size_out, size_out)


def test_adain_starts_as_instance_norm_and_follows_the_condition():
    adain = AdaIN(4, 6)
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    plain = torch.nn.functional.instance_norm(x)
    assert torch.allclose(adain(x, torch.randn(2, 6)), plain, atol=1e-5)
    torch.nn.init.normal_(adain.affine.weight)
    out_a, out_b = adain(x, torch.randn(2, 6)), adain(x, torch.randn(2, 6))
    assert not torch.allclose(out_a, out_b)
    # per channel, the output mean is beta and the std is |1 + gamma|: the condition sets the statistics
    gamma, beta = adain.affine(torch.ones(1, 6)).chunk(2, dim=1)
    out = adain(x[:1], torch.ones(1, 6))
    assert torch.allclose(out.mean(dim=(2, 3)), beta, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), (1 + gamma).abs(), atol=1e-3)


def test_sum_pooling_sums_the_foreground():
    x = torch.zeros(1, 2, 4, 4)
    x[0, :, 1:3, 1:3] = torch.tensor([1.0, 2.0]).view(2, 1, 1)
    assert SumPooling()(x).tolist() == [[4.0, 8.0]]


def test_generator_shapes_range_and_parts():
    model = FaceAnonGenerator(**TINY_G)
    z_id, z_a, z_g = _inputs()
    out = model(z_id, z_a, z_g)
    assert out.shape == (2, 3, 256, 256)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert sum(isinstance(m, ResBlock) for m in model.encoder.blocks) == 6  # E: six ResBlocks + SumPooling
    assert model.encoder(z_a).shape == (2, 128)  # f_a lives in Z_id's space (Eq. 12 compares them)
    assert model.condition(z_id, model.encoder(z_a)).shape == (2, 16)  # Z_c = FC(Concat(Z_id, f_a))


def test_generator_output_depends_on_each_input():
    model = FaceAnonGenerator(**TINY_G)
    _randomize_adain(model)
    z_id, z_a, z_g = _inputs()
    z_id2, z_a2, z_g2 = _inputs(seed=1)
    with torch.no_grad():
        base = model(z_id, z_a, z_g)
        for changed in (model(z_id2, z_a, z_g), model(z_id, z_a2, z_g), model(z_id, z_a, z_g2)):
            assert (changed - base).abs().mean() > 1e-4


def test_generator_rejects_identity_features_of_another_backend():
    model = FaceAnonGenerator(**TINY_G, z_id_dim=128, identity_backend="dlib")
    _, z_a, z_g = _inputs(batch=1)
    with pytest.raises(ValueError, match="128-d 'dlib'"):
        model(torch.randn(1, 512), z_a, z_g)


def test_generator_save_load_roundtrip_records_config(tmp_path):
    model = FaceAnonGenerator(**TINY_G, z_id_dim=128, identity_backend="dlib", training_config="tiny", trained_steps=7)
    _randomize_adain(model)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["z_id_dim"], config["identity_backend"], config["training_config"]) == (128, "dlib", "tiny")
    assert "`tiny`" in (tmp_path / "README.md").read_text() and "7 steps" in (tmp_path / "README.md").read_text()
    loaded = FaceAnonGenerator.from_pretrained(tmp_path)
    assert not loaded.training
    assert "'tiny' for 7 steps" in loaded.description
    inputs = _inputs(batch=1)
    with torch.no_grad():
        assert torch.equal(model.eval()(*inputs), loaded(*inputs))


def test_generator_loading_is_strict(tmp_path):
    FaceAnonGenerator(**TINY_G).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_middle"] = 2  # one more AdaIN block than the weights have
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="Missing key"):
        FaceAnonGenerator.from_pretrained(tmp_path)


def test_synthesize_takes_face_conditionings():
    from anon_model.conditioning import FaceConditioning

    model = FaceAnonGenerator(**TINY_G).eval()
    _randomize_adain(model)
    z_id, z_a, z_g = _inputs()
    zeros = torch.zeros(3, 256, 256)
    conds = [FaceConditioning(x=zeros, z_id=z_id[i], z_a=z_a[i], z_g=z_g[i], landmarks=torch.zeros(68, 2),
                              landmarks_anon=torch.zeros(68, 2), delegate_crop=zeros,
                              delegate_landmarks=torch.zeros(68, 2), mask=zeros[0], attention=zeros[0])
             for i in range(2)]
    out = model.synthesize(conds, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 256, 256) and out.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(out, model(z_id, z_a, z_g))


def test_discriminator_is_multiscale_with_features():
    model = MultiScaleDiscriminator(**TINY_D)
    image, structure = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    outputs = model(image, structure)
    assert len(outputs) == 2
    for scale, feats in enumerate(outputs):
        assert len(feats) == 3  # two ResBlocks' features, then the logits
        assert feats[-1].shape == (2, 1, 16 // 2**scale, 16 // 2**scale)
    # D judges the (image, structure) pair: another structure changes the verdict
    assert not torch.allclose(outputs[0][-1], model(image, torch.rand(2, 1, 64, 64))[0][-1])


def test_gradients_reach_every_generator_and_discriminator_parameter():
    generator, discriminator = FaceAnonGenerator(**TINY_G), MultiScaleDiscriminator(**TINY_D)
    _randomize_adain(generator)
    z_id, z_a, z_g = _inputs(size=64)
    fake = generator(z_id, z_a, z_g)
    sum(f[-1].mean() for f in discriminator(fake, z_g[:, 3:])).backward()
    for name, p in [*generator.named_parameters(), *discriminator.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_discriminator_save_load_roundtrip(tmp_path):
    model = MultiScaleDiscriminator(**TINY_D).eval()
    model.save_pretrained(tmp_path)
    loaded = MultiScaleDiscriminator.from_pretrained(tmp_path)
    x, s = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x, s)[1][-1], loaded(x, s)[1][-1])
