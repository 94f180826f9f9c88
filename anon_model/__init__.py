"""anon_model: face anonymization by identity attention distraction (IFA + IPD/VAA/GSA + a conditional generator)."""

__version__ = "0.1.0"

__all__ = ["AnonPipeline", "__version__"]


def __getattr__(name: str):
    """Import the pipeline lazily so `import anon_model.ipd` stays light."""
    if name == "AnonPipeline":
        from anon_model.pipeline import AnonPipeline

        return AnonPipeline
    raise AttributeError(name)
