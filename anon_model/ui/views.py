"""What each tab shows for one face record: captioned galleries and short Markdown tables (no gradio here)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anon_model.output import AnonOutput, FaceRecord
from anon_model.conditioning import landmark_map
from anon_model.ui import render
from anon_model.vca import mix_faces

#: One gallery tile: an RGB uint8 image and its caption.
GalleryItem = tuple[np.ndarray, str]


def boxed_result(out: AnonOutput) -> np.ndarray:
    """The anonymized photo with every face's box and number drawn on it."""
    return render.draw_boxes(np.asarray(out.image), [f.box for f in out.faces])


def cam_gallery(record: FaceRecord) -> list[GalleryItem]:
    """Per top-K class c_i, side by side: H (Eq. 1) and H-hat after distraction (Eq. 5), both over the original crop."""
    if record.cam is None:
        return []
    after = record.cam_distracted if record.cam_distracted is not None else [None] * len(record.cam)
    items: list[GalleryItem] = []
    for i, (h, h_hat) in enumerate(zip(record.cam, after)):
        name = record.classes[i] if i < len(record.classes) else f"class {i + 1}"
        label = f"class {i + 1}: {name}"
        items.append((render.heatmap_overlay(record.crop, h),
                      f"H · where the recognizer looked · {label}{_score(record.scores_before, i)}"))
        if h_hat is not None:
            items.append((render.heatmap_overlay(record.crop, h_hat),
                          f"Ĥ · after IFA distracted it · {label}{_score(record.scores_after, i)}"))
    return items


def _score(scores: np.ndarray | None, i: int) -> str:
    return "" if scores is None or i >= len(scores) else f" · score p={float(scores[i]):.3f}"


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
        lines += ["| rank | class c_i (a bank identity the recognizer matched) | score on A (this face's features) "
                  "| score on Â (after IFA's distraction) |", "|---|---|---|---|"]
        for i, name in enumerate(record.classes):
            lines.append(f"| {i + 1} | {name} |{_cell(record.scores_before, i)} |{_cell(record.scores_after, i)} |")
    else:
        lines.append("IFA did not run for this face: no class activation maps.")
    if record.identity_distance is not None:
        lines.append(f"\nOriginal ↔ step 2's result: {_distance(record)}")
    return "\n".join(lines)


def _cell(scores: np.ndarray | None, i: int) -> str:
    return " –" if scores is None or i >= len(scores) else f" {float(scores[i]):.4f}"


def candidate_gallery(crops: Sequence[np.ndarray], indices: Sequence[int], probs: Sequence[float] | np.ndarray | None,
                      marks: dict[int, str], *, sources: Sequence[str] | None = None,
                      landmarks: Sequence[np.ndarray] | None = None) -> list[GalleryItem]:
    """Candidate delegates M_q with their Eq. 6 probabilities; the drawn ones (keys of ``marks``) framed and captioned.

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
        if int(index) in marks:
            tile, caption = render.framed(tile), f"{caption} · ✔ {marks[int(index)]}"
        items.append((tile, caption))
    return items


def appearance_gallery(record: FaceRecord, bank) -> list[GalleryItem]:
    """VAA: the k nearest bank faces of x with P(X_i) from u_a (Eq. 6-7); the ones mixed into Z_a framed."""
    idx = [int(i) for i in record.delegates]
    marks = {int(i): f"mixed in, weight {w:.2f}" for i, w in zip(record.delegate_mixture, record.delegate_weights)}
    return candidate_gallery([bank.crop(i) for i in idx], idx, record.delegate_probs, marks,
                             sources=[bank.sources[i] for i in idx])


def geometry_gallery(record: FaceRecord, bank) -> list[GalleryItem]:
    """GSA: same-pose bank faces with their landmarks and P(X_i) from u_g (Eq. 6, 8); the chosen S-bar framed."""
    idx = [int(i) for i in record.geometry_candidates]
    marks = [np.asarray(bank.crop_landmarks(i)) for i in idx]
    chosen = {} if record.geometry_delegate is None else {int(record.geometry_delegate): "chosen"}
    return candidate_gallery([bank.crop(i) for i in idx], idx, record.geometry_probs, chosen,
                             sources=[bank.sources[i] for i in idx], landmarks=marks)


def mixture_gallery(record: FaceRecord, bank) -> list[GalleryItem]:
    """The appearance delegate Z_a as step 2 received it (the bank faces mixed, ``mix_faces``), then each source."""
    if not record.delegate_mixture:
        return []
    idx, weights = [int(i) for i in record.delegate_mixture], list(record.delegate_weights)
    mixed, _ = mix_faces(bank, idx, weights)
    items = [(mixed, f"Z_a · the appearance delegate step 2 gets: the mix of {_faces(len(idx), 'bank face')}")]
    items += [(bank.crop(i), f"source: bank #{i} ({bank.sources[i]}) · weight {w:.2f}") for i, w in zip(idx, weights)]
    return items


def delegate_note(record: FaceRecord) -> str:
    """Markdown: what Z_a and S-bar are for this face, in plain words beside the paper's symbols."""
    if not record.delegate_mixture:
        appearance = "VAA is off: the face keeps its own appearance (no appearance delegate Z_a)."
    elif len(record.delegate_mixture) == 1:
        appearance = (f"Appearance delegate Z_a: a single bank face (#{record.delegate_mixture[0]}), so one real "
                      "person's appearance is pasted in.")
    else:
        weights = ", ".join(f"{w:.2f}" for w in record.delegate_weights)
        appearance = (f"Appearance delegate Z_a: a mix of {_faces(len(record.delegate_mixture), 'bank face')} "
                      f"(weights {weights}), so no single real person is pasted in.")
    if record.geometry_delegate is None:
        geometry = "GSA is off: the face keeps its own geometry S_x."
    else:
        geometry = (f"Geometry delegate S̄: the landmarks of bank #{record.geometry_delegate}; Ŝ_x takes its inner "
                    "face with this face's own contour and mouth.")
    return (f"{appearance}{_attribute_note(record)} {geometry} Framed tiles are the ones the sampler drew; P is their "
            "probability among the candidates (Eq. 6, privacy budget ε).")


