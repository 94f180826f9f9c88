"""The delegate bank of paper §3.2, split by job.

* ``store``: ``DelegateBank`` (faces, their features, landmarks and poses; the queries VAA/GSA make; files);
* ``build``: a bank from photos or analyzed faces; ``synth``: a bank of synthetic faces (diffusers);
* ``embedder``: the bank's feature space, and whether an identity network Psi shares it.

The default bank (``anon_model/assets/bank``) is built once from the bundled public-domain photos and shipped
prebuilt (about 100 kB: 5 crops as JPEG): loading it is instant and needs no write to the user's disk, and
``tests/test_bank.py`` checks that rebuilding it reproduces it. Its feature space is the offline port of dlib's
ResNet; ArcFace (insightface's ``w600k_r50.onnx``, the paper's choice) is used for banks built where that model is.
"""
from anon_model.bank.embedder import Embedder, load_embedder
from anon_model.bank.store import DEFAULT_BANK_DIR, DelegateBank
from anon_model.bank.synth import DEFAULT_SYNTH_MODEL

__all__ = ["DelegateBank", "Embedder", "load_embedder", "DEFAULT_BANK_DIR", "DEFAULT_SYNTH_MODEL"]
