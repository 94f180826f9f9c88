"""MTCNN's three networks in torch, with facenet-pytorch's weights, and their export to the ONNX files the detector
runs (``perception/mtcnn.py``): onnxruntime needs no torch, so a run that only detects faces (``--replace-with
blur``) starts without importing it.

The files ship in ``anon_model/assets/mtcnn``; to rebuild them from the installed facenet-pytorch:

    python -m anon_model.perception.mtcnn_nets anon_model/assets/mtcnn

``tests/test_startup.py`` checks that the shipped files still compute what these networks compute.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from anon_model.perception.weights import package_file

__all__ = ["NETS", "load_net", "export_onnx"]

#: The stages, in order, and the file names of their facenet-pytorch weights and of their ONNX exports.
NETS = ("pnet", "rnet", "onet")


class _Net(nn.Module):
    """One MTCNN stage: a body of named layers (facenet-pytorch's names, so its state dicts load as they are), then
    heads (face score, box regression[, 5 landmarks, loaded but not run]); returns (regression, face probability)."""

    def __init__(self, body: list[tuple[str, nn.Module]], heads: list[tuple[str, nn.Module]], *,
                 dense: list[tuple[str, nn.Module]] = ()) -> None:
        super().__init__()
        self.body, self.dense, self.heads = [n for n, _ in body], [n for n, _ in dense], [n for n, _ in heads]
        for name, module in [*body, *dense, *heads]:
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for name in self.body:
            x = getattr(self, name)(x)
        if self.dense:  # R-Net and O-Net flatten in (W, H, C) order, as the original Caffe weights expect
            x = x.permute(0, 3, 2, 1).contiguous()
            x = x.view(x.shape[0], -1)
            for name in self.dense:
                x = getattr(self, name)(x)
        score, reg = (getattr(self, name)(x) for name in self.heads[:2])
        return reg, torch.softmax(score, dim=1)


def _conv(i: int, c_in: int, c_out: int, k: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{i}", nn.Conv2d(c_in, c_out, kernel_size=k)), (f"prelu{i}", nn.PReLU(c_out))]


def _pool(i: int, k: int) -> list[tuple[str, nn.Module]]:
    return [(f"pool{i}", nn.MaxPool2d(k, 2, ceil_mode=True))]


def _pnet() -> _Net:
    return _Net([*_conv(1, 3, 10, 3), *_pool(1, 2), *_conv(2, 10, 16, 3), *_conv(3, 16, 32, 3)],
                [("conv4_1", nn.Conv2d(32, 2, 1)), ("conv4_2", nn.Conv2d(32, 4, 1))])


def _rnet() -> _Net:
    return _Net([*_conv(1, 3, 28, 3), *_pool(1, 3), *_conv(2, 28, 48, 3), *_pool(2, 3), *_conv(3, 48, 64, 2)],
                [("dense5_1", nn.Linear(128, 2)), ("dense5_2", nn.Linear(128, 4))],
                dense=[("dense4", nn.Linear(576, 128)), ("prelu4", nn.PReLU(128))])


def _onet() -> _Net:
    return _Net([*_conv(1, 3, 32, 3), *_pool(1, 3), *_conv(2, 32, 64, 3), *_pool(2, 3), *_conv(3, 64, 64, 3),
                 *_pool(3, 2), *_conv(4, 64, 128, 2)],
                [("dense6_1", nn.Linear(256, 2)), ("dense6_2", nn.Linear(256, 4)), ("dense6_3", nn.Linear(256, 10))],
                dense=[("dense5", nn.Linear(1152, 256)), ("prelu5", nn.PReLU(256))])


def load_net(name: str) -> _Net:
    """One stage ("pnet", "rnet" or "onet") with facenet-pytorch's ``data/<name>.pt`` weights, in eval mode."""
    net = {"pnet": _pnet, "rnet": _rnet, "onet": _onet}[name]()
    path = package_file("facenet_pytorch", f"data/{name}.pt", "facenet-pytorch")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


#: Each stage's input: P-Net takes a whole pyramid level (any size), R-Net 24x24 crops, O-Net 48x48 crops.
_INPUT = {"pnet": (1, 3, 32, 40), "rnet": (4, 3, 24, 24), "onet": (4, 3, 48, 48)}
_DYNAMIC = {"pnet": {0: "batch", 2: "height", 3: "width"}, "rnet": {0: "batch"}, "onet": {0: "batch"}}


def export_onnx(folder: str | Path) -> list[Path]:
    """Write ``<stage>.onnx`` for the three stages into ``folder`` (inputs "input"; outputs "regression", "probability")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NETS:
        path = folder / f"{name}.onnx"
        dynamic = {"input": _DYNAMIC[name], "regression": {0: "batch"}, "probability": {0: "batch"}}
        if name == "pnet":
            dynamic |= {"regression": _DYNAMIC[name], "probability": _DYNAMIC[name]}
        with torch.no_grad():
            torch.onnx.export(load_net(name), (torch.zeros(_INPUT[name]),), str(path), input_names=["input"],
                              output_names=["regression", "probability"], dynamic_axes=dynamic, dynamo=False)
        written.append(path)
    return written


if __name__ == "__main__":
    for written in export_onnx(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1] / "assets" / "mtcnn"):
        print(written)
