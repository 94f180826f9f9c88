"""Trainable networks of step 2 (paper §3.3-3.4): the generator G and the discriminator D."""
from anon_model.models.blocks import AdaIN, ResBlock, SumPooling
from anon_model.models.discriminator import MultiScaleDiscriminator
from anon_model.models.generator import AppearanceEncoder, ConditionalTranslator, FaceAnonGenerator

__all__ = [
    "AdaIN",
    "AppearanceEncoder",
    "ConditionalTranslator",
    "FaceAnonGenerator",
    "MultiScaleDiscriminator",
    "ResBlock",
    "SumPooling",
]
