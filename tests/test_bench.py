"""`anon-model bench`: per-stage timings of the real offline pipeline on one bundled photo (CPU)."""

from __future__ import annotations

import argparse
import json

import pytest

from anon_model.evaluation.bench import STAGES, add_bench_arguments, bench, run_bench
from anon_model.evaluation.dataset import EXAMPLES_DIR


@pytest.fixture(scope="module")
def result():
    return bench([EXAMPLES_DIR / "obama2.jpg"], device="cpu")


def test_every_stage_is_timed(result):
    assert result.faces == 1 and result.photos == 1
    assert set(result.stages) == set(STAGES)
    assert all(t > 0 for t in result.stages.values()), result.stages
    assert result.end_to_end > 0 and result.seconds_per_face == pytest.approx(result.end_to_end)
    # the pieces are the pipeline's: together they cost about what one pipe(image) call costs
    assert 0.3 * result.end_to_end < sum(result.stages.values()) < 3 * result.end_to_end
    assert result.peak_rss_mb > 100 and result.peak_cuda_mb is None
    assert result.step2  # says which step 2 ran (training-free or trained)


def test_json_output(capsys, monkeypatch, result):
    monkeypatch.setattr("anon_model.evaluation.bench.bench", lambda *a, **k: result)
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    assert run_bench(parser.parse_args(["--json", "--device", "cpu"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seconds_per_face"] == pytest.approx(result.seconds_per_face)
    assert data["device"] == "cpu" and set(data["stages"]) == set(STAGES) and "cpu" in data["runs"]
    assert data["faces_per_second"] == pytest.approx(1 / result.seconds_per_face)
