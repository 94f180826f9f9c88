"""What each tab shows for one face record: captioned galleries and short Markdown tables (no gradio here)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anon_model.output import AnonOutput, FaceRecord
from anon_model.conditioning import landmark_map
from anon_model.ui import render, wording
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
        label = f"look-alike {i + 1}: {name}"
        items.append((render.heatmap_overlay(record.crop, h),
                      f"where the recognizer looked (H) · {label}{_score(record.scores_before, i)}"))
        if h_hat is not None:
            items.append((render.heatmap_overlay(record.crop, h_hat),
                          f"after the distraction (Ĥ) · {label}{_score(record.scores_after, i)}"))
    return items


def _score(scores: np.ndarray | None, i: int) -> str:
    return "" if scores is None or i >= len(scores) else f" · score {wording.figure(float(scores[i]))}"


def structure_gallery(record: FaceRecord) -> list[GalleryItem]:
    """S_x, S-bar, S-hat_x drawn over the faded crop, the three together, and the rendered Z_g."""
    base = render.faded(record.crop)
    sets = [(record.landmarks_crop, render.COLOR_S_X, "this face's landmarks", "S_x"),
            (record.landmarks_delegate_crop, render.COLOR_S_BAR, "the borrowed face shape", "S̄"),
            (record.landmarks_anon_crop, render.COLOR_S_HAT, "the new face's shape: the borrowed one with this face's "
                                                            "outline and mouth", "Ŝ_x")]
    present = [s for s in sets if s[0] is not None]
    items = [(render.draw_landmarks(base, pts, color=color), f"{words} ({symbol})")
             for pts, color, words, symbol in present]
    if len(present) > 1:
        together = base
        for pts, color, _, _ in present:
            together = render.draw_landmarks(together, pts, color=color, radius=1)
        items.append((together, "overlaid (" + ", ".join(symbol for *_, symbol in present) + ")"))
    z_g = record.z_g
    if z_g is None and record.landmarks_anon_crop is not None:
        z_g = landmark_map(record.landmarks_anon_crop, record.crop.shape[0])
    if z_g is not None:
        items.append((render.geometry_map_image(z_g), "the new face's shape as the generator gets it (Z_g)"))
    return items


def explain_table(record: FaceRecord, sources: list[str] | None = None) -> str:
    """Markdown: the top-K classes with their scores before and after distraction, then the guard's checks."""
    lines = []
    if record.classes:
        lines += ["| # | look-alike identity (c_i) | score before (A) | score after (Â) |", "|---|---|---|---|"]
        for i, name in enumerate(record.classes):
            lines.append(f"| {i + 1} | {name} |{_cell(record.scores_before, i)} |{_cell(record.scores_after, i)} |")
        lines.append("\nScores: how strongly the recognizer matches this face to each look-alike, on its features "
                     "before (A) and after the distraction (Â, paper Eq. 5).")
    else:
        lines.append("The distraction step did not run for this face: no heatmaps.")
    return "\n".join(lines + ["", *_guard_lines(record, sources)] if record.guard_checks else lines)


def _guard_lines(record: FaceRecord, sources: list[str] | None) -> list[str]:
    """The guard's figures for one face: which try they are about, then a Markdown item per check."""
    shown = "the new face in the photo" if record.treatment == "anonymized" else "the best new face tried (discarded)"
    return [f"Identity distances of {shown}, after {wording.count(record.attempts, 'try', 'tries')}:",
            *(f"- {wording.check_line(c, sources)}" for c in record.guard_checks)]


def _cell(scores: np.ndarray | None, i: int) -> str:
    return " –" if scores is None or i >= len(scores) else f" {wording.figure(float(scores[i]))}"


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
    items = [(mixed, f"the blend the new face takes its look from: {wording.count(len(idx), 'bank face')} (Z_a)")]
    items += [(bank.crop(i), f"source: bank #{i} ({bank.sources[i]}) · weight {wording.figure(w)}")
              for i, w in zip(idx, weights)]
    return items


