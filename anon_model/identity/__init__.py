"""Identity networks Psi (paper §3.1): FaceNet (paper's choice, online) and dlib's ResNet ported to torch (offline).

    net = load_identity_network("dlib" | "facenet" | local_path, device="cpu")
    net.embed(crops, landmarks=None)  # (B,3,256,256) in [0,1] (+ (B,68,2) crop landmarks) -> (B,D), differentiable
    net.distance(a, b)                # dlib: L2; facenet: L2 of L2-normalized embeddings
    net.threshold, net.name
    IdentityCodebook(prototypes)      # identity prototypes as classes for a Psi without a class head (dlib)
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from anon_model.identity.base import IdentityNetwork
from anon_model.identity.codebook import IdentityCodebook

__all__ = ["IdentityCodebook", "IdentityNetwork", "load_identity_network"]


def load_identity_network(source: str | os.PathLike = "dlib", *, device: str | torch.device = "cpu") -> IdentityNetwork:
    """Load Psi by name ("dlib", "facenet") or from a local path (dlib .dat, FaceNet .pt, or a saved DlibResNet folder)."""
    src = str(source)
    if src == "dlib" or src.endswith(".dat"):
        from anon_model.identity.dlib_resnet import DlibResNet

        net = DlibResNet.from_dlib_file(None if src == "dlib" else src)
    elif src in ("facenet", "vggface2") or src.endswith((".pt", ".pth")):
        from anon_model.identity.facenet import FaceNetIdentity

        net = FaceNetIdentity.load(None if src in ("facenet", "vggface2") else src)
    elif (Path(src) / "config.json").is_file():
        from anon_model.identity.dlib_resnet import DlibResNet

        net = DlibResNet.from_pretrained(src, strict=True)
    else:
        raise ValueError(f"unknown identity network {src!r}: use 'dlib', 'facenet', a .dat/.pt file or a saved model folder")
    return net.to(device).eval()
