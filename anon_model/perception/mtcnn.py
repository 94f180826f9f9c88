"""MTCNN (Zhang et al. 2016) with facenet-pytorch's weights, without importing facenet-pytorch.

facenet-pytorch's package imports torchvision (its detection code needs torchvision's NMS), and torchvision's own
import loads all its models and torch._dynamo: about 1.3 s of CPU, more than the rest of the pipeline costs to
start. Here the three networks read facenet-pytorch's ``data/{pnet,rnet,onet}.pt`` and ``MTCNN.detect`` follows
``facenet_pytorch.models.utils.detect_face`` step for step for one image, so its boxes and scores are the same
numbers (``tests/test_startup.py`` compares them with facenet-pytorch's own MTCNN).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.functional import interpolate

from anon_model.perception.nms import nms_one_image
from anon_model.perception.pooling import MaxPool2d
from anon_model.perception.weights import package_file

#: Score thresholds of the three stages and the image pyramid's scale step (facenet-pytorch's defaults).
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
#: facenet-pytorch runs the refinement networks on at most this many crops at once (kept: it can change the sums).
_CHUNK = 512


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
    return [(f"pool{i}", MaxPool2d(k, 2, ceil_mode=True))]


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


class MTCNN(nn.Module):
    """Faces of one RGB uint8 image: ``detect(image)`` -> boxes (N,4: x0, y0, x1, y1) and probabilities (N,),
    largest box first, as facenet-pytorch's ``MTCNN(keep_all=True).detect`` gives them."""

    def __init__(self, *, min_size: int = 20, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.min_size = min_size
        self.pnet, self.rnet, self.onet = _pnet(), _rnet(), _onet()
        for name in ("pnet", "rnet", "onet"):
            path = package_file("facenet_pytorch", f"data/{name}.pt", "facenet-pytorch")
            getattr(self, name).load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        self.to(device).eval()

    @property
    def device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes and probabilities in `image` (H,W,3 RGB uint8): the three cascaded stages."""
        # a contiguous copy as facenet-pytorch makes, seen as (1,3,H,W): same layout, so the same sums
        img = torch.tensor(image, device=self.device)[None].permute(0, 3, 1, 2).float()
        boxes = self._propose(img)
        if len(boxes):
            boxes = self._refine(img, boxes)
        if len(boxes):
            boxes = self._output(img, boxes)
        boxes = boxes.cpu().numpy()
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0)
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
        return boxes[order, :4].astype(np.float64), boxes[order, 4].astype(np.float64)

    def _propose(self, img: torch.Tensor) -> torch.Tensor:
        """P-Net over the image pyramid: candidate squares (M,5: box, score), regressed."""
        h, w = img.shape[2:4]
        m = 12.0 / self.min_size
        side, scale, found = min(h, w) * m, m, []
        while side >= 12:
            data = (interpolate(img, size=(int(h * scale + 1), int(w * scale + 1)), mode="area") - 127.5) * 0.0078125
            reg, probs = self.pnet(data)
            boxes = _grid_boxes(reg, probs[:, 1], scale, THRESHOLDS[0])
            found.append(boxes[nms_one_image(boxes[:, :4], boxes[:, 4], 0.5)])
            scale, side = scale * FACTOR, side * FACTOR
        if not found:  # smaller than the smallest face
            return img.new_zeros((0, 5))
        boxes = torch.cat(found, dim=0)
        boxes = boxes[nms_one_image(boxes[:, :4], boxes[:, 4], 0.7)]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh,
                             boxes[:, 4]]).permute(1, 0)
        return _square(boxes)

    def _refine(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """R-Net on 24x24 crops of the candidates: the ones it scores as faces, regressed and squared."""
        reg, probs = _run(self.rnet, _crops(img, boxes, 24))
        score = probs[:, 1]
        keep = score > THRESHOLDS[1]
        boxes = torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1)
        reg = reg[keep]
        pick = nms_one_image(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _output(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """O-Net on 48x48 crops: the final boxes and scores, merged by "Min" suppression."""
        reg, probs = _run(self.onet, _crops(img, boxes, 48))
        score = probs[:, 1]
        keep = score > THRESHOLDS[2]
        boxes = _regress(torch.cat((boxes[keep, :4], score[keep].unsqueeze(1)), dim=1), reg[keep])
        return boxes[_nms_min(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7)]


def _grid_boxes(reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """P-Net's output cells scoring at least `threshold` as boxes in image pixels (M,9: box, score, regression)."""
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= threshold
    cells = mask.nonzero()
    reg = reg[:, mask].permute(1, 0)
    bb = cells[:, 1:].type(reg.dtype).flip(1)
    q1 = ((2 * bb + 1) / scale).floor()
    q2 = ((2 * bb + 12 - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, probs[mask].unsqueeze(1), reg], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply a stage's box regression (in box widths and heights) in place."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                                boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h]).permute(1, 0)
    return boxes


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre, in place."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.repeat(2, 1).permute(1, 0)
    return boxes


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """The boxes' pixels (clipped to the image, 1-based as in the original code), resized to size x size, scaled
    to about [-1, 1]."""
    h, w = img.shape[2:4]
    b = boxes.trunc().int().cpu().numpy()
    x0, y0 = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    x1, y1 = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    # img[0]...unsqueeze(0), as the original indexes it: the crops then come out in contiguous (not channels-last)
    # layout, and the networks' sums run in the same order
    crops = [interpolate(img[0, :, y0[k] - 1:y1[k], x0[k] - 1:x1[k]].unsqueeze(0), size=(size, size), mode="area")
             for k in range(len(b)) if y1[k] > y0[k] - 1 and x1[k] > x0[k] - 1]
    return (torch.cat(crops, dim=0) - 127.5) * 0.0078125


def _run(net: _Net, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`net` on `data` in chunks of ``_CHUNK`` crops, outputs concatenated."""
    out = [net(data[i:i + _CHUNK]) for i in range(0, len(data), _CHUNK)]
    return tuple(torch.cat(v, dim=0) for v in zip(*out))


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The original MTCNN's last suppression: overlap as intersection over the smaller box (pixel-inclusive areas)."""
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(keep, np.int64)
