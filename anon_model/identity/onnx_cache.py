"""A torch network run by onnxruntime on the CPU, exported once and kept beside the downloaded weights.

FaceNet-CASIA (``tf_graph``) takes half of a run's time, and onnxruntime runs it 1.6-2x faster than torch on 2 cores
(docs/profile.md). ``torch.onnx.export`` takes about 2 s, so the exported file is kept in torch hub's checkpoint
folder, named after the source file it came from; a failed export or session only means torch keeps the work.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from anon_model.onnx_session import cpu_session

__all__ = ["OnnxRunner", "exported_file"]


def exported_file(source: Path, tag: str) -> Path:
    """Where the export of the network read from ``source`` is kept: named by ``tag``, the source's content (its size
    and first and last MiB) and the torch that exported it, so a changed source or torch exports anew, while every
    install of the same file (a new virtual environment, a fresh clone) shares one export instead of adding its own
    (94 MB each for FaceNet-CASIA; the key used to hold the source's path and time)."""
    size = source.stat().st_size
    with open(source, "rb") as fh:
        head = fh.read(_SAMPLE)
        fh.seek(max(size - _SAMPLE, 0))
        tail = fh.read()
    key = hashlib.sha256(f"{size}:{torch.__version__}:".encode() + head + tail)
    return Path(torch.hub.get_dir()) / "checkpoints" / f"{tag}-{key.hexdigest()[:12]}.onnx"


#: How much of each end of a source file ``exported_file`` reads for its key.
_SAMPLE = 1 << 20


class OnnxRunner:
    """``forward`` (one float32 input, one output; any batch size) as an onnxruntime session on the CPU, from the
    kept export at ``path``, exported there first (atomically) when missing."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, path: Path) -> None:
        if not path.is_file():
            _export(forward, example, path)
        self._session = cpu_session(path, threads=torch.get_num_threads())  # as many threads as torch is given

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """The network's output for ``inputs`` (on the CPU)."""
        out = self._session.run(None, {"input": np.ascontiguousarray(inputs.float().cpu().numpy())})[0]
        return torch.from_numpy(out)

    @classmethod
    def or_none(cls, forward: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor,
                path: Path) -> "OnnxRunner | None":
        """The runner, or None (with a warning saying why) when onnxruntime or the export is not available."""
        try:
            return cls(forward, example, path)
        except Exception as exc:  # any failure leaves the work to torch, which gives the same results
            warnings.warn(f"running {path.stem} with torch instead of onnxruntime ({type(exc).__name__}: {exc})",
                          stacklevel=2)
            return None


class _Forward(torch.nn.Module):
    """A callable as a module, for the exporter."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self._forward = forward

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._forward(inputs)


def _export(forward: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, path: Path) -> None:
    """``forward`` traced on ``example`` into an ONNX file at ``path`` (written beside it, then moved in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it freezes (shapes: not the batch)
            torch.onnx.export(_Forward(forward), (example,), partial, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
