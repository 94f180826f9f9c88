"""Speed checks that hold on a shared, busy machine: CPU time of one thread."""
from __future__ import annotations

from contextlib import contextmanager

import cv2
import torch


@contextmanager
def one_thread():
    """Run torch and OpenCV on one thread, so CPU seconds measure work, not spin-waiting on busy cores."""
    torch_threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv_threads)
