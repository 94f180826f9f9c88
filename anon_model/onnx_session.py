"""onnxruntime sessions as this project runs them (MTCNN, CenterFace, FaceNet-CASIA's export): on the CPU, without
spin-waiting (on 2 cores spinning threads starve torch's and the other sessions': 7 % of the CLI's CPU time), quiet
when asked."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_session"]


def cpu_session(model: str | Path | bytes, *, threads: int | None = None, quiet: bool = False):
    """An ``onnxruntime.InferenceSession`` of ``model`` (a file, or a serialized model) on the CPU, with ``threads``
    intra-op threads (default: ``OMP_NUM_THREADS`` when set, as torch does; else onnxruntime's choice); ``quiet`` keeps
    its load-time warnings out of the log."""
    import onnxruntime

    setting = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()  # OpenMP allows "4,2" (nested levels)
    threads = threads or (int(setting) if setting.isdigit() else None)
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    if quiet:
        options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
