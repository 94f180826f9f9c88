"""What the Gradio app shows, as plain functions: overlays, galleries, per-call options and the user study.

Nothing here imports gradio, so every piece is unit-testable; ``app.py`` only wires these to components.
"""
