"""Exceptions with messages meant for users (one clear line each)."""


class AnonModelError(Exception):
    """Base class of anon_model's user-facing errors."""


class ImageError(AnonModelError):
    """An input that cannot be used as an image (not an image, truncated, unreadable, too large)."""


class MissingWeightsError(AnonModelError):
    """A pretrained weight is not on this machine; the message says how to get it."""
