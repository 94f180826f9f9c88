"""The Gradio app end to end: app.py served on 127.0.0.1 (offline default pipeline), driven with gradio_client."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from _app_server import serve_app  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples" / "obama.jpg"
OPTIONS = (0, 3, 1.0, 10, True, True, True)  # seed, K, epsilon, k, IFA, VAA, GSA
MAX_PIXELS = 2_000_000
CACHE_SECONDS = 4


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app (short temp-file lifetime and a small pixel limit so both are testable) and its work folder."""
    workdir = tmp_path_factory.mktemp("app")
    with serve_app(workdir, ANON_APP_MAX_PIXELS=str(MAX_PIXELS), ANON_APP_CACHE_SECONDS=str(CACHE_SECONDS)) as app:
        yield app.url, workdir


@pytest.fixture(scope="module")
def client(served):
    return gradio_client.Client(served[0], verbose=False, download_files=str(served[1] / "downloads"))


def _images(gallery) -> list[Image.Image]:
    """The images of a gallery output (gradio_client gives dicts with a local path per item)."""
    return [Image.open(item["image"] if isinstance(item["image"], str) else item["image"]["path"]) for item in gallery]


def _inline_images(html: str) -> list[Image.Image]:
    """The images an inline-HTML output carries as data URLs (the views of the visitor's original)."""
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)]


