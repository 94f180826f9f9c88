"""Real-browser runs of the app in headless Debian Chromium: a visitor uploads a photo, anonymizes it and sees the
result; a visitor keeps a person by a reference photo; a first-time visitor clicks every example and uploads a tiny,
a panoramic and a tall photo, and no layout breaks (element sizes measured; screenshots left in the test's folder)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from _app_server import serve_app

CHROMIUM = Path(os.environ.get("ANON_CHROMIUM", "/usr/bin/chromium"))
EXAMPLE = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples" / "biden.jpg"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(),
                       reason=f"{CHROMIUM} missing: install Debian's chromium (apt-get install -y chromium); CI (.ci/run) does"),
]


@contextlib.contextmanager
def _visitor_page(tmp_path: Path):
    """The app served from ``tmp_path`` in a headless browser page, with a visitor's photo (the mirrored biden.jpg,
    not a bundled example, so the app treats it as a private upload) uploaded and shown."""
    from PIL import Image

    visitor = tmp_path / "visitor.png"
    Image.open(EXAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(visitor)
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (pip install playwright)")
    with serve_app(tmp_path) as app, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app.url, wait_until="domcontentloaded")
            page.locator("#photo input[type=file]").set_input_files(str(visitor))
            page.locator("#photo img").first.wait_for(timeout=30_000)  # the upload is shown
            yield page
        finally:
            browser.close()


def test_upload_anonymize_and_see_the_result(tmp_path):
    """Also: the summary of what each face got is visible above the result, the upload is deleted from the server
    once read, and a second run on the still-shown photo works."""
    with _visitor_page(tmp_path) as page:
        page.locator("#run").click()
        status = page.locator("#status")
        summary = "/1 face (anonymized|obscured)/"  # what the face got, in the summary's first line
        page.wait_for_function(f"() => {summary}.test(document.querySelector('#status').innerText)",
                               timeout=180_000)
        assert status.locator("strong").first.is_visible()
        headline, *why = status.inner_text().splitlines()
        assert ("obscured" in headline) == ("Face 1 was obscured: " in " ".join(why)), why  # an obscured face says why
        above = status.bounding_box()["y"] < page.locator("#slider").bounding_box()["y"]
        assert above, "the summary should be next to the result, above the slider"
        slider_images = page.locator("#slider img")
        slider_images.first.wait_for(timeout=30_000)
        assert slider_images.count() >= 2  # before and after
        sizes = [slider_images.nth(i).evaluate("img => [img.complete, img.naturalWidth, img.src.slice(0, 5)]")
                 for i in range(2)]
        assert all(done and width > 0 and src == "data:" for done, width, src in sizes), sizes  # inline, no file
        page.locator("#slider input[type=range]").fill("20")  # drag the divide
        assert page.locator("#slider .anon-slider").evaluate("s => s.style.getPropertyValue('--pos')") == "20%"
        shot = tmp_path / "app_result.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert not list((tmp_path / "gradio").rglob("visitor.png")), "the upload outlived its response"
        first = status.inner_text()
        page.get_by_text("Settings").click()
        page.get_by_label("Borrow the look of bank faces").uncheck()  # VAA
        page.locator("#run").click()  # the browser re-sends the deleted upload; the visitor's result is reused
        page.wait_for_function(  # the new result's summary (VAA off keeps x's appearance), not an error
            f"t => {{ const now = document.querySelector('#status').innerText;"
            f" return now !== t && {summary}.test(now); }}", arg=first, timeout=120_000)


def test_a_visitor_keeps_the_person_of_a_reference_photo(tmp_path):
    """Keep who you choose: with another photo of the person as the reference, the face is kept as it was and the
    summary says so and why; the reference is not kept on the server either."""
    from PIL import Image

    reference = tmp_path / "reference.jpg"  # the visitor's photo is its mirror image: another photo of the person
    Image.open(EXAMPLE).save(reference)
    with _visitor_page(tmp_path) as page:
        page.locator("#keep-photos input[type=file]").set_input_files(str(reference))
        page.wait_for_function(  # the reference was read (and deleted): the app says whom it keeps
            "() => /Keeping 1 person.*reference\\.jpg/.test(document.querySelector('#keep-status').innerText)",
            timeout=60_000)
        page.locator("#run").click()
        page.wait_for_function("() => /1 face kept/.test(document.querySelector('#status').innerText)",
                               timeout=180_000)
        text = page.locator("#status").inner_text()
        assert "reference.jpg" in text and "both face recognizers" in text, text
        assert not list((tmp_path / "gradio").rglob("reference.jpg")), "the reference outlived its response"


def test_a_visitor_ticks_a_face_to_keep_it(tmp_path):
    """The per-face keep toggle: after a run, ticking "Face 1" runs again with that face left as it was, and the summary
    says it was kept by the visitor's choice."""
    with _visitor_page(tmp_path) as page:
        page.locator("#run").click()
        page.wait_for_function("() => /1 face (anonymized|obscured)/.test(document.querySelector('#status').innerText)",
                               timeout=180_000)
        page.locator("#keep-faces").get_by_label("Face 1").check()
        page.wait_for_function("() => /1 face kept/.test(document.querySelector('#status').innerText)",
                               timeout=120_000)
        assert "you chose to keep it" in page.locator("#status").inner_text()
        assert page.locator("#keep-faces").get_by_label("Face 1").is_checked()


