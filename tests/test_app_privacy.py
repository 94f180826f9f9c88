"""The app keeps its privacy promise under load: no original on disk, identical and bad uploads, a full queue.

app.py served on 127.0.0.1 (offline default pipeline), driven with gradio_client; its temp folder is scanned for
any file whose decoded pixels equal the visitor's photo.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from _app_server import serve_app  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples" / "obama.jpg"
OPTIONS = (0, 3, 1.0, 10, True, True, True)  # seed, K, epsilon, k, IFA, VAA, GSA
REFUSED = "This upload cannot be used"


@pytest.fixture(scope="module")
def visitor(tmp_path_factory) -> Path:
    """A visitor's photo: not a bundled example (the app treats it as private), saved losslessly."""
    path = tmp_path_factory.mktemp("visitor") / "visitor.png"
    Image.open(EXAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("app")
    with serve_app(workdir) as app:
        yield app, workdir


def _client(served, name: str = "downloads"):
    return gradio_client.Client(served[0].url, verbose=False, download_files=str(served[1] / name))


def _anonymize(client, photo: Path, seed: int = 0) -> str:
    """The status text of one /anonymize call."""
    return client.predict(gradio_client.handle_file(str(photo)), seed, *OPTIONS[1:], api_name="/anonymize")[3]


def copies_of(photo: Path, folder: Path) -> list[Path]:
    """Files under ``folder`` whose decoded pixels equal ``photo``'s."""
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    hits = []
    for path in (Path(root, name) for root, _, names in os.walk(folder) for name in names):  # walk skips vanished folders
        try:
            with Image.open(path) as image:
                if image.size[::-1] == pixels.shape[:2] and np.array_equal(np.asarray(image.convert("RGB")), pixels):
                    hits.append(path)
        except (OSError, ValueError, SyntaxError):  # not an image, or removed while being read
            continue
    return hits


def test_no_original_on_disk_during_or_after_a_response(served, visitor):
    """Besides the upload itself (until it is read), no copy of the photo appears while a request runs, or after."""
    cache, seen, done = served[1] / "gradio", set(), threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(copies_of(visitor, cache))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        status = _anonymize(_client(served), visitor)
    finally:
        done.set()
        watcher.join()
    assert re.match(r"\*\*1 face (anonymized|obscured)\*\*", status), status
    # the upload itself: first gradio's in-flight NamedTemporaryFile ("tmp…", in the app's temp folder), then renamed
    # to the photo's name in its own folder; the check below that nothing outlives the response covers both
    upload = [p for p in seen if p.name == visitor.name or (p.name.startswith("tmp") and p.parent.parent == cache)]
    assert set(upload) == seen, f"copies of the original besides the upload: {seen - set(upload)}"
    assert not copies_of(visitor, cache), "a copy of the original outlived the response"
    assert [p for p in cache.rglob("*") if p.is_file()], "the app's shown results should be in gradio's cache"


def test_identical_concurrent_uploads_both_succeed(served, visitor):
    clients, statuses = [_client(served, f"same{i}") for i in range(2)], {}

    def visit(i: int) -> None:
        try:
            statuses[i] = _anonymize(clients[i], visitor, seed=i + 1)
        except Exception as err:  # noqa: BLE001 - the message is the finding
            statuses[i] = f"failed: {err}"

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(re.match(r"\*\*1 face (anonymized|obscured)\*\*", s) for s in statuses.values()), statuses
    assert len(statuses) == 2


def test_bad_uploads_get_a_clear_message(served, visitor, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is a text file, not a photo\n" * 20)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(visitor.read_bytes()[: visitor.stat().st_size // 2])
    client = _client(served)
    for bad, reason in ((not_image, "not an image"), (truncated, "truncated")):
        with pytest.raises(Exception, match=f"{REFUSED}: [^.]*{reason}") as caught:
            _anonymize(client, bad)
        assert "show_error" not in str(caught.value)  # not gradio's generic error
    assert not list((served[1] / "gradio").rglob("truncated.png")), "a refused upload stayed on disk"


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc to read the server's memory")
def test_huge_png_is_refused_before_decoding(served, tmp_path):
    """A 0.5 MB 13000x13000 PNG (169 MP; 0.5 GB of pixels) is refused from its header, without decoding it."""
    bomb = tmp_path / "bomb.png"
    Image.new("L", (13000, 13000)).save(bomb, optimize=True)
    pid, client = served[0].process.pid, _client(served)
    before = _peak_rss_mb(pid)
    with pytest.raises(Exception, match=f"{REFUSED}: image too large"):
        _anonymize(client, bomb)
    assert _peak_rss_mb(pid) - before < 150  # decoding it would add 169 MB (grey) to 2 GB (RGB and copies)


def test_twenty_concurrent_visitors_all_get_a_result(served, tmp_path):
    small = tmp_path / "small.png"
    Image.open(EXAMPLE).resize((160, 200)).save(small)
    results = []

    def visit(i: int) -> None:
        try:
            results.append(_anonymize(_client(served, f"visitor{i}"), small, seed=i))
        except Exception as err:  # noqa: BLE001 - the message is the finding
            results.append(f"failed: {err}")

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.startswith("**1 face ") for r in results) == 20, [r for r in results if not r.startswith("**1 face ")]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_nothing_is_left_after_the_app_stops(tmp_path, visitor, stop):
    with serve_app(tmp_path, stop=stop) as app:
        client = gradio_client.Client(app.url, verbose=False, download_files=str(tmp_path / "downloads"))
        assert _anonymize(client, visitor).startswith("**1 face ")
        assert [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]  # results shown, examples listed
    left = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]
    assert not left, f"{len(left)} files left after {stop.name}, {len(copies_of(visitor, tmp_path / 'gradio'))} originals"