def delegate_note(record: FaceRecord) -> str:
    """Markdown: where this face's look (Z_a) and shape (S-bar) come from, in plain words with the paper's symbols."""
    if not record.delegate_mixture:
        appearance = "The new face keeps this face's own look (borrowing a look, VAA, is off)."
    elif len(record.delegate_mixture) == 1:
        appearance = (f"The new face takes its look from a single bank face (#{record.delegate_mixture[0]}), so one "
                      "real person's appearance is pasted in (Z_a).")
    else:
        weights = ", ".join(wording.figure(w) for w in record.delegate_weights)
        appearance = (f"The new face takes its look from a blend of "
                      f"{wording.count(len(record.delegate_mixture), 'bank face')} (weights {weights}), so no single "
                      "real person is pasted in (the appearance delegate Z_a).")
    if record.geometry_delegate is None:
        geometry = "It keeps this face's own shape (borrowing a shape, GSA, is off)."
    else:
        geometry = (f"Its shape is that of bank #{record.geometry_delegate}, with this face's own outline and mouth "
                    "(the geometry delegate S̄ gives Ŝ_x).")
    return (f"The bank is the collection of real people's faces the new faces are made from. {appearance}"
            f"{_attribute_note(record)} {geometry} Framed tiles are the ones drawn at random; P is each one's chance "
            "of being drawn (paper Eq. 6, privacy budget ε).")


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


def face_status(record: FaceRecord, number: int) -> str:
    """Markdown: what face ``number`` got and why, in one plain sentence, and what the Explain and Delegates tabs can
    show for it."""
    text = f"**{wording.outcome(record, number)}**"
    if record.treatment == "anonymized":
        return text
    if record.cam is None:
        return text + " The new-face step did not run for it, so there are no heatmaps or source faces to show."
    kept = "it was discarded" if record.treatment == "obscured" else "it is what the photo shows"
    return text + f" Below is the best new face that was tried; {kept}."


def summary(out: AnonOutput) -> str:
    """Markdown, no figures: how many faces got which treatment, what the anonymized ones are now, and one plain
    sentence per face not anonymized (e.g. "- Face 2 was obscured: it is too small to be replaced ...")."""
    if not out.faces:
        return "**No face found** in this photo: it is returned unchanged. Try a photo where faces are larger and frontal."
    counts = {t: n for t, n in out.counts().items() if n}
    head = (f"{wording.count(len(out.faces), 'face')} {next(iter(counts))}" if len(counts) == 1 else
            f"{wording.count(len(out.faces), 'face')}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    replaced = [i + 1 for i, f in enumerate(out.faces) if f.treatment == "anonymized"]
    strangers = ([f"- Face {replaced[0]} was replaced by a stranger: the identity check finds it to be neither the "
                  "person nor anyone in the face bank."] if len(replaced) == 1 else
                 [f"- {len(replaced)} faces were replaced by strangers: the identity check finds each to be neither "
                  "the person nor anyone in the face bank."] if replaced else [])
    return "\n".join([f"**{head}**", *strangers, *(f"- {wording.outcome(f, i + 1)}" for i, f in enumerate(out.faces)
                                                   if f.treatment != "anonymized")])


def figures(out: AnonOutput, sources: list[str] | None = None) -> str:
    """Markdown: per face the guard's distances and limits (with the limits' parts), then the notes on what ran."""
    lines = ["Identity distance: how different two faces are to the face recognizer (0: the same face). A new face "
             "is kept only when it is far enough from the original person and from everyone in the face bank."]
    if not any(f.guard_checks for f in out.faces):
        lines = []
    for i, face in enumerate(out.faces):
        if face.guard_checks:
            said, *checks = _guard_lines(face, sources)
            lines += [f"\n**Face {i + 1}** ({face.treatment}). {said}", *checks]
        else:
            lines.append(f"\n**Face {i + 1}** ({face.treatment}): no new face was tried, so no distances"
                         + (f" ({face.treatment_reason})." if face.treatment_reason else "."))
    notes = [note for note in out.notes if not note.startswith(("face ", "no face"))]  # per-face notes are above
    return "\n".join(lines + (["\n**What ran:** " + "; ".join(notes) + "."] if notes else []))


def compare_note(out: AnonOutput, recognizer: str) -> str:
    """Markdown under the Compare tab: what its distances are, the limit (with its parts) that marks a face as still
    recognized, and which faces have no limit or are obscured in our result."""
    limits = sorted({wording.limit_parts(c) for f in out.faces for c in f.guard_checks if c.against == "original"})
    lines = [f"Identity distance: how different each method's face is from the original face to the face recognizer "
             f"({recognizer}; 0: the same face)."]
    if limits:
        lines.append("⚠ recognized: closer than the limit the identity check applied to the face, "
                     + "; ".join(limits) + ".")
    unchecked = [str(i + 1) for i, f in enumerate(out.faces) if not f.guard_checks]
    if unchecked:
        lines.append(f"No new face was tried for face {', '.join(unchecked)}, so no limit is marked there.")
    obscured = [str(i + 1) for i, f in enumerate(out.faces) if f.treatment != "anonymized"]
    if obscured:
        lines.append(f"In ours, face {', '.join(obscured)} is not a new face but obscured (see the Anonymize tab).")
    return " ".join(lines)
