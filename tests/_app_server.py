"""Start ``python app.py`` on 127.0.0.1 and a free port for a test, and always stop it (used by tests/test_app*.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served(NamedTuple):
    """A running app: its URL and its process (for memory figures)."""

    url: str
    process: subprocess.Popen


def _interruptible() -> None:
    """In the app's process, before it starts: SIGINT as in a foreground process. A test run started in the background
    by a non-interactive shell (`... &`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def serve_app(workdir: Path, *, timeout: float = 240.0, script: Path = ROOT / "app.py",
              stop: signal.Signals = signal.SIGTERM, **env: str):
    """Run app.py as a subprocess (offline, temp dirs under ``workdir``) and yield it; stop it with ``stop`` on exit."""
    port = free_port()
    log = (workdir / "app.log").open("w")
    environ = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
               "GRADIO_TEMP_DIR": str(workdir / "gradio"), "ANON_STUDY_CSV": str(workdir / "study.csv"),
               "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
    if "ANON_MODEL_ID" not in env:
        environ.pop("ANON_MODEL_ID", None)  # the offline default unless a test names a pipeline
    proc = subprocess.Popen([sys.executable, str(script)], cwd=workdir, env=environ, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=_interruptible)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n{(workdir / 'app.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError(f"app.py did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield Served(url, proc)
    finally:
        proc.send_signal(stop)
        try:
            proc.wait(timeout=60)  # a loaded CI machine can take a while to stop gradio's workers
        except subprocess.TimeoutExpired:
            warnings.warn(f"app.py did not stop within 60 s of {stop.name}: killed (its temp files may remain)")
            proc.kill()
            proc.wait()
        log.close()
