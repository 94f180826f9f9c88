"""A small human study like the paper's Fig. 10, with answers kept in a local CSV (no images, no uploads).

Q1 shows an anonymized face next to another photo of the same person and asks "Are the two faces
from the same person?" (Yes / No / Not sure); Q2 shows an anonymized face and the 5 faces nearest to it
in a gallery of other photos and asks which one is the same person, or "Not appear".

Rates per method, as in the paper's Fig. 11: human ReID = share of Q1 answered "Yes" (the text of §4.5
says ReID counts "B and C"; we count re-identifications, the usual meaning, which Fig. 11's reading
"lower is better" also implies) and, in Q2, share of picks of the true person; human IDS = share of Q2
picks of someone else (identity swap). The paper's Q2 drew its galleries from the dataset and from a
web search; ours come from the bundled example photos (offline), so only some Q2 items contain the
true person.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

Q1_ANSWERS = ("Yes", "No", "Not sure")
NOT_APPEAR = "Not appear"
FIELDS = ("time", "participant", "item", "question", "method", "answer", "outcome")


@dataclass
class StudyItem:
    """One question: an anonymized face (query), the faces shown with it and which of those are the same person."""

    item_id: str  # built from public example indices only, e.g. "Q2/blur/3"
    question: str  # "Q1" or "Q2"
    method: str
    query: np.ndarray  # anonymized face crop
    references: list[np.ndarray]  # Q1: one other photo of the person; Q2: the retrieved faces, nearest first
    same: list[bool]  # per reference: the query's true identity?

    @property
    def choices(self) -> list[str]:
        """The answers offered: Fig. 10's three for Q1; the retrieved faces' numbers and "Not appear" for Q2."""
        if self.question == "Q1":
            return list(Q1_ANSWERS)
        return [str(i + 1) for i in range(len(self.references))] + [NOT_APPEAR]

    def outcome(self, answer: str) -> str:
        """"reid" (the true person recognised), "ids" (mistaken for another person) or "none"."""
        if answer not in self.choices:
            raise ValueError(f"{answer!r} is not an answer to {self.item_id} (choose from {self.choices})")
        if self.question == "Q1":
            return "reid" if answer == "Yes" else "none"
        if answer == NOT_APPEAR:
            return "none"
        return "reid" if self.same[int(answer) - 1] else "ids"


def make_q1(item_id: str, method: str, query: np.ndarray, other_photo: np.ndarray) -> StudyItem:
    """Q1: the anonymized face and another photo of the same person."""
    return StudyItem(item_id, "Q1", method, query, [other_photo], [True])


def make_q2(item_id: str, method: str, query: np.ndarray, query_embedding: np.ndarray, gallery: list[np.ndarray],
            gallery_embeddings: np.ndarray, same: list[bool], *, top: int = 5) -> StudyItem:
    """Q2: the anonymized face and its ``top`` nearest gallery faces (l2 in an identity space), nearest first."""
    d = np.linalg.norm(np.asarray(gallery_embeddings) - np.asarray(query_embedding)[None], axis=1)
    order = np.argsort(d, kind="stable")[:top]
    return StudyItem(item_id, "Q2", method, query, [gallery[i] for i in order], [bool(same[i]) for i in order])


class StudyLog:
    """Append-only CSV of answers: time, a random participant id, item id, question, method, answer, outcome."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, item: StudyItem, answer: str, *, participant: str) -> str:
        """Append one answer and return its outcome."""
        outcome = item.outcome(answer)
        row = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "participant": participant,
               "item": item.item_id, "question": item.question, "method": item.method, "answer": answer,
               "outcome": outcome}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.is_file() or self.path.stat().st_size == 0
            with self.path.open("a", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
        return outcome

    def rows(self) -> list[dict[str, str]]:
        """Every answer recorded so far."""
        if not self.path.is_file():
            return []
        with self._lock, self.path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def rates(self) -> dict[str, dict[str, float]]:
        """Per method: answers per question and the human ReID / IDS rates in percent (Fig. 11)."""
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in self.rows():
            c = counts[row["method"]]
            c[row["question"]] += 1
            c[f"{row['question']}:{row['outcome']}"] += 1
        out = {}
        for method, c in sorted(counts.items()):
            q1, q2 = c["Q1"], c["Q2"]
            out[method] = {"Q1 answers": q1, "Q2 answers": q2,
                           "Q1 ReID %": 100.0 * c["Q1:reid"] / q1 if q1 else float("nan"),
                           "Q2 ReID %": 100.0 * c["Q2:reid"] / q2 if q2 else float("nan"),
                           "Q2 IDS %": 100.0 * c["Q2:ids"] / q2 if q2 else float("nan")}
        return out


def rates_markdown(rates: dict[str, dict[str, float]]) -> str:
    """The rates as a Markdown table (lower ReID and IDS = better protection)."""
    if not rates:
        return "No answers recorded yet."
    cols = ["Q1 answers", "Q1 ReID %", "Q2 answers", "Q2 ReID %", "Q2 IDS %"]
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for method, r in rates.items():
        cells = [f"{r[c]:.0f}" if "answers" in c else ("–" if np.isnan(r[c]) else f"{r[c]:.1f}") for c in cols]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class _Photo:
    """One labelled example photo, its first face (original crop) and each method's crop of that face."""

    identity: str
    crop: np.ndarray
    landmarks: np.ndarray  # (68, 2) in the crop
    method_crops: dict[str, np.ndarray]


class StudyPool:
    """Questions built from labelled public photos: each is anonymized once per method, on first use.

    ``photos`` maps a name to (identity label, RGB photo); ``anonymize(rgb)`` runs our pipeline;
    ``methods`` are the baselines of the Compare tab; ``bank.embed`` ranks Q2's gallery.
    """

    def __init__(self, photos: dict[str, tuple[str, np.ndarray]], *, anonymize, methods: dict, bank) -> None:
        self.names = sorted(photos)
        self._photos_in = photos
        self.anonymize, self.methods, self.bank = anonymize, dict(methods), bank
        self.method_names = ["ours", *self.methods]
        self._ready: list[_Photo] | None = None
        self._lock = threading.Lock()

    def photos(self) -> list[_Photo]:
        """Every photo with a face, analyzed and anonymized by each method (computed once, on first call)."""
        from anon_model.ui.compare import face_crops

        with self._lock:
            if self._ready is None:
                ready = []
                for name in self.names:
                    identity, rgb = self._photos_in[name]
                    out = self.anonymize(rgb)
                    if not out.faces:
                        continue
                    face = out.faces[0]
                    crops = {"ours": face_crops(np.asarray(out.image), [face])[0]}
                    crops.update({m: face_crops(np.asarray(fn(rgb, out), np.uint8), [face])[0]
                                  for m, fn in self.methods.items()})
                    ready.append(_Photo(identity, face.crop, np.asarray(face.landmarks_crop, np.float32), crops))
                self._ready = ready
            return self._ready

    def _embed(self, crops: list[np.ndarray], landmarks: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self.bank.embed(np.stack(crops), np.stack(landmarks)))

    def item(self, rng: np.random.Generator) -> StudyItem:
        """A random question: method, Q1/Q2 and photo drawn uniformly (Q1 only where the person has another photo)."""
        photos = self.photos()
        if len(photos) < 2:
            raise ValueError("the study needs at least two photos with a face")
        method = self.method_names[int(rng.integers(len(self.method_names)))]
        paired = [i for i, p in enumerate(photos) if sum(q.identity == p.identity for q in photos) > 1]
        question = "Q1" if paired and rng.random() < 0.5 else "Q2"
        index = int(rng.choice(paired if question == "Q1" else len(photos)))
        query, others = photos[index], [i for i in range(len(photos)) if i != index]
        anonymized = query.method_crops[method]
        if question == "Q1":
            ref = int(rng.choice([i for i in others if photos[i].identity == query.identity]))
            return make_q1(f"Q1/{method}/{index}/{ref}", method, anonymized, photos[ref].crop)
        gallery = [photos[i] for i in others]
        q_emb = self._embed([anonymized], [query.landmarks])[0]
        g_emb = self._embed([g.crop for g in gallery], [g.landmarks for g in gallery])
        return make_q2(f"Q2/{method}/{index}", method, anonymized, q_emb, [g.crop for g in gallery], g_emb,
                       [g.identity == query.identity for g in gallery])
