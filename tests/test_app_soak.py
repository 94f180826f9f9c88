"""The app under a long day (issue 23, part 5): 100 visitors arriving over about two and a half minutes on 127.0.0.1,
each with a photo of their own. Every request is answered (or told to wait when the queue is full), the server's
memory (RSS, sampled every half second) stays under ``RSS_CEILING_MB``, and no visitor's original is on disk at any
moment besides gradio's own upload file while it is read. Slow: ``pytest -m slow tests/test_app_soak.py``."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from _app_server import serve_app  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"
VISITORS, ARRIVALS_S = 100, 150.0
#: The server's resident memory must stay under this (measured: see README, Limits).
RSS_CEILING_MB = 1600
OPTIONS = (3, 1.0, 10, True, True, True)  # K, epsilon, k, IFA, VAA, GSA
ANSWERED = re.compile(r"\*\*1 face (anonymized|obscured)\*\*")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc for the RSS")]


def _photos(folder: Path) -> dict[str, Path]:
    """One photo per visitor: a bundled photo at 200 px, mirrored or not, with the visitor's number in its corner
    pixels (so every original differs), keyed by the hash of its pixels."""
    sources = sorted(EXAMPLES.glob("*.jpg"))
    photos = {}
    for i in range(VISITORS):
        with Image.open(sources[i % len(sources)]) as im:
            small = im.convert("RGB").resize((round(im.width * 200 / im.height), 200), Image.LANCZOS)
        pixels = np.asarray(small if i % 2 else small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).copy()
        pixels[0, :4] = [i, i // 2, i // 3]
        path = folder / f"visitor{i:03d}.png"
        Image.fromarray(pixels).save(path)
        photos[_pixel_hash(pixels)] = path
    return photos


def _pixel_hash(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def _rss_mb(pid: int) -> float:
    """The process's resident memory now (VmRSS), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


class _Watch:
    """Samples the server's RSS and scans its temp folder for visitors' originals, until stopped."""

    def __init__(self, pid: int, cache: Path, originals: dict[str, Path]) -> None:
        self.pid, self.cache, self.originals = pid, cache, originals
        self.rss: list[float] = []
        self.copies: set[Path] = set()
        self._checked: set[tuple[Path, float]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> "_Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last >= 0.5:
                self.rss.append(_rss_mb(self.pid))
                last = time.monotonic()
            self.scan()

    def scan(self) -> list[Path]:
        """Files under the temp folder whose pixels are a visitor's original (each file version decoded once)."""
        found = []
        for path in (Path(root, name) for root, _, names in os.walk(self.cache) for name in names):
            try:
                key = (path, path.stat().st_mtime)
                if key in self._checked:
                    continue
                self._checked.add(key)
                with Image.open(path) as image:
                    if _pixel_hash(np.asarray(image.convert("RGB"))) in self.originals:
                        found.append(path)
            except (OSError, ValueError, SyntaxError):  # not an image, or removed while being read
                continue
        self.copies.update(found)
        return found


def test_a_hundred_visitors_over_minutes(tmp_path):
    originals = _photos(tmp_path)
    names = {p.name for p in originals.values()}
    arrivals = np.sort(np.random.default_rng(0).uniform(0, ARRIVALS_S, VISITORS))
    results: dict[int, str] = {}
    with serve_app(tmp_path) as app:
        cache = tmp_path / "gradio"

        def visit(i: int, photo: Path) -> None:
            time.sleep(arrivals[i])
            try:
                client = gradio_client.Client(app.url, verbose=False, download_files=str(tmp_path / f"d{i}"))
                results[i] = client.predict(gradio_client.handle_file(str(photo)), i, *OPTIONS,
                                            api_name="/anonymize")[3]
            except Exception as err:  # noqa: BLE001 - the message is the finding
                results[i] = f"failed: {err}"

        started = time.monotonic()
        with _Watch(app.process.pid, cache, originals) as watch:
            threads = [threading.Thread(target=visit, args=(i, p)) for i, p in enumerate(originals.values())]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        left = [p for p in watch.copies if p.exists()] + watch.scan()
        seconds = time.monotonic() - started
    told_to_wait = [r for r in results.values() if r.startswith("failed") and "queue" in r.lower()]
    answered = [r for r in results.values() if ANSWERED.match(r)]
    quarters = [watch.rss[min(len(watch.rss) - 1, q * len(watch.rss) // 4)] for q in range(5)]
    print(f"\nsoak: {len(answered)} answered, {len(told_to_wait)} told to wait, in {seconds:.0f} s; RSS "
          f"{min(watch.rss):.0f}-{max(watch.rss):.0f} MB, at each quarter of the run: "
          + ", ".join(f"{r:.0f}" for r in quarters))
    assert len(answered) + len(told_to_wait) == VISITORS, [r for r in results.values() if not ANSWERED.match(r)]
    assert max(watch.rss) < RSS_CEILING_MB
    # gradio's upload file (its in-flight temp file, then the photo's own name) is the only copy, and only until read
    uploads = {p for p in watch.copies if p.name in names or (p.name.startswith("tmp") and p.parent.parent == cache)}
    assert watch.copies == uploads, f"copies of originals besides the uploads: {watch.copies - uploads}"
    assert not left, f"originals still on disk after every response: {left}"
