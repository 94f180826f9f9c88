"""Identity feature anonymization (IFA, paper §3.1): distract Psi's intrinsic identity attention in feature space.

Psi (an ``IdentityNetwork``) runs to its last spatial layer A; Grad-CAM (Eq. 1-2) finds, for each of the top-K
classes c_i, the channel importances alpha_i and the heatmap H_i; the assistant matrix Phi_i (Eq. 4) solves
Eq. 3 (alpha_i A-hat = 0) and Eq. 5 combines the K distractions with weights w_i; A-hat then runs through the
rest of Psi and gives the recast identity feature f_x (the generator's Z_id).

Shapes: A (B,C,h,w) (or (C,h,w)), alphas (B,K,C) (or (K,C)), weights (B,K) (or (K,)), maps (B,K,h,w).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from anon_model.identity.base import IdentityNetwork
from anon_model.identity.codebook import IdentityCodebook

WEIGHTINGS = ("scores", "uniform", "ones")


def cam(a: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Grad-CAM heatmaps (B,K,h,w) of each class."""
    # Eq. 1: H = ReLU(sum_j alpha_j^c A^j)
    return F.relu(torch.einsum("bkc,bchw->bkhw", alphas, a))


def neuron_importance(gradients: torch.Tensor) -> torch.Tensor:
    """Channel importances alpha (B,C) from the gradients dy^c/dA (B,C,h,w)."""
    # Eq. 2: alpha_j^c = 1/Z sum_k sum_l dy^c / dA^j_kl
    return gradients.mean(dim=(-2, -1))


