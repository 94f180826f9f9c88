"""Dataset scale (issue 15): batches, `accelerate launch` with 2 processes (gloo, CPU), killed half-way and resumed.

Every face is blurred (``--replace-with blur``) so the runs time the batch machinery, not step 2.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from _photos import small_photos
from anon_model.batch.manifest import read_groups
from anon_model.cli import main



def _launch(port: int) -> list[str]:
    """`accelerate launch` of `python -m anon_model` in 2 CPU processes (OFFLINE.md: --multi_gpu gives gloo)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
            "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), "-m",
            "anon_model"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipe():
    from anon_model import AnonPipeline

    return AnonPipeline.from_pretrained(None, device="cpu")


@pytest.fixture()
def shared(pipe, monkeypatch):
    from anon_model.pipeline import AnonPipeline

    monkeypatch.setattr(AnonPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: pipe))
    return pipe


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every worker (torch's elastic agent starts the workers in sessions of their own)."""
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for member in family:
        member.kill()
    psutil.wait_procs(family)
    proc.wait()


def _manifest(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "manifest.jsonl").read_text().splitlines()]


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_batches_give_the_same_results_and_a_bad_photo_fails_alone(shared, tmp_path, capsys):
    small_photos(tmp_path / "in", 4)
    (tmp_path / "in" / "p02.jpg").write_bytes((tmp_path / "in" / "p02.jpg").read_bytes()[:1500])  # truncated
    for size in ("1", "3"):
        code = main(["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / size), "--replace-with", "blur",
                     "--batch-size", size, "--workers", "2", "-q"])
        assert code == 1 and "p02.jpg" in capsys.readouterr().err
    one, three = _pixels(tmp_path / "1"), _pixels(tmp_path / "3")
    assert sorted(one) == ["p00.png", "p01.png", "p03.png"] == sorted(three)
    assert all(np.array_equal(one[k], three[k]) for k in one)
    assert _manifest(tmp_path / "1") == _manifest(tmp_path / "3")  # the same audit, line for line


def test_two_processes_killed_half_way_resume_and_match_one_process(shared, tmp_path):
    """2 processes (gloo) write every photo once; killed after the first results and relaunched, they finish only
    the rest; the manifest's faces equal those of a one-process run."""
    photos = small_photos(tmp_path / "in", 8, height=200)
    shutil.copy(photos[0], tmp_path / "in" / "p08.jpg")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [*_launch(_free_port()), "anonymize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--replace-with",
           "blur", "--batch-size", "1", "-q"]  # one photo per call, so that a kill can land between two records

    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "out" / ".manifest"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if any('"record": "file"' in p.read_text() for p in parts.glob("part-*.jsonl")):
            break
        time.sleep(0.05)
    _kill_all(first)
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    # Only recorded photos count as done: one written but killed before its manifest line is rightly redone.
    recorded = {name for name, lines in read_groups(tmp_path / "out").items() if lines[-1]["status"] == "done"}
    early = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in written if name in recorded}
    time.sleep(1)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == written  # nothing of the first run goes on
    assert 1 <= len(early) < 9, f"the kill should land half-way, {len(early)} of 9 were recorded"

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl"] + [f"p{i:02d}.png" for i in range(9)]
    assert all(out.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in early.items())  # not redone
    lines = _manifest(out)
    files = [line["output"] for line in lines if line["record"] == "file"]
    assert sorted(files) == sorted(set(files)) and len(files) == 9  # each photo recorded once

    assert main(["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / "one"), "--replace-with", "blur", "-q"]) == 0
    faces = [(line["output"], line["box"]) for line in lines if line["record"] == "face"]
    assert faces == [(line["output"], line["box"]) for line in _manifest(tmp_path / "one") if line["record"] == "face"]
    assert len(faces) >= 9
    one, two = _pixels(tmp_path / "one"), _pixels(out)
    assert all(np.array_equal(one[k], two[k]) for k in one)


def test_worker_processes_give_the_same_photos_and_records_and_a_bad_photo_fails_alone(tmp_path, capsys):
    """`--jobs 2` (two local worker processes taking photos as they finish) writes what one process writes, pixel for
    pixel, with the same manifest (in another order) and the same failure for a truncated photo."""
    small_photos(tmp_path / "in", 6)
    (tmp_path / "in" / "p02.jpg").write_bytes((tmp_path / "in" / "p02.jpg").read_bytes()[:1500])  # truncated
    for jobs in ("1", "2"):
        code = main(["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / jobs), "--replace-with", "blur",
                     "--jobs", jobs, "--batch-size", "1"])
        err = capsys.readouterr().err
        assert code == 1 and "p02.jpg" in err and "5 done" in err and "1 failed" in err
        assert ("2 processes" in err) == (jobs == "2")
    one, two = _pixels(tmp_path / "1"), _pixels(tmp_path / "2")
    assert sorted(one) == [f"p0{i}.png" for i in (0, 1, 3, 4, 5)] == sorted(two)
    assert all(np.array_equal(one[k], two[k]) for k in one)
    key = lambda line: json.dumps(line, sort_keys=True)  # noqa: E731
    assert sorted(map(key, _manifest(tmp_path / "1"))) == sorted(map(key, _manifest(tmp_path / "2")))


def test_anonymizing_in_worker_processes_gives_the_photos_one_process_gives(tmp_path, capsys):
    """The pipeline in two worker processes: each photo's result is the one it gets alone (same seed)."""
    small_photos(tmp_path / "in", 3)
    for jobs in ("1", "2"):
        assert main(["anonymize", str(tmp_path / "in"), "-o", str(tmp_path / jobs), "--jobs", jobs, "-q"]) == 0
    one, two = _pixels(tmp_path / "1"), _pixels(tmp_path / "2")
    assert len(one) == 3 and sorted(one) == sorted(two) and all(np.array_equal(one[k], two[k]) for k in one)


def test_a_folder_is_shared_among_the_cores_only_where_that_pays(monkeypatch):
    """By default: one worker per core when anonymizing enough photos on the CPU; one process for a few photos, a run
    that only obscures, a video, a GPU, or under accelerate launch; --jobs wins, up to one photo each."""
    from anon_model.batch import runner
    from anon_model.cli import build_parser

    monkeypatch.setattr(runner, "_cores", lambda: 2)
    monkeypatch.setattr(runner.glob, "glob", lambda pattern: [])  # no NVIDIA device
    photos = [(Path(f"p{i}.jpg"), Path(f"p{i}.png")) for i in range(8)]
    args = lambda *extra: build_parser().parse_args(["anonymize", "in", "-o", "out", *extra])  # noqa: E731
    single, launched = runner.Processes(), runner.Processes(rank=0, count=2)
    assert runner.local_jobs(args(), single, photos) == 2
    assert runner.local_jobs(args(), single, photos[:7]) == 1  # fewer than 4 photos a core
    assert runner.local_jobs(args("--replace-with", "blur"), single, photos) == 1
    assert runner.local_jobs(args(), single, [*photos, (Path("clip.mp4"), Path("clip.mp4"))]) == 1
    assert runner.local_jobs(args("--device", "cuda"), single, photos) == 1
    assert runner.local_jobs(args(), launched, photos) == 1
    assert runner.local_jobs(args("--jobs", "3"), single, photos[:2]) == 2
    assert runner.local_jobs(args("--jobs", "2", "--replace-with", "blur"), single, photos) == 2
    monkeypatch.setattr(runner.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    assert runner.local_jobs(args(), single, photos) == 1