def test_api_names(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/anonymize", "/explain", "/delegates", "/compare"} <= names


def test_anonymize_example_keeps_size_and_changes_the_face(client):
    result, pair, boxed, status, figures = client.predict(gradio_client.handle_file(str(EXAMPLE)), *OPTIONS,
                                                          api_name="/anonymize")
    original = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    anonymized = np.asarray(Image.open(result).convert("RGB"))
    assert anonymized.shape == original.shape
    diff = np.abs(anonymized.astype(int) - original.astype(int)).max(axis=2)
    assert (diff > 30).mean() > 0.01  # the face changed
    assert (diff > 30).mean() < 0.5  # the rest of the photo did not
    after, before = _inline_images(pair)  # the slider draws "after" first, "before" over it
    assert before.size == after.size == Image.open(EXAMPLE).size  # smaller than the preview limit: not downscaled
    assert np.abs(np.asarray(before, int) - original).mean() < 3  # JPEG of the original
    assert Image.open(boxed).size == Image.open(EXAMPLE).size
    treatment = re.match(r"\*\*1 face (anonymized|obscured)\*\*", status)
    assert treatment, status  # the summary says what the face got
    assert ("\n- Face 1 was obscured: " in status) == (treatment.group(1) == "obscured")  # and why, when it was not
    assert not re.search(r"\d\.\d", status), status  # in words: the figures are one click away
    limits = re.findall(r"needs at least (\d\.\d\d) = the recognizer's same-person threshold (\d\.\d\d) \+ a safety "
                        r"margin (\d\.\d\d)", figures)
    assert len(limits) == 2 and all(float(t) + float(m) == pytest.approx(float(total)) for total, t, m in limits)


def test_explain_and_delegates_return_images(client):
    photo, options = gradio_client.handle_file(str(EXAMPLE)), (1, *OPTIONS[1:])  # seed 1: a fresh pipeline run
    cams, structure, scores, face_note = client.predict(photo, 1, *options, api_name="/explain")
    assert "where the recognizer looked (H)" in cams and "after the distraction (Ĥ)" in cams and "colour scale" in cams
    assert "identity it finds most alike (<b>H</b>, Grad-CAM of look-alike <b>c_i</b>" in cams  # words, then symbols
    cams, structure = _inline_images(cams), _inline_images(structure)  # overlays on the original face: inline
    assert len(cams) == 2 * OPTIONS[1] + 1  # the colour scale, then H and H-hat per top-K class
    assert cams[0].size == (256, 14) and len(structure) >= 4
    assert all(im.size == (256, 256) for im in cams[1:] + structure)
    assert "| score after (Â) |" in scores and face_note.startswith("**Face 1 was ")
    appearance, geometry, note, mixture = client.predict(photo, 1, *options, api_name="/delegates")  # reuses the session
    assert appearance and geometry and all(im.size == (256, 256) for im in _images(appearance + geometry + mixture))
    for gallery in (appearance, geometry):
        probs = [float(re.search(r"P = ([0-9.]+)", item["caption"]).group(1)) for item in gallery]
        assert sum(probs) == pytest.approx(1.0, abs=0.01)  # Eq. 6 over the candidate set M_q
    assert sum("chosen" in item["caption"] for item in geometry) == 1
    # Z_a is a mix of bank faces: the mixed face first, then each source with its weight, as framed in the candidates
    assert mixture[0]["caption"].startswith(f"the blend the new face takes its look from: {len(mixture) - 1} bank face")
    sources = [re.match(r"source: bank #(\d+) .* weight ([0-9.]+)$", item["caption"]) for item in mixture[1:]]
    assert all(sources) and sum(float(m.group(2)) for m in sources) == pytest.approx(1.0, abs=0.01)
    mixed_in = [re.match(r"bank #(\d+) .*✔ mixed in", item["caption"]) for item in appearance]
    assert sorted(m.group(1) for m in mixed_in if m) == sorted(m.group(1) for m in sources)
    weights = ", ".join(m.group(2) for m in sources)
    assert (f"(weights {weights}), so no single real person is pasted in" in note if len(sources) > 1
            else "single bank face" in note)


def test_an_obscured_face_is_never_shown_as_anonymized(client, served):
    """A face too small for step 2 is obscured: the summary, Explain and Delegates say so and why."""
    face = Image.open(EXAMPLE).convert("RGB")
    canvas = Image.new("RGB", (400, 300), (120, 130, 140))
    canvas.paste(face.resize((face.width // 10, face.height // 10), Image.LANCZOS), (150, 100))  # ~12 px wide
    tiny = served[1] / "tiny.png"
    canvas.save(tiny)
    photo, options = gradio_client.handle_file(str(tiny)), (2, *OPTIONS[1:])
    result, _, _, status, figures = client.predict(photo, *options, api_name="/anonymize")
    assert status == "**1 face obscured**\n- Face 1 was obscured: it is too small to be replaced by a new face.", status
    assert re.search(r"\*\*Face 1\*\* \(obscured\): no new face was tried, so no distances \(too small for step 2 "
                     r"\(\d+ px < 16 px\)\)", figures), figures  # the technical note, one click away
    cams, structure, scores, note = client.predict(photo, 1, *options, api_name="/explain")
    assert note.startswith("**Face 1 was obscured: it is too small to be replaced") and "did not run" in note
    assert cams == "" and scores == ""  # no empty heatmap gallery
    appearance, geometry, note, mixture = client.predict(photo, 1, *options, api_name="/delegates")
    assert note.startswith("**Face 1 was obscured: ") and not (appearance or geometry or mixture)


def test_photo_without_face_and_too_large_photo(client, served):
    blank = served[1] / "blank.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))).convert("RGB").save(blank)
    result, _, _, status, _ = client.predict(gradio_client.handle_file(str(blank)), *OPTIONS, api_name="/anonymize")
    assert "No face found" in status
    assert np.array_equal(np.asarray(Image.open(result).convert("RGB")), np.asarray(Image.open(blank).convert("RGB")))
    big = served[1] / "big.png"
    Image.new("RGB", (1600, 1600), (90, 120, 150)).save(big)
    with pytest.raises(Exception, match="too large"):
        client.predict(gradio_client.handle_file(str(big)), *OPTIONS, api_name="/anonymize")


def test_uploads_and_results_do_not_stay_on_disk(client, served):
    visitor = served[1] / "visitor.png"
    Image.open(EXAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(visitor)
    client.predict(gradio_client.handle_file(str(visitor)), *OPTIONS, api_name="/anonymize")
    examples = {p.name for p in EXAMPLE.parent.glob("*.jpg")}  # public photos gradio keeps for the Examples row
    cache = served[1] / "gradio"

    def kept() -> list[Path]:
        return [p for p in cache.rglob("*") if p.is_file() and p.name not in examples]

    assert not [p for p in kept() if p.name == "visitor.png"], "the upload outlived its response"
    assert kept(), "the shown results should be in gradio's cache for a while"
    uploaded = next(cache.glob("anon_model_app-*")) / "gone" / "visitor.png"  # what a browser showing the photo re-sends
    deadline = time.monotonic() + 3 * CACHE_SECONDS + 10
    while kept() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not kept(), f"still on disk: {kept()}"
    # a new visitor (no in-memory result) re-sending a deleted upload is told to upload it again
    gone = {"path": str(uploaded), "meta": {"_type": "gradio.FileData"}}
    request = urllib.request.Request(served[0] + "gradio_api/call/anonymize", method="POST",
                                     data=json.dumps({"data": [gone, *OPTIONS]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{served[0]}gradio_api/call/anonymize/{event}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: error" in stream and "upload the photo again" in stream, stream


def test_trained_pipeline_and_bank_are_taken_from_anon_model_id_and_anon_bank(monkeypatch):
    import app
    from anon_model.pipeline import AnonPipeline

    asked = []
    def from_pretrained(cls, source, **kwargs):
        asked.append((source, kwargs.get("bank")))
        return cls

    monkeypatch.setattr(AnonPipeline, "from_pretrained", classmethod(from_pretrained))
    for value in ("someone/trained-anon-model", ""):
        monkeypatch.setenv("ANON_MODEL_ID", value)
        monkeypatch.setenv("ANON_BANK", value and "someone/bank")
        app.pipeline.cache_clear()
        assert app.pipeline() is AnonPipeline
    app.pipeline.cache_clear()
    assert asked == [("someone/trained-anon-model", "someone/bank"), (None, None)]


@pytest.fixture(scope="module")
def walking_clip(served) -> Path:
    """tests/test_video.py's clip: a stranger's face walking across 6 frames of 320x240 at 10 fps, with audio."""
    pytest.importorskip("insightface")
    from test_video import FPS, FRAMES, frame_with, group_face, walk_at

    from anon_model.evaluation.bench_video import write_clip

    face = group_face((440, 232, 595, 430))
    return write_clip(served[1] / "walk.mp4", [frame_with((face, *walk_at(i))) for i in range(FRAMES)], fps=FPS)


def test_video_tab_anonymizes_a_clip_and_keeps_nothing(client, served, walking_clip):
    """Same frame count, the face changed in every frame, a per-person summary; the upload is gone once processed
    and the served result once gradio's cache time has passed."""
    from test_video import FPS, FRAMES, changed, frames_of, walk_at

    assert "/anonymize_video" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    result, summary = client.predict(gradio_client.handle_file(str(walking_clip)), *OPTIONS,
                                     api_name="/anonymize_video")
    before, after = frames_of(walking_clip), frames_of(Path(result))
    assert len(after) == len(before) == FRAMES
    assert all(changed(b, a, *walk_at(i)) > 8 for i, (b, a) in enumerate(zip(before, after))), "a face was left as is"
    assert summary.startswith(f"{FRAMES} frames, 320×240 at {FPS} fps; audio kept. **1 person tracked:**"), summary
    person = re.search(rf"\*\*Person 1\*\*, in frames 1–{FRAMES} \({FRAMES} frames\): ([a-z0-9 ,]+)\.", summary)
    assert person and sum(int(n) for n in re.findall(r"(?:anonymized|obscured) in (\d+)", person.group(1))) == FRAMES
    assert ("Why obscured: in " in summary) == ("obscured in" in person.group(1))  # and why, when it was
    cache = served[1] / "gradio"
    assert not list(cache.rglob(walking_clip.name)), "the uploaded clip outlived its response"
    assert list(cache.rglob("anonymized.mp4")), "the result should be served from gradio's cache for a while"
    deadline = time.monotonic() + 3 * CACHE_SECONDS + 10
    while list(cache.rglob("*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(cache.rglob("*.mp4")), "the anonymized clip outlived gradio's cache time"


def test_video_tab_refuses_a_clip_over_the_stated_limit(client, served):
    """The page states the limit; an 11-second clip is refused with it, and its upload deleted."""
    from anon_model.evaluation.bench_video import write_clip
    from anon_model.ui.video_tab import LIMITS

    with urllib.request.urlopen(served[0] + "config", timeout=30) as response:
        page = json.dumps(json.load(response), ensure_ascii=False)
    assert LIMITS in page and "No webcam mode" in page  # the page states the limit
    long = write_clip(served[1] / "long.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 11, fps=1, audio=False)
    refusal = rf"This clip is 11\.0 seconds long, longer than the 10 seconds .*{re.escape(LIMITS)}"
    with pytest.raises(Exception, match=refusal):
        client.predict(gradio_client.handle_file(str(long)), *OPTIONS, api_name="/anonymize_video")
    assert not list((served[1] / "gradio").rglob("long.mp4")), "a refused clip stayed on disk"
    # a browser still showing a processed clip re-sends its deleted upload: the visitor is told to upload it again
    gone = {"path": str(next((served[1] / "gradio").glob("anon_model_app-*")) / "gone" / "clip.mp4"),
            "meta": {"_type": "gradio.FileData"}}
    stream = _raw_call(served[0], "anonymize_video", [gone, *OPTIONS])
    assert "event: error" in stream and "please upload the clip again" in stream, stream


def test_a_visitors_mistake_is_one_log_line_without_a_traceback(client, served):
    """The visitor reads the message; the server log gets one line for it, and no traceback (in this whole run, where
    earlier tests sent too large, deleted and refused uploads and clips too)."""
    with pytest.raises(Exception, match="Upload a photo first"):
        client.predict(None, *OPTIONS, api_name="/anonymize")
    log = (served[1] / "app.log").read_text()
    assert log.count("visitor told: Upload a photo first (or pick an example).") == 1
    assert "Traceback" not in log, log[-3000:]


def _raw_call(url: str, endpoint: str, data: list) -> str:
    """The event stream of one call to ``endpoint`` over plain HTTP, with ``data`` sent as is (gradio_client would
    upload a file path it is given, not send it)."""
    request = urllib.request.Request(f"{url}gradio_api/call/{endpoint}", method="POST",
                                     data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event}", timeout=60) as response:
        return response.read().decode()


def test_keep_these_people_leaves_the_reference_person_and_says_why(client, tmp_path):
    """/keep remembers the people of reference photos for the session's next /anonymize calls (whose inputs stay as
    they were for older scripts); the kept face is returned as it was, the summary says why."""
    reference = gradio_client.handle_file(str(EXAMPLE.with_name("obama2.jpg")))
    note = client.predict([reference], api_name="/keep")
    assert "Keeping 1 person" in note and "obama2.jpg" in note
    result, _, _, status, _ = client.predict(gradio_client.handle_file(str(EXAMPLE)), *OPTIONS, api_name="/anonymize")
    assert "Face 1 was kept as it was" in status and "obama2.jpg" in status
    assert np.array_equal(np.asarray(Image.open(result).convert("RGB")),
                          np.asarray(Image.open(EXAMPLE).convert("RGB")))
    assert client.predict(None, api_name="/keep") == ""  # cleared: the next run anonymizes everyone again
    _, _, _, status, _ = client.predict(gradio_client.handle_file(str(EXAMPLE)), *OPTIONS, api_name="/anonymize")
    assert "kept" not in status.splitlines()[0]
    wall = tmp_path / "wall.png"
    Image.new("RGB", (120, 120), (90, 90, 90)).save(wall)
    with pytest.raises(Exception, match=r"wall\.png.*no face"):
        client.predict([gradio_client.handle_file(str(wall))], api_name="/keep")


def test_an_image_returned_again_is_never_rewritten_under_a_browser_fetching_it(monkeypatch, tmp_path):
    """gradio caches an output image under a hash of its bytes and rewrote that file in place when the same image came
    back (a browser still fetching it got a file of the wrong length); now a file already there is never opened for
    writing again, and a new image is written whole under a temporary name."""
    import app
    from gradio import processing_utils

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)  # restored after
    app.whole_cached_images()
    rewritten, write_bytes, open_file = [], Path.write_bytes, open

    def watched_write(path, data):
        rewritten.append(path.exists())
        return write_bytes(path, data)

    def watched_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and ("w" in mode or "a" in mode):
            rewritten.append(Path(file).exists())
        return open_file(file, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", watched_write)
    monkeypatch.setattr("builtins.open", watched_open)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8))
    first = processing_utils.save_img_array_to_cache(np.asarray(image), str(tmp_path), format="png")
    again = processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
    other = processing_utils.save_pil_to_cache(Image.new("RGB", (8, 8)), str(tmp_path), format="png")
    assert again == first != other and not any(rewritten)
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(image)) and Image.open(other).size == (8, 8)
    assert not list(tmp_path.rglob("*.part"))
