"""The paper's Psi: FaceNet InceptionResnetV1 trained on VGGFace2 with its 8631-class head (facenet-pytorch).

Users with the internet get the weights through facenet-pytorch's own downloader
(``InceptionResnetV1(pretrained="vggface2", classify=True)``, MIT-licensed code; weights converted from
David Sandberg's facenet, trained on VGGFace2). Offline, pass the downloaded state dict
(``20180402-114759-vggface2.pt``) as a local path. A is block8's output (1792x3x3 at 160x160), the last
convolutional map; the head is average pool -> linear 1792->512 -> batch norm (the embedding before
L2 normalization), and the 8631 VGGFace2 identities are the classes of Grad-CAM.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from anon_model.downloads import require_download
from anon_model.errors import MissingWeightsError
from anon_model.identity.base import IdentityNetwork
from anon_model.perception.weights import hub_checkpoint

VGGFACE2_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
#: facenet-pytorch keeps its download in torch hub's checkpoint folder under this name.
VGGFACE2_FILE = VGGFACE2_URL.rsplit("/", 1)[1]
VGGFACE2_CLASSES = 8631
# FaceNet's input framing in the 256 crop: the mean MTCNN box of the bundled photos' frontal faces (roll < 15 deg)
# widened by a margin of 32 px at 160 (Sandberg's VGGFace2 preprocessing), as x0, y0, x1, y1; see docs/chip_window.py
FACENET_WINDOW = (43.9, 33.5, 218.3, 241.5)


class FaceNetIdentity(IdentityNetwork):
    """InceptionResnetV1 split at block8 for IFA; distance = L2 between L2-normalized embeddings."""

    name = "facenet"

    def __init__(self, model: torch.nn.Module, *, threshold: float = 1.1, input_size: int = 160,
                 window: tuple[float, float, float, float] = FACENET_WINDOW) -> None:
        """``threshold`` 1.1 is the usual operating point of these weights; it is not calibrated here (no weights offline)."""
        super().__init__()
        self.model, self.threshold, self.input_size, self.window = model.eval(), threshold, input_size, window

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **config) -> FaceNetIdentity:
        """The VGGFace2 weights: facenet-pytorch's download (``path=None``) or a local copy of its state dict."""
        from facenet_pytorch import InceptionResnetV1

        if path is None:
            if hub_checkpoint(VGGFACE2_FILE) is None:
                require_download("FaceNet's VGGFace2 weights", f"fetch {VGGFACE2_URL} and set identity to its path")
            try:
                model = InceptionResnetV1(pretrained="vggface2", classify=True)
            except OSError as err:  # URLError and friends: no internet
                raise MissingWeightsError(
                    f"FaceNet's VGGFace2 weights could not be downloaded ({err}); fetch {VGGFACE2_URL} and pass its path") from err
        else:
            model = InceptionResnetV1(classify=True, num_classes=VGGFACE2_CLASSES)
            model.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True), strict=True)
        return cls(model, **config)

    def input_matrices(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """The fixed window ``FACENET_WINDOW`` resized to 160x160 (FaceNet was trained on MTCNN boxes, not on
        landmark-aligned chips, so ``landmarks`` are not used)."""
        x0, y0, x1, y1 = self.window
        step = (self.input_size - 1)
        matrix = torch.tensor([[(x1 - x0) / step, 0.0, x0], [0.0, (y1 - y0) / step, y0]], dtype=crops.dtype, device=crops.device)
        return matrix.expand(crops.shape[0], 2, 3)

    def normalize_input(self, window: torch.Tensor) -> torch.Tensor:
        """facenet-pytorch's ``fixed_image_standardization``: (255 x - 127.5) / 128."""
        return (window * 255.0 - 127.5) / 128.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input -> block8's output A (B,1792,3,3), the last convolutional layer."""
        m = self.model
        for layer in (m.conv2d_1a, m.conv2d_2a, m.conv2d_2b, m.maxpool_3a, m.conv2d_3b, m.conv2d_4a, m.conv2d_4b,
                      m.repeat_1, m.mixed_6a, m.repeat_2, m.mixed_7a, m.repeat_3, m.block8):
            x = layer(x)
        return x

    def head(self, a: torch.Tensor) -> torch.Tensor:
        """A -> average pool -> linear -> batch norm: the 512-d embedding before normalization."""
        m = self.model
        return m.last_bn(m.last_linear(m.dropout(m.avgpool_1a(a)).flatten(1)))

    def class_logits(self, f: torch.Tensor) -> torch.Tensor:
        """Scores over the 8631 VGGFace2 identities (the paper's codebook)."""
        return self.model.logits(f)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """L2 distance between L2-normalized embeddings."""
        return torch.linalg.vector_norm(F.normalize(a, dim=-1) - F.normalize(b, dim=-1), dim=-1)
