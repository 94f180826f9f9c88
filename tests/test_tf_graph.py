"""The TensorFlow graph runner: folding each convolution's bias into it changes no embedding."""
from __future__ import annotations

import numpy as np
import torch

from anon_model.identity.facenet_casia import FaceNetCasia
from anon_model.identity.tf_graph import TFGraph


def test_folded_biases_give_the_graphs_own_embeddings(monkeypatch):
    folded = FaceNetCasia()._graph
    assert not any(op == "BiasAdd" for op, _, _ in folded.nodes.values())  # every one was folded in
    monkeypatch.setattr(TFGraph, "_fold_biases", lambda self: None)
    plain = FaceNetCasia()._graph
    assert sum(op == "BiasAdd" for op, _, _ in plain.nodes.values()) > 100
    faces = torch.from_numpy(np.random.default_rng(0).normal(0, 1, (3, 160, 160, 3)).astype(np.float32))
    with torch.inference_mode():
        a, b = folded(faces, "embeddings"), plain(faces, "embeddings")
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert float(torch.cdist(a, a)[0, 1]) > 0.1  # different inputs, different embeddings