#: Gradio's i18n namespaces: a key of theirs in the page means a translation the visitor sees (or hears) raw.
RAW_KEY = r"\b(common|errors|upload_text|blocks|gallery|video|audio|dataframe)\.[a-z_]{3,}\b"
#: Every text the page shows or announces (screen-reader-only elements too), collected as it appears in the body (the
#: page's config script carries the app's own translations).
COLLECT_TEXT = """window.__texts = []; document.addEventListener('DOMContentLoaded', () => new MutationObserver(ms => {
  for (const m of ms) {
    if (m.type === 'characterData') window.__texts.push(m.target.data);
    for (const n of m.addedNodes) window.__texts.push(n.textContent || ''); } })
  .observe(document.body, {subtree: true, childList: true, characterData: true}));"""
#: Boxes (CSS pixels) of what a layout check measures on the Anonymize tab.
MEASURE = """() => {
  const box = e => e ? e.getBoundingClientRect().toJSON() : null;
  const q = s => document.querySelector(s);
  return {photo: box(q('#photo')), label: box(q('#photo [data-testid="block-label"]')),
          toolbar: box(q('#photo .source-selection')), column: box(q('#slider')),
          slider: box(q('#slider .anon-slider')),
          tags: [...document.querySelectorAll('#slider .tag')].map(t => [t.innerText, box(t)])};
}"""
#: Whether a labelled output's label covers its first image.
LABEL_COVERS = """sel => {
  const block = document.querySelector(sel), label = block.querySelector('[data-testid="block-label"]');
  const img = block.querySelector('img');
  if (!label || !img) return null;
  const a = label.getBoundingClientRect(), b = img.getBoundingClientRect();
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}"""
#: Each header of the Explain tab's score table with the number of lines it is laid out on.
HEADER_LINES = """() => [...document.querySelectorAll('#scores th')].map(th => {
  const range = document.createRange(); range.selectNodeContents(th);
  return [th.innerText, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size]; })"""


def _overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


#: Marks the summary busy (window.__busy) once gradio shows its progress in it: a rerun can end in the same text.
WATCH_STATUS = """() => { window.__busy = false; const s = document.querySelector('#status');
  window.__watch?.disconnect();
  window.__watch = new MutationObserver(() => { if (/processing|queue/i.test(s.innerText)) window.__busy = true; });
  window.__watch.observe(s, {subtree: true, childList: true, characterData: true}); }"""


def _run(page, timeout: float = 240_000) -> str:
    """Click Anonymize and wait until the summary has been busy and shows a result again; returns it."""
    page.evaluate(WATCH_STATUS)
    page.locator("#run").click()
    page.wait_for_function("() => { const now = document.querySelector('#status').innerText; return window.__busy"
                           " && !/processing|queue/i.test(now) && /face/i.test(now); }", timeout=timeout)
    return page.locator("#status").inner_text()