def modulation(alphas: torch.Tensor, phi: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The modulation xi (B,C,h,w) added to A: xi = sum_i w_i alpha_i^T Phi_i (Eq. 3 with Eq. 5's weighted sum)."""
    # Eq. 3: A_hat = A + xi, s.t. alpha A_hat = 0, with xi = alpha^T Phi
    return torch.einsum("bk,bkc,bkhw->bchw", weights, alphas, phi)


def assistant_matrix(a: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Phi (B,K,h,w) that cancels each class's attention: alpha (A + alpha^T Phi) = 0 at every location."""
    # Eq. 4: Phi = - alpha A / (alpha alpha^T)
    norms = (alphas * alphas).sum(-1).clamp_min(torch.finfo(alphas.dtype).tiny)
    return -torch.einsum("bkc,bchw->bkhw", alphas, a) / norms[..., None, None]


def distract(a: torch.Tensor, alphas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A-hat: A with the attention of the K classes distracted; A (C,h,w)|(B,C,h,w), alphas (K,C)|(B,K,C), weights (K,)|(B,K)."""
    single = a.ndim == 3
    a = a[None] if single else a
    alphas = alphas.expand(a.shape[0], *alphas.shape[-2:]) if alphas.ndim == 2 else alphas
    weights = torch.as_tensor(weights, dtype=a.dtype, device=a.device)
    weights = weights.expand(a.shape[0], weights.shape[-1]) if weights.ndim == 1 else weights
    # Eq. 5: A_hat = A + sum_i w_i alpha_i^T Phi_i
    a_hat = a + modulation(alphas, assistant_matrix(a, alphas), weights)
    return a_hat[0] if single else a_hat


def grad_cam(head, a: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched Grad-CAM at A for given classes (B,K): one forward of ``head`` (A -> logits), one backward per rank.

    Returns logits (B,N), alphas (B,K,C) and heatmaps H (B,K,h,w). Samples are independent (eval mode), so the
    gradient of the batch sum of y^{c_i} gives every sample's own dy/dA.
    """
    a = a.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = head(a)
        grads = [torch.autograd.grad(logits.gather(1, classes[:, i : i + 1]).sum(), a, retain_graph=i + 1 < classes.shape[1])[0]
                 for i in range(classes.shape[1])]
    alphas = torch.stack([neuron_importance(g) for g in grads], dim=1)
    return logits.detach(), alphas, cam(a.detach(), alphas)


@dataclass
class IFAResult:
    """IFA's output for one face (the explanation the UI shows and the conditioning step 2 uses)."""

    classes: list[int]  # top-K class indices of Psi (in the codebook / VGGFace2 head)
    class_names: list[str]  # their names ("self" = the input's own identity in a codebook)
    scores: torch.Tensor  # (K,) softmax probability of each class before distraction
    scores_distracted: torch.Tensor  # (K,) the same classes' probabilities for f_x
    weights: torch.Tensor  # (K,) w_i of Eq. 5
    cams: torch.Tensor  # (K,S,S) H of each class, upsampled to the crop (network units, >= 0)
    cams_distracted: torch.Tensor  # (K,S,S) H-hat: Grad-CAM of the same classes at A-hat
    attention: torch.Tensor  # (S,S) max over the K maps H, scaled to [0,1]
    feature: torch.Tensor  # (D,) Psi's original identity feature
    feature_distracted: torch.Tensor  # (D,) f_x, the recast identity feature (Z_id)
    distance: float  # Psi's verification distance between the two features


class IdentityFeatureAnonymizer:
    """IFA (paper §3.1) with any ``IdentityNetwork``; the classes are Psi's own head or an ``IdentityCodebook``.

    ``weights`` (w_i of Eq. 5, which the paper leaves open): "scores" (default: the top-K softmax scores
    normalized to sum 1, so K = 1 is exactly Eq. 3), "uniform" (1/K), "ones" (w_i = 1), or K numbers.
    ``include_self`` adds the input's own identity as one more codebook class (default off, as in the paper,
    whose classes are other, pre-trained identities). Both defaults are chosen by measurement
    (docs/k_curve.md): the top-K classes' Grad-CAM weights are nearly parallel, so unit weights overshoot
    (attention flipped, |f_x| far beyond real descriptors) while normalized ones keep Eq. 3 nearly true for
    every class; the own identity as a class makes every face's f_x nearly the same.
    """

    def __init__(self, net: IdentityNetwork, *, codebook: IdentityCodebook | None = None, k_top: int = 3,
                 weights: str | Sequence[float] = "scores", include_self: bool = False) -> None:
        self.net, self.codebook, self.k_top, self.weights, self.include_self = net, codebook, k_top, weights, include_self
        if codebook is None and not has_class_head(net):
            raise ValueError(f"{net.name} has no class head: pass an IdentityCodebook (e.g. of the delegate bank)")
        if isinstance(weights, str) and weights not in WEIGHTINGS:
            raise ValueError(f"weights must be one of {WEIGHTINGS} or a sequence of K numbers, got {weights!r}")

    def __call__(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None, k_top: int | None = None) -> list[IFAResult]:
        """IFA for aligned crops (B,3,S,S) in [0,1] (optionally their 68 crop landmarks (B,68,2)); one result per face.

        Psi's body runs once without gradients; only its head (after A) is differentiated, once per rank.
        """
        with torch.inference_mode(False):  # Grad-CAM needs autograd even when the caller is in inference mode
            crops = crops.clone().float()
            landmarks = None if landmarks is None else landmarks.clone().float()
            with torch.no_grad():
                a = self.net.features(self.net.to_input(crops, landmarks=landmarks))
                feature = self.net.head(a)
                head = self._logits_head(feature)
                logits = head(a)
            classes = logits.topk(min(k_top or self.k_top, logits.shape[1]), dim=1).indices
            _, alphas, heat = grad_cam(head, a, classes)
            probs = logits.softmax(1).gather(1, classes)
            weights = self._weights(probs)
            a_hat = distract(a, alphas, weights)
            logits_hat, _, heat_hat = grad_cam(head, a_hat, classes)
            with torch.no_grad():
                f_x = self.net.head(a_hat)
                distance = self.net.distance(feature, f_x)
                cams, cams_hat = self.net.maps_to_crop(torch.cat([heat, heat_hat], 1), crops, landmarks=landmarks).chunk(2, dim=1)
        probs_hat = logits_hat.softmax(1).gather(1, classes)
        attention = cams.amax(1)
        attention = attention / attention.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        names = self.codebook.class_names(with_own=self.include_self) if self.codebook is not None else None
        return [IFAResult(classes=classes[b].tolist(),
                          class_names=[names[c] if names else str(c) for c in classes[b].tolist()],
                          scores=probs[b], scores_distracted=probs_hat[b], weights=weights[b],
                          cams=cams[b], cams_distracted=cams_hat[b], attention=attention[b],
                          feature=feature[b], feature_distracted=f_x[b], distance=float(distance[b]))
                for b in range(len(crops))]

    def _logits_head(self, feature: torch.Tensor):
        """A -> class logits: Psi's head then its classes (own head, or the codebook + the input's own identity)."""
        if self.codebook is None:
            return lambda a: self.net.class_logits(self.net.head(a))
        own = feature.detach() if self.include_self else None
        return lambda a: self.codebook(self.net.head(a), own=own)

    def _weights(self, probs: torch.Tensor) -> torch.Tensor:
        """w_i (B,K) of Eq. 5 for the chosen weighting."""
        k = probs.shape[1]
        if not isinstance(self.weights, str):
            w = torch.as_tensor(list(self.weights)[:k], dtype=probs.dtype)
            if len(w) != k:
                raise ValueError(f"{len(w)} weights given for K = {k}")
            return w.expand_as(probs).clone()
        if self.weights == "scores":
            return probs / probs.sum(1, keepdim=True)
        return torch.full_like(probs, 1.0 / k if self.weights == "uniform" else 1.0)


def has_class_head(net: IdentityNetwork) -> bool:
    """Whether Psi has its own classes (FaceNet's VGGFace2 head) rather than needing a codebook."""
    return type(net).class_logits is not IdentityNetwork.class_logits
