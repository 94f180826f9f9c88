"""The multi-task training loss of paper §3.4: L_All (Eq. 9) from L1-L6 (Eq. 10-13, feature matching, background).

Every loss takes the real image's features (``Views``) and the branch's generated images (``Generated``), each
generated image carrying its own weights: in the reconstruction branch (Z_id = f_x) x-hat has weight 1 everywhere;
in the cycle swap-reconstruction branch (Z_id = f_y) y-hat has beta1 (Eq. 10), beta3 (Eq. 11) and beta2 with
target f_y (Eq. 13), and x-bar has weight 1 with target f_x.

Readings of the paper where it is not explicit (stated here so the model card can repeat them):
* Eq. 10 names the hinge term L_G and -D(fake) L_D; D minimizes the hinge and G minimizes -D(fake).
* In the cycle term L_G(y-hat, x-bar) the real sample shown to D is x: y-hat is itself generated, and x-bar
  reconstructs x with the same structure S_x.
* Eq. 12's d_a is applied to every generated image of the branch (y-hat and x-bar both carry x's appearance).
* L2 (feature matching) weighs y-hat by beta3, like the perceptual loss of Eq. 11.
* L5 compares raw identity features (the identity network's embedding), while Z_id may be the IFA-recast f_x.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

VGG_LAYERS = (1, 6, 11, 20, 29)  # relu1_1 ... relu5_1 of torchvision's vgg19().features
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # deeper layers weigh more, as in pix2pixHD [54]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Views:
    """What the losses need of one batch of images: D's outputs, rho_1/rho_2 features, identity and appearance codes.

    D's own update needs only ``d``."""

    d: list[list[torch.Tensor]]  # D(image, S_x): per scale [features..., logits]
    vgg: list[torch.Tensor] | None = None  # rho_1 features (None when rho_1 is off)
    id_map: torch.Tensor | None = None  # rho_2 features: identity network's map A
    f_id: torch.Tensor | None = None  # identity feature f (B,D) = head(A)
    f_a: torch.Tensor | None = None  # appearance feature f_a = E(foreground) (B,D)


@dataclass
class Generated:
    """One generated batch of a branch with its per-loss weights and identity target."""

    image: torch.Tensor
    views: Views
    id_target: torch.Tensor  # f_x (x-hat, x-bar) or f_y (y-hat)
    adv_weight: float = 1.0  # beta1 for y-hat (Eq. 10)
    perceptual_weight: float = 1.0  # beta3 for y-hat (Eq. 11)
    id_weight: float = 1.0  # beta2 for y-hat (Eq. 13)


def discriminator_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The paper's L_G(x, x-hat) = E[max(0, 1 + D(x-hat, S)) + max(0, 1 - D(x, S))], minimized by D.

    The paper (Eq. 10) names the hinge term L_G and -D(fake) L_D; as in every hinge GAN, D minimizes the hinge and
    G minimizes -D(fake) (the other assignment would train each network against its own goal).
    """
    return F.relu(1 + fake_logits).mean() + F.relu(1 - real_logits).mean()


def generator_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """The paper's L_D(x-hat) = E[-D(x-hat, S)], minimized by G (see ``discriminator_hinge``)."""
    return -fake_logits.mean()


def adversarial_loss(real: Views | None, generated: Sequence[Generated], *, for_discriminator: bool) -> torch.Tensor:
    """L1, averaged over D's scales; ``real`` is needed only for D (the real x of the pair; see the module doc)."""
    # Eq. 10: L1 = L_G(x, x-hat) + L_D(x-hat)  |  beta1 (L_G(x, y-hat) + L_D(y-hat)) + L_G(y-hat, x-bar) + L_D(x-bar)
    total = 0.0
    for g in generated:
        if for_discriminator:
            terms = [discriminator_hinge(r[-1], f[-1]) for r, f in zip(real.d, g.views.d)]
        else:
            terms = [generator_hinge(f[-1]) for f in g.views.d]
        total = total + g.adv_weight * torch.stack(terms).mean()
    return total


def feature_matching_loss(real: Views, generated: Sequence[Generated]) -> torch.Tensor:
    """L2 (pix2pixHD [54]): L1 between D's intermediate features of x and of each generated image (beta3 for y-hat)."""
    total = 0.0
    for g in generated:
        pairs = [(r, f) for rs, fs in zip(real.d, g.views.d) for r, f in zip(rs[:-1], fs[:-1])]
        total = total + g.perceptual_weight * torch.stack([F.l1_loss(f, r.detach()) for r, f in pairs]).mean()
    return total