def _plain(status: str) -> None:
    """The summary speaks in words: no figures, and one sentence per face not anonymized."""
    assert not re.search(r"\d\.\d", status), status
    obscured = re.search(r"(\d+)(?: faces?)? obscured", status.splitlines()[0])
    n = int(obscured.group(1)) if obscured else 0
    assert len(re.findall(r"^Face \d+ was obscured: [^.\d]+\.$", status, re.M)) == n, status


def _layout_holds(page, photo: str) -> None:
    """The photo box keeps its height with its label off its toolbar; the slider spans the column, is tall enough to
    drag and says "before" left of "after"."""
    m = page.evaluate(MEASURE)
    assert 300 <= m["photo"]["height"] <= 600, (photo, m["photo"])
    assert not _overlap(m["label"], m["toolbar"]), (photo, m)
    assert m["slider"]["width"] >= 0.9 * m["column"]["width"] and 199 <= m["slider"]["height"] <= 0.7 * 900 + 1, (photo, m)
    (first, a), (second, b) = m["tags"]
    assert (first, second) == ("before", "after") and a["right"] < b["left"], (photo, m["tags"])


def test_a_first_visit_examples_and_odd_photos(tmp_path):
    """Every example shows what each face got in words; a tiny, a panoramic and a tall photo keep the photo box, the
    slider, the galleries and the score table usable; no raw translation key reaches the page; the server logs a
    visitor's mistake without a traceback."""
    from PIL import Image

    from anon_model.ui import examples

    face = Image.open(EXAMPLE).convert("RGB")
    tiny = tmp_path / "tiny.png"
    Image.effect_noise((8, 8), 60).convert("RGB").save(tiny)
    panorama, tall = Image.new("RGB", (4000, 500), (120, 130, 140)), Image.new("RGB", (500, 4000), (120, 130, 140))
    panorama.paste(face.resize((face.width * 450 // face.height, 450)), (1800, 25))
    tall.paste(face.resize((450, face.height * 450 // face.width)), (25, 1800))
    panorama.save(tmp_path / "panorama.jpg")
    tall.save(tmp_path / "tall.jpg")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (pip install playwright)")
    with serve_app(tmp_path) as app, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.add_init_script(COLLECT_TEXT)
            page.goto(app.url, wait_until="domcontentloaded")
            page.locator("#run").click()  # no photo yet: the visitor is told, the log gets one line
            page.get_by_text("Upload a photo first").first.wait_for(timeout=30_000)
            for i, name in enumerate(examples.PHOTOS):
                page.locator(".gallery-item").nth(i).click()
                _plain(_run(page))
                page.screenshot(path=str(tmp_path / f"example-{name}.png"), full_page=True)
            for photo in ("tiny.png", "panorama.jpg", "tall.jpg"):
                page.locator("#photo input[type=file]").set_input_files(str(tmp_path / photo))
                page.locator("#photo img").first.wait_for(timeout=30_000)
                _plain(_run(page))
                _layout_holds(page, photo)
                page.screenshot(path=str(tmp_path / f"layout-{photo}.png"), full_page=True)
            page.get_by_role("tab", name="Source faces").click()  # the tall photo's face went through step 2
            page.locator("#mixture img").first.wait_for(timeout=60_000)
            assert [page.evaluate(LABEL_COVERS, f"#{g}") for g in ("mixture", "appearance", "geometry")] == [False] * 3
            page.get_by_role("tab", name="Explain").click()
            page.locator("#scores th").first.wait_for(timeout=60_000)
            assert all(lines == 1 for _, lines in page.evaluate(HEADER_LINES)), page.evaluate(HEADER_LINES)
            page.get_by_role("tab", name="Compare").click()
            page.get_by_role("button", name="Quiz").click()
            page.get_by_role("button", name="Next question").click()
            page.locator("#study-query img").first.wait_for(timeout=240_000)
            assert page.evaluate(LABEL_COVERS, "#study-query") is False
            page.screenshot(path=str(tmp_path / "study.png"), full_page=True)
            texts = page.evaluate("() => window.__texts")
        finally:
            browser.close()
    assert not [t for t in texts if re.search(RAW_KEY, t)], sorted({m.group(0) for t in texts for m in re.finditer(RAW_KEY, t)})
    log = (tmp_path / "app.log").read_text()
    assert "visitor told: Upload a photo first" in log and "Traceback" not in log, log[-3000:]
