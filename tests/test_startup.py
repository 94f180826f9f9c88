"""Start fast (issues 16, 25): `anon-model --help` loads no torch, a sub-command's module is imported only when it is
used, a run that only obscures faces loads no torch at all, and the detector runs without torch or torchvision while
giving facenet-pytorch's boxes and torchvision's suppression."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anon_model import cli
from anon_model.evaluation import bench as bench_module
from anon_model.evaluation.bench import STAGES, BenchResult, add_bench_arguments, measure_startup, run_bench
from anon_model.imageio import load_image
from anon_model.perception.mtcnn import MTCNN, ONNX_FOLDER
from anon_model.perception.mtcnn_nets import load_net
from anon_model.perception.nms import nms, nms_one_image
from anon_model.perception.pooling import MaxPool2d

GROUP = Path(importlib.util.find_spec("insightface").submodule_search_locations[0]) / "data" / "images" / "t1.jpg"
EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"


def test_help_loads_neither_torch_nor_any_command():
    code = ("import json, sys\nfrom anon_model.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "bench" in done.stdout and "anon_model.cli" in loaded
    assert not {"torch", "torchvision", "anon_model.pipeline", "anon_model.evaluation", "anon_model.video"} & loaded


def test_a_commands_options_are_added_when_it_is_used(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["bench", "--json", "--device", "cpu"])
    assert args.json and args.run is run_bench
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--help"])
    assert "--dataset" in capsys.readouterr().out


def test_a_command_whose_extra_is_missing_says_which(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the [eval] extra were not installed
    parser = argparse.ArgumentParser()
    cli._add_optional(parser.add_subparsers(parser_class=cli._LazyParser), "plots", "draw", "matplotlib",
                      "add", "run")
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["plots", "--anything"])
    assert str(exited.value.code) == ("error: anon-model plots needs matplotlib, which is not installed: "
                                      "pip install 'anon_model[eval]'")


def test_mtcnn_gives_facenet_pytorchs_boxes_and_scores():
    """The same faces, to a thousandth of a pixel (onnxruntime sums the networks in another order than torch)."""
    from facenet_pytorch import MTCNN as Reference  # imports torchvision: fine in a test

    reference, ours = Reference(keep_all=True, min_face_size=20), MTCNN(min_size=20)
    group = load_image(GROUP)
    h, w = group.shape[:2]
    images = [group, load_image(EXAMPLES / "biden.jpg"), np.ascontiguousarray(group[:, ::-1]),
              group[h // 7:, w // 9: w - w // 4], cv2.resize(group, (w // 2, h // 2), interpolation=cv2.INTER_AREA)]
    for image in images:
        before = image.copy()
        boxes, probs = reference.detect(image)
        got_boxes, got_probs = ours.detect(image)
        assert len(boxes) >= 1 and np.array_equal(image, before) and got_boxes.shape == np.shape(boxes)
        np.testing.assert_allclose(got_boxes, np.asarray(boxes, np.float64), rtol=0, atol=1e-3)
        np.testing.assert_allclose(got_probs, np.asarray(probs, np.float64), rtol=0, atol=1e-5)
    assert ours.detect(np.full((64, 64, 3), 128, np.uint8))[0].shape == (0, 4)
    assert ours.detect(np.zeros((15, 15, 3), np.uint8))[0].shape == (0, 4)  # smaller than the smallest face


@pytest.mark.parametrize("n", [60, 1500])  # 1500 boxes: torchvision's batched_nms takes its per-class path
def test_nms_is_torchvisions(n):
    from torchvision.ops import batched_nms
    from torchvision.ops import nms as reference

    rng = np.random.default_rng(n)
    corner = rng.integers(0, 200, (n, 2))  # whole pixels: overlaps exactly at the thresholds occur
    boxes = np.concatenate([corner, corner + rng.integers(4, 60, (n, 2))], axis=1).astype(np.float32)
    scores = rng.choice([0.5, 0.7, 0.9, 0.99], n).astype(np.float32)  # many ties
    b, s = torch.from_numpy(boxes), torch.from_numpy(scores)
    for iou in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(nms(boxes, scores, iou), reference(b, s, iou).numpy())
        ours = nms_one_image(boxes, scores, iou)
        theirs = batched_nms(b, s, torch.zeros(n, dtype=torch.int64), iou).numpy()
        # the same boxes by decreasing score; above 16 boxes torch's own sort leaves ties in no set order, ours stable
        assert sorted(ours) == sorted(theirs) and np.array_equal(scores[ours], scores[theirs])
        if boxes.size <= 4000:
            np.testing.assert_array_equal(ours, theirs)


def test_the_shipped_mtcnn_files_compute_facenet_pytorchs_networks():
    """``anon_model/assets/mtcnn`` holds what ``mtcnn_nets.export_onnx`` writes from facenet-pytorch's weights."""
    import onnxruntime

    rng = np.random.default_rng(0)
    for name, shape in (("pnet", (1, 3, 57, 83)), ("rnet", (5, 3, 24, 24)), ("onet", (3, 3, 48, 48))):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        session = onnxruntime.InferenceSession(str(ONNX_FOLDER / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            want = load_net(name)(torch.from_numpy(x))
        for got, ref in zip(session.run(None, {"input": x}), want):
            np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=1e-5)


def test_obscuring_a_folder_loads_no_torch(tmp_path):
    """``--replace-with blur`` with the offline default perception runs on the ``Obscurer``: no torch (1.4 s), and
    no scipy or skimage (0.2 s): alignment and head pose are read with numpy and OpenCV."""
    code = ("import json, sys\nfrom anon_model.cli import main\n"
            f"code = main(['anonymize', {str(EXAMPLES / 'biden.jpg')!r}, '-o', {str(tmp_path)!r}, '--replace-with', "
            "'blur', '-q'])\nprint(json.dumps([code, sorted(sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and (tmp_path / "biden.png").is_file()
    assert "anon_model.obscuring" in loaded and not {"torch", "anon_model.pipeline", "scipy", "skimage"} & set(loaded)
    face = json.loads((tmp_path / "manifest.jsonl").read_text().splitlines()[0])
    assert face["treatment"] == "obscured" and face["pipeline"]["step2"] == face["pipeline"]["bank"] == "none"


@pytest.mark.parametrize("env", [{}, {"TORCH_HOME": "/somewhere/th"}, {"XDG_CACHE_HOME": "/elsewhere"}])
def test_torch_hubs_folder_is_found_without_torch(env, monkeypatch):
    code = "import sys\nfrom anon_model.perception.weights import hub_dir\nprint(hub_dir(), 'torch' in sys.modules)"
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCH_HOME", "XDG_CACHE_HOME")} | env
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean)
    torchs = subprocess.run([sys.executable, "-c", "import torch; print(torch.hub.get_dir())"], capture_output=True,
                            text=True, check=True, env=clean)
    assert ours.stdout.split() == [torchs.stdout.strip(), "False"]


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pooling_gives_torchs_values_in_torchs_layout(channels_last):
    x = torch.randn(2, 8, 33, 31)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    ours, torchs = MaxPool2d(3, 2, ceil_mode=True)(x), torch.nn.MaxPool2d(3, 2, ceil_mode=True)(x)
    assert torch.equal(ours, torchs) and ours.stride() == torchs.stride()


def test_bench_json_reports_startup_and_seconds_per_face(capsys, monkeypatch):
    asked = []
    result = BenchResult(device="cpu", photos=1, faces=2, repeats=1, stages=dict.fromkeys(STAGES, 0.1), end_to_end=0.5,
                         startup_seconds=2.5)
    monkeypatch.setattr(bench_module, "bench", lambda *a, **k: asked.append(k) or result)
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    assert run_bench(parser.parse_args(["--json", "--device", "cpu"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert asked[0]["startup"] is True
    assert data["startup_seconds"] == 2.5 and data["seconds_per_face"] == 0.25


def test_startup_is_measured_in_a_new_process():
    seconds = measure_startup(None, "cpu")
    assert 0.1 < seconds < 300
