"""A delegate bank of synthetic faces of no one, sampled from an unconditional diffusers face model."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from anon_model.bank.build import BankBuilder, BankContents, as_embedder, default_analyzer
from anon_model.bank.embedder import Embedder
from anon_model.extras import require

__all__ = ["synthesize", "DEFAULT_SYNTH_MODEL"]

#: An unconditional DDPM trained on CelebA-HQ 256 (Apache-2.0); downloaded by users with the internet.
DEFAULT_SYNTH_MODEL = "google/ddpm-celebahq-256"


def synthesize(n: int, *, model: str | Callable = DEFAULT_SYNTH_MODEL, analyzer=None,
               identity: Embedder | str = "auto", steps: int = 50, batch_size: int = 4,
               max_images: int | None = None, seed: int = 0, device: str = "cpu",
               jpeg_quality: int = 95, progress: bool = True) -> BankContents:
    """A bank of ``n`` synthetic faces of no one, sampled from an unconditional diffusers face model.

    ``model`` is a Hub id / local folder of a diffusers unconditional pipeline (DDPM/DDIM; a DDPM is
    sampled with a DDIM scheduler and ``steps`` steps) or such a pipeline object. Samples in which no
    face is found are dropped; at most ``max_images`` (default 2n) are drawn; ``seed`` fixes them.
    """
    pipe = model if callable(model) else _unconditional_pipeline(str(model), device)
    label = model if isinstance(model, str) else type(model).__name__
    analyzer = analyzer or default_analyzer()
    builder = BankBuilder(as_embedder(identity), jpeg_quality, batch_size)
    generator = torch.Generator(device).manual_seed(seed)
    budget, drawn = max_images or 2 * n, 0
    with tqdm(total=n, desc="bank synth", unit="face", disable=not progress) as bar:
        while len(builder) < n and drawn < budget:
            count = min(batch_size, budget - drawn)
            images = pipe(batch_size=count, generator=generator, num_inference_steps=steps,
                          output_type="np").images
            for image in np.asarray(images):
                faces = analyzer(np.clip(np.round(image * 255), 0, 255).astype(np.uint8))
                if faces and len(builder) < n:
                    builder.add(max(faces, key=lambda f: f.score), f"synth:{label}#{drawn}")
                    bar.update(1)
                drawn += 1
    if len(builder) < n:
        warnings.warn(f"bank synth: faces found in {len(builder)} of {drawn} samples, fewer than the {n} asked",
                      stacklevel=2)
    return builder.finish({"synthesized_with": label, "samples": drawn})


def _unconditional_pipeline(model: str, device: str):
    """Load a diffusers unconditional image pipeline; a DDPM gets a DDIM scheduler (same weights, fewer steps)."""
    require("diffusers", "anon-model bank synth")  # one clear line when the extra is missing
    from diffusers import DDIMPipeline, DDIMScheduler, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(model)
    if hasattr(pipe, "unet") and hasattr(pipe, "scheduler") and not isinstance(pipe, DDIMPipeline):
        pipe = DDIMPipeline(unet=pipe.unet, scheduler=DDIMScheduler.from_config(pipe.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