def rho_vgg(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """rho_1: weighted L1 between VGG19 relu1_1..relu5_1 features (Johnson et al. [22], weights of [54])."""
    return sum(w * F.l1_loss(fb, fa) for w, fa, fb in zip(VGG_LAYER_WEIGHTS, a, b))


def rho_identity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """rho_2: L1 between the identity network's feature maps A (the paper uses FaceNet)."""
    return F.l1_loss(b, a)


def perceptual_loss(real: Views, generated: Sequence[Generated]) -> torch.Tensor:
    """L3 = E[sum_i rho_i(x, x-hat)]; rho_1 drops out when VGG19 is disabled."""
    # Eq. 11: L3 = E[sum_i rho_i(x, x-hat)]  |  E[sum_i (beta3 rho_i(x, y-hat) + rho_i(x-bar, x))]
    total = 0.0
    for g in generated:
        rho = rho_identity(real.id_map, g.views.id_map)
        if real.vgg is not None:
            rho = rho + rho_vgg(real.vgg, g.views.vgg)
        total = total + g.perceptual_weight * rho
    return total


def appearance_loss(real: Views, generated: Sequence[Generated], z_id: torch.Tensor) -> torch.Tensor:
    """L4: keep f_a of the output close to f_a(x) (d_a, mean L1) and f_a(x) not aligned with f_x (d_e)."""
    # Eq. 12: L4 = E[d_a(x, x-hat)] + E[d_e(x)],  d_a = |f_a(x) - f_a(x-hat)|_1,  d_e = max(0, cos(f_a(x), f_x))
    d_a = sum(F.l1_loss(g.views.f_a, real.f_a) for g in generated)
    d_e = F.relu(F.cosine_similarity(real.f_a, z_id, dim=1)).mean()
    return d_a + d_e


def identity_loss(generated: Sequence[Generated]) -> torch.Tensor:
    """L5: L2 distance between the identity feature of each output and its target (f_x, or f_y for y-hat)."""
    # Eq. 13: L5 = E[d_f(x-hat, x)]  |  E[beta2 d_f(y-hat, y) + d_f(x-bar, x)],  d_f(a, b) = |f_a - f_b|_2
    return sum(g.id_weight * (g.views.f_id - g.id_target).norm(dim=1).mean() for g in generated)


def background_loss(x: torch.Tensor, mask: torch.Tensor, generated: Sequence[Generated]) -> torch.Tensor:
    """L6 = E[|x_b - g_b|_1]: mean L1 between the backgrounds (outside the face mask) of x and each output."""
    background = 1 - mask
    return sum(F.l1_loss(g.image * background, x * background) for g in generated)


def total_loss(terms: Mapping[str, torch.Tensor], lambdas: Mapping[str, float]) -> torch.Tensor:
    """L_All = sum_i lambda_i L_i over the terms present (keys "L1".."L6")."""
    # Eq. 9: L_All = lambda1 L1 + lambda2 L2 + lambda3 L3 + lambda4 L4 + lambda5 L5 + lambda6 L6
    return sum(lambdas[name] * value for name, value in terms.items())


class VGG19Features(nn.Module):
    """Frozen torchvision VGG19 returning relu1_1..relu5_1 for rho_1, on images in [0,1].

    ``weights``: "imagenet" (torchvision's download or its cache), a local state-dict path, or "random".
    Without ImageNet weights rho_1 is a random-feature loss, which the run announces loudly (``self.pretrained``).
    """

    def __init__(self, *, weights: str = "imagenet") -> None:
        super().__init__()
        from torchvision.models import VGG19_Weights, vgg19

        self.pretrained = weights != "random"
        if weights == "imagenet":
            try:
                net = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
            except Exception as err:  # offline: no download possible
                warnings.warn(f"rho_1: ImageNet VGG19 weights unavailable ({err}); using RANDOM weights", stacklevel=2)
                net, self.pretrained = vgg19(), False
        elif weights == "random":
            warnings.warn("rho_1: VGG19 with RANDOM weights (not the paper's ImageNet VGG19)", stacklevel=2)
            net = vgg19()
        else:
            net = vgg19()
            net.load_state_dict(torch.load(Path(weights), map_location="cpu", weights_only=True))
        self.features = net.features[: VGG_LAYERS[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        h, outputs = (image - self.mean) / self.std, []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in VGG_LAYERS:
                outputs.append(h)
        return outputs
