"""Exceptions with messages meant for users (one clear line each)."""


class AnonModelError(Exception):
    """Base class of anon_model's user-facing errors."""


class ImageError(AnonModelError):
    """An input that cannot be used as an image (not an image, truncated, unreadable, too large)."""


class MissingWeightsError(AnonModelError):
    """A pretrained weight is not on this machine; the message says how to get it."""


def failure_reason(stage: str, exc: BaseException, *, limit: int = 240) -> str:
    """'<stage> failed: <ErrorType>: <its message's first line>' (at most ``limit`` characters): why one face was
    obscured rather than anonymized when a stage raised on it."""
    lines = str(exc).strip().splitlines()
    text = f"{stage} failed: {type(exc).__name__}" + (f": {lines[0].strip()}" if lines else "")
    return text if len(text) <= limit else text[:limit - 3] + "..."
