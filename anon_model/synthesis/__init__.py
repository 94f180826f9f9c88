"""Step 2 synthesizers; without a trained generator the training-free one (``warp.py``) fills the slot."""

from anon_model.synthesis.warp import GuardReport, TrainingFreeSynthesizer, guarded_synthesis

__all__ = ["GuardReport", "TrainingFreeSynthesizer", "guarded_synthesis"]
