"""Images shown inside HTML as data URLs: what shows a visitor's original photo or face is never written to disk.

Gradio's image components save every shown image as a file in its cache; a before/after slider or an overlay on
the original face would leave a copy of the visitor's face there. These builders return HTML for a ``gr.HTML``.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import numpy as np
from PIL import Image

#: Longest side of a shown image (the full-size anonymized photo is offered separately for download).
PREVIEW_SIDE = 1600
#: ``js_on_load`` of the slider's ``gr.HTML``: the range input moves the divide (the element outlives re-renders).
SLIDER_JS = ("element.addEventListener('input', e => { const s = e.target.closest('.anon-slider');"
             " if (s) s.style.setProperty('--pos', e.target.value + '%'); });")
CSS = """
.anon-slider { position: relative; width: 100%; min-height: 200px; max-height: 70vh; --pos: 50%;
  background: #8881; border-radius: 4px; overflow: hidden; }
.anon-slider img { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; display: block; }
.anon-slider img.before { clip-path: inset(0 calc(100% - var(--pos)) 0 0); }
.anon-slider input { position: absolute; inset: 0; width: 100%; height: 100%; margin: 0; opacity: 0; cursor: ew-resize; }
.anon-slider .divide { position: absolute; top: 0; bottom: 0; left: var(--pos); width: 2px; background: #fff;
  box-shadow: 0 0 3px #000; pointer-events: none; }
.anon-slider .tag { position: absolute; top: 6px; padding: 1px 6px; border-radius: 4px; background: #000a; color: #fff;
  font-size: 12px; pointer-events: none; }
.anon-grid { display: grid; gap: 8px; grid-template-columns: repeat(var(--columns), minmax(0, var(--tile, 1fr))); }
.anon-grid figure { margin: 0; }
.anon-grid img { width: 100%; height: auto; display: block; }
.anon-grid figcaption { font-size: 12px; white-space: normal; }
.anon-legend { display: flex; align-items: center; gap: 8px; margin: 4px 0 10px; font-size: 12px; }
.anon-legend img { width: 256px; height: 14px; border: 1px solid #8888; }
"""


def data_url(image: np.ndarray | Image.Image, *, max_side: int = PREVIEW_SIDE) -> str:
    """``image`` as a JPEG data URL, downscaled to ``max_side`` at most (kept in the page, never in a file)."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    pil = pil.convert("RGB")
    if max(pil.size) > max_side:
        pil = pil.copy()
        pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def slider_html(before: np.ndarray | Image.Image, after: np.ndarray | Image.Image) -> str:
    """A before/after slider: ``before`` on the left of the divide, ``after`` on the right; drag to move it.

    The slider spans the column at the photo's aspect ratio, between 200 px and 70 % of the window high, and both
    images are fitted inside it alike: a tiny, panoramic or tall photo keeps a slider one can drag.
    """
    width, height = (before.size if isinstance(before, Image.Image) else before.shape[1::-1])
    return (f'<div class="anon-slider" style="aspect-ratio: {width} / {height}">'
            f'<img class="after" alt="after" src="{data_url(after)}">'
            f'<img class="before" alt="before" src="{data_url(before)}"><span class="divide"></span>'
            '<span class="tag" style="left: 6px">before</span><span class="tag" style="right: 6px">after</span>'
            '<input type="range" min="0" max="100" value="50" aria-label="Before / after divide"></div>')


def gallery_html(items: Sequence[tuple[np.ndarray, str]], *, columns: int, tile: int | None = None) -> str:
    """Captioned tiles in a grid of ``columns`` (what a gallery of the visitor's faces shows, without files).

    ``tile``: the widest a tile grows, in CSS pixels (default: the columns share the width).
    """
    tiles = "".join(f'<figure><img alt="{html.escape(caption)}" src="{data_url(image)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>" for image, caption in items)
    width = f"; --tile: {tile}px" if tile else ""
    return f'<div class="anon-grid" style="--columns: {columns}{width}">{tiles}</div>'


def legend_html(strip: np.ndarray, low: str, high: str) -> str:
    """A colour scale: ``strip`` (an RGB image, low values left) between the words for its two ends."""
    return (f'<div class="anon-legend"><span>{html.escape(low)}</span><img alt="colour scale" src="{data_url(strip)}">'
            f"<span>{html.escape(high)}</span></div>")