def _attribute_note(record: FaceRecord) -> str:
    """' Candidates: same gender (male) and age 35-49.' — which gender/age filter narrowed VAA's candidates."""
    applied = record.attribute_filter
    if not applied or not record.delegate_mixture:
        return ""
    if applied == "off":
        return " Candidates were not matched to this face's gender and age (switched off)."
    if applied.startswith("none"):
        return f" Candidates could not be matched to this face's gender and age ({applied.split(': ', 1)[-1]})."
    return f" Candidates were narrowed to this face's estimated {applied}."


#: How each treatment reads in a face's headline.
_HEADLINES = {"anonymized": "anonymized", "obscured": "obscured, not anonymized", "unchanged": "left unchanged",
              "failed": "NOT anonymized: still recognizable"}


def face_status(record: FaceRecord, number: int) -> str:
    """Markdown: what face ``number`` got and why, with what the Explain and Delegates tabs can show for it."""
    text = f"**Face {number}: {_HEADLINES[record.treatment]}**"
    if record.treatment_reason:
        text += f" — {record.treatment_reason}."
    if record.treatment == "anonymized":
        return text + f" The identity guard passed: {_distance(record)}." if record.identity_distance is not None else text
    if record.cam is None:
        return text + " Step 2 did not run for this face, so there are no heatmaps or delegates to show."
    kept = "it was discarded" if record.treatment == "obscured" else "it is what the photo shows"
    return text + f" Below is what step 2 tried; {kept}."


def _distance(record: FaceRecord) -> str:
    """'identity distance 0.706 (threshold 0.60: different person)'; no verdict for a face the guard rejected (its
    limit has a margin above the threshold, so "different person" there would read as a pass)."""
    text = f"identity distance {record.identity_distance:.3f}"
    if record.identity_threshold is not None and record.treatment == "anonymized":
        same = record.identity_distance < record.identity_threshold
        text += f" (threshold {record.identity_threshold:.2f}: {'⚠ same' if same else 'different'} person)"
    return text


def _faces(count: int, noun: str = "face") -> str:
    """'1 face', '3 faces'."""
    return f"{count} {noun}{'s' * (count != 1)}"


def summary(out: AnonOutput) -> str:
    """Markdown: how many faces got which treatment and why (e.g. "2 faces: 1 anonymized, 1 obscured — face 2: too
    small for step 2 (31 px < 40 px)"), the anonymized faces' identity distances and the notes on what ran."""
    if not out.faces:
        return "**No face found** in this photo: it is returned unchanged. Try a photo where faces are larger and frontal."
    counts = {t: n for t, n in out.counts().items() if n}
    head = (f"{_faces(len(out.faces))} {next(iter(counts))}" if len(counts) == 1 else
            f"{_faces(len(out.faces))}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    reasons = "; ".join(f"face {i + 1}: {f.treatment_reason}" for i, f in enumerate(out.faces) if f.treatment_reason)
    lines = [f"**{head}**" + (f" — {reasons}" if reasons else "")]
    lines += [f"- face {i + 1}: {_distance(f)}" for i, f in enumerate(out.faces)
              if f.treatment == "anonymized" and f.identity_distance is not None]
    lines += [f"- {note}" for note in out.notes if not note.startswith("face ")]  # per-face notes repeat the reasons
    return "\n".join(lines)
