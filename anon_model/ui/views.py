"""What each tab shows for one face record: captioned galleries and short Markdown tables (no gradio here)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anon_model.output import AnonOutput, FaceRecord
from anon_model.conditioning import landmark_map
from anon_model.ui import render

#: One gallery tile: an RGB uint8 image and its caption.
GalleryItem = tuple[np.ndarray, str]


def boxed_result(out: AnonOutput) -> np.ndarray:
    """The anonymized photo with every face's box and number drawn on it."""
    return render.draw_boxes(np.asarray(out.image), [f.box for f in out.faces])


def cam_gallery(record: FaceRecord) -> list[GalleryItem]:
    """Per top-K class c_i: H (Eq. 1) over the original crop, then H-hat after distraction (Eq. 5) over the same crop."""
    if record.cam is None:
        return []
    after = record.cam_distracted if record.cam_distracted is not None else [None] * len(record.cam)
    items: list[GalleryItem] = []
    for i, (h, h_hat) in enumerate(zip(record.cam, after)):
        name = record.classes[i] if i < len(record.classes) else f"class {i + 1}"
        label = f"top-{i + 1} {name}"
        items.append((render.heatmap_overlay(record.crop, h), f"H · {label}{_score(record.scores_before, i)}"))
        if h_hat is not None:
            items.append((render.heatmap_overlay(record.crop, h_hat), f"Ĥ · {label}{_score(record.scores_after, i)}"))
    return items


def _score(scores: np.ndarray | None, i: int) -> str:
    return "" if scores is None or i >= len(scores) else f" · p={float(scores[i]):.3f}"


def structure_gallery(record: FaceRecord) -> list[GalleryItem]:
    """S_x, S-bar, S-hat_x drawn over the faded crop, the three together, and the rendered Z_g."""
    base = render.faded(record.crop)
    sets = [(record.landmarks_crop, render.COLOR_S_X, "S_x (original)"),
            (record.landmarks_delegate_crop, render.COLOR_S_BAR, "S̄ (geometry delegate)"),
            (record.landmarks_anon_crop, render.COLOR_S_HAT, "Ŝ_x (anonymized: S̄ with S_x's contour and mouth)")]
    present = [(pts, color, caption) for pts, color, caption in sets if pts is not None]
    items = [(render.draw_landmarks(base, pts, color=color), caption) for pts, color, caption in present]
    if len(present) > 1:
        together = base
        for pts, color, _ in present:
            together = render.draw_landmarks(together, pts, color=color, radius=1)
        items.append((together, "overlaid: " + ", ".join(c.split(" ")[0] for _, _, c in present)))
    z_g = record.z_g
    if z_g is None and record.landmarks_anon_crop is not None:
        z_g = landmark_map(record.landmarks_anon_crop, record.crop.shape[0])
    if z_g is not None:
        items.append((render.geometry_map_image(z_g), "Z_g (landmark map of Ŝ_x)"))
    return items


def explain_table(record: FaceRecord) -> str:
    """Markdown: the top-K classes with their scores before and after distraction, and the identity distance."""
    lines = []
    if record.classes:
        lines += ["| rank | class c_i | score on A | score on Â |", "|---|---|---|---|"]
        for i, name in enumerate(record.classes):
            lines.append(f"| {i + 1} | {name} |{_cell(record.scores_before, i)} |{_cell(record.scores_after, i)} |")
    else:
        lines.append("IFA did not run for this face (switched off): no class activation maps.")
    if record.identity_distance is not None:
        verdict = ""
        if record.identity_threshold is not None:
            same = record.identity_distance < record.identity_threshold
            verdict = f" ({'same person' if same else 'not the same person'} at threshold {record.identity_threshold:.2f})"
        lines.append(f"\nIdentity distance original ↔ anonymized: **{record.identity_distance:.3f}**{verdict}")
    return "\n".join(lines)


def _cell(scores: np.ndarray | None, i: int) -> str:
    return " –" if scores is None or i >= len(scores) else f" {float(scores[i]):.4f}"


def candidate_gallery(crops: Sequence[np.ndarray], indices: Sequence[int], probs: Sequence[float] | np.ndarray | None,
                      chosen: int | None, *, sources: Sequence[str] | None = None,
                      landmarks: Sequence[np.ndarray] | None = None) -> list[GalleryItem]:
    """Candidate delegates M_q with their Eq. 6 probabilities; the sampled one is framed and marked.

    ``crops`` and (optional) ``landmarks`` follow ``indices``; landmarks are drawn when given (geometry).
    """
    items: list[GalleryItem] = []
    for j, (crop, index) in enumerate(zip(crops, indices)):
        tile = crop if landmarks is None else render.draw_landmarks(render.faded(crop, amount=0.3), landmarks[j],
                                                                    color=render.COLOR_S_BAR)
        caption = f"bank #{index}"
        if sources is not None:
            caption += f" ({sources[j]})"
        if probs is not None:
            caption += f" · P = {float(probs[j]):.3f}"
        if chosen is not None and int(index) == int(chosen):
            tile, caption = render.framed(tile), caption + " · ✔ chosen"
        items.append((tile, caption))
    return items


def appearance_gallery(record: FaceRecord, bank) -> list[GalleryItem]:
    """VAA: the k nearest bank faces of x with P(X_i) from u_a (Eq. 6-7); the chosen Z_a framed."""
    idx = [int(i) for i in record.delegates]
    return candidate_gallery([bank.crop(i) for i in idx], idx, record.delegate_probs, record.delegate,
                             sources=[bank.sources[i] for i in idx])


def geometry_gallery(record: FaceRecord, bank) -> list[GalleryItem]:
    """GSA: same-pose bank faces with their landmarks and P(X_i) from u_g (Eq. 6, 8); the chosen S-bar framed."""
    idx = [int(i) for i in record.geometry_candidates]
    marks = [np.asarray(bank.crop_landmarks(i)) for i in idx]
    return candidate_gallery([bank.crop(i) for i in idx], idx, record.geometry_probs, record.geometry_delegate,
                             sources=[bank.sources[i] for i in idx], landmarks=marks)


def summary(out: AnonOutput) -> str:
    """Markdown: how many faces, what step 2 ran, and each face's identity distance."""
    if not out.faces:
        return "**No face found** in this photo: it is returned unchanged. Try a photo where faces are larger and frontal."
    lines = [f"**{len(out.faces)} face{'s' if len(out.faces) > 1 else ''} anonymized.**"]
    for i, f in enumerate(out.faces):
        text = f"- face {i + 1}"
        if f.identity_distance is not None:
            text += f": identity distance {f.identity_distance:.3f}"
            if f.identity_threshold is not None:
                same = f.identity_distance < f.identity_threshold
                text += f" (threshold {f.identity_threshold:.2f}: {'⚠ same' if same else 'different'} person)"
        lines.append(text)
    lines += [f"- {note}" for note in out.notes]
    return "\n".join(lines)
