"""One real-browser run of the app: headless Debian Chromium uploads a photo, anonymizes it, sees the result."""

from __future__ import annotations

import os
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


def test_upload_anonymize_and_see_the_result(tmp_path):
    """Also: the summary of what each face got is visible above the result, the upload is deleted from the server
    once read, and a second run on the still-shown photo works."""
    from PIL import Image

    visitor = tmp_path / "visitor.png"  # not a bundled example, so the app treats it as a private upload
    Image.open(EXAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(visitor)
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (pip install playwright)")
    with serve_app(tmp_path) as app, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app.url, wait_until="domcontentloaded")
            page.locator("#photo input[type=file]").set_input_files(str(visitor))
            page.locator("#photo img").first.wait_for(timeout=30_000)  # the upload is shown
            page.locator("#run").click()
            status = page.locator("#status")
            summary = "/1 face (anonymized|obscured)/"  # what the face got, in the summary's first line
            page.wait_for_function(f"() => {summary}.test(document.querySelector('#status').innerText)",
                                   timeout=180_000)
            assert status.locator("strong").first.is_visible()
            headline = status.locator("p").first.inner_text()
            assert ("obscured" in headline) == ("face 1: " in headline), headline  # an obscured face says why
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
            page.get_by_label("VAA").uncheck()
            page.locator("#run").click()  # the browser re-sends the deleted upload; the visitor's result is reused
            page.wait_for_function(  # the new result's summary (VAA off keeps x's appearance), not an error
                f"t => {{ const now = document.querySelector('#status').innerText;"
                f" return now !== t && {summary}.test(now); }}", arg=first, timeout=120_000)
        finally:
            browser.close()
