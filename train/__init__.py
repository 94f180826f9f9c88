"""Training of the conditional generator (paper §3.4): ``accelerate launch train/train.py --config NAME ...``."""
