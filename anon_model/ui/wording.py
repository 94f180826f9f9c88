"""Plain words for what a face got and why, and one way to write the figures behind it (two decimals everywhere).

A face record's ``treatment_reason`` is a short technical note for logs and the command line; a visitor first reads
``why_not_replaced``: one everyday clause, built from the record's guard checks when it has them, else from keywords
of the note, else a generic clause (a note this module does not know is never shown raw). The distances and limits
(``check_line``) are shown one click away, each limit with its parts named.
"""

from __future__ import annotations

import math

from anon_model.keep import CASIA_KEEP, DLIB_KEEP
from anon_model.output import FaceRecord, GuardCheck

#: The one sentence per reason, tried in order: the first whose keywords all occur in the note speaks for the face.
REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("recogni", "original"), "every new face made for it still looked too much like the original person"),
    (("recogni", "bank"), "every new face made for it looked too much like one of the real people the new faces "
                          "are blended from"),
    (("natural",), "no natural-looking new face could be made for it"),
    (("too small",), "it is too small to be replaced by a new face"),
    (("turned",), "the head is turned too far to the side to be replaced by a new face"),
    (("landmarks",), "its eyes, nose and mouth could not be located reliably enough to replace it"),
    (("replace_with",), "the settings asked to cover every face"),
)
#: What a face of each treatment got, in words.
OUTCOMES = {"anonymized": "replaced by a stranger", "obscured": "obscured", "unchanged": "left as it was, as asked",
            "failed": "left as it was (NOT anonymized, and obscuring is off)",
            "kept": "kept as it was"}
GENERIC = "no new face could be made for it that passes the identity check"
#: How each kind of guard check names whom the new face was compared with.
AGAINST = {"original": "the original person", "bank": "the nearest person of the face bank"}


def why_not_replaced(record: FaceRecord) -> str:
    """Why a face was not replaced by a stranger, as one plain clause ('' when it was, or was left as asked)."""
    if record.treatment in ("anonymized", "unchanged"):
        return ""
    if record.treatment == "kept":
        return kept_because(record)
    failed = {c.against for c in record.guard_checks if not c.passed}
    for against in ("original", "bank"):  # the record's own figures first: they cannot be misread
        if against in failed:
            return next(text for words, text in REASONS if against in words)
    note = record.treatment_reason.lower()
    return next((text for words, text in REASONS if all(w in note for w in words)), GENERIC)


def kept_because(record: FaceRecord) -> str:
    """Why a face was kept, as one plain clause: both recognizers match it to a reference photo, with their distances."""
    keep = record.keep
    if not keep.reference:
        return "you chose to keep it"
    return (f"both face recognizers match it to your reference photo {keep.reference} (distances "
            f"{distance(keep.dlib_distance, DLIB_KEEP)} and {distance(keep.casia_distance, CASIA_KEEP)}, under the "
            f"{figure(DLIB_KEEP)} and "
            f"{figure(CASIA_KEEP)} needed)")


def outcome(record: FaceRecord, number: int) -> str:
    """'Face 2 was obscured: it is too small to be replaced by a new face.' — one sentence per face."""
    why = why_not_replaced(record)
    return f"Face {number} was {OUTCOMES.get(record.treatment, record.treatment)}" + (f": {why}." if why else ".")


def figure(value: float) -> str:
    """A limit, score or weight in the app's one precision: '0.70'."""
    return f"{value:.2f}"


def distance(value: float, limit: float | None = None) -> str:
    """A measured distance in the app's precision, never reading as on the wrong side of ``limit``: a distance just
    below a limit is rounded down (0.698 against 0.70 reads '0.69', not '0.70'), or said to be 'just under' it."""
    if limit is None or value >= limit:
        return figure(value)
    shown = figure(value)
    if float(shown) >= float(figure(limit)):
        shown = figure(math.floor(value * 100 + 1e-9) / 100)
    return shown if float(shown) < float(figure(limit)) else f"just under {figure(limit)}"


def limit_parts(check: GuardCheck) -> str:
    """'0.70 = the recognizer's same-person threshold 0.60 + a safety margin 0.10'."""
    return f"{figure(check.limit)} = " + " + ".join(f"{name} {figure(value)}" for name, value in check.parts)


def check_line(check: GuardCheck, sources: list[str] | None = None) -> str:
    """One guard check in words: which recognizer, how far from whom, the limit with its parts, passed or not
    ('✔' / '✘')."""
    whom = AGAINST.get(check.against, check.against)
    if check.bank_index is not None:
        whom += f" (bank face {check.bank_index}" + (f", {sources[check.bank_index]})" if sources else ")")
    mark = "✔ far enough" if check.passed else "✘ too close"
    return (f"{check.by}: {distance(check.distance, check.limit)} from {whom}; needs at least {limit_parts(check)}: "
            f"{mark}")


def original_limit(record: FaceRecord) -> float | None:
    """The distance from the original person a new face of this record needed (None: the guard did not run)."""
    return next((c.limit for c in record.guard_checks if c.against == "original"), None)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 face', '3 faces', '2 tries', '2 people'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
