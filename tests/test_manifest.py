"""The audit manifest (per-process parts, merge, what counts as finished) and `anon-model report`; no models load."""

from __future__ import annotations

import json

import numpy as np

from anon_model.batch import manifest
from anon_model.batch.report import summarize
from anon_model.cli import main
from anon_model.output import FaceRecord


def _record(box=(10, 20, 110, 140), treatment="anonymized", reason="", distance=0.9) -> FaceRecord:
    """A face record as the pipeline returns it, pixels and all."""
    crop = np.full((256, 256, 3), 7, np.uint8)
    return FaceRecord(box=np.array(box, float), score=0.99, landmarks=np.zeros((68, 2)), pose=np.zeros(3), crop=crop,
                      anonymized=crop, landmarks_crop=np.zeros((68, 2)), delegate_mixture=[3, 5],
                      geometry_delegate=4, identity_distance=distance, identity_threshold=0.65, guard_passed=True,
                      treatment=treatment, treatment_reason=reason)


def _face(output: str, box, treatment="anonymized", reason="", distance=0.9) -> dict:
    return {"record": "face", "source": f"in/{output}", "output": output, "seed": 0, "pipeline": {"id": "test"},
            **manifest.face_entry(_record(box, treatment, reason, distance), 0)}


def _write(outdir, output: str, data: bytes = b"png") -> int:
    (outdir / output).write_bytes(data)
    return len(data)


def test_a_face_line_holds_what_was_done_and_nothing_of_the_face():
    entry = manifest.face_entry(_record(), 2)
    assert entry["face"] == 2 and entry["box"] == [10.0, 20.0, 110.0, 140.0] and entry["treatment"] == "anonymized"
    assert entry["guard"] == {"distance": 0.9, "threshold": 0.65, "greyscale": False, "passed": True, "attempts": 1}
    assert entry["delegates"] == {"appearance": [3, 5], "geometry": 4}
    text = json.dumps(entry)  # plain JSON: no arrays of pixels, landmarks or embeddings
    assert len(text) < 400 and not {"crop", "anonymized", "landmarks", "cam", "feature"} & set(entry)


def test_parts_merge_into_one_manifest_and_a_cut_off_file_is_not_finished(tmp_path):
    size = _write(tmp_path, "a.png")
    with manifest.ManifestPart(tmp_path, 0) as part:
        part.add([_face("a.png", (0, 0, 50, 60)),
                  manifest.file_entry("in/a.jpg", "a.png", status="done", counts={"anonymized": 1}, size=size)])
    with manifest.ManifestPart(tmp_path, 1) as part:
        part.add([_face("b.png", (0, 0, 30, 30)),
                  manifest.file_entry("in/b.jpg", "b.png", status="failed", error="in/b.jpg: broken")])
        part.add([_face("c.png", (0, 0, 30, 30))])  # killed before c's file line
    with (tmp_path / ".manifest" / "part-1.jsonl").open("a") as fh:
        fh.write('{"record": "face", "output": "d.p')  # and in the middle of a line
    _write(tmp_path, "c.png")

    assert manifest.finished(tmp_path) == {"a.png"}  # b failed, c was never recorded
    merged = manifest.merge(tmp_path)
    assert not (tmp_path / ".manifest").exists() and merged == tmp_path / manifest.MANIFEST
    lines = [json.loads(line) for line in merged.read_text().splitlines()]
    assert [(line["output"], line["record"]) for line in lines] == [
        ("a.png", "face"), ("a.png", "file"), ("b.png", "face"), ("b.png", "file")]

    # a rerun redoes b: its new lines replace the old ones, a stays
    size_b = _write(tmp_path, "b.png", b"better")
    with manifest.ManifestPart(tmp_path, 0) as part:
        part.add([manifest.file_entry("in/b.jpg", "b.png", status="done", size=size_b)])
    assert manifest.finished(tmp_path) == {"a.png", "b.png"}  # parts not merged yet count too
    manifest.merge(tmp_path)
    groups = manifest.read_groups(tmp_path)
    assert [line["record"] for line in groups["b.png"]] == ["file"] and groups["b.png"][0]["status"] == "done"
    (tmp_path / "a.png").write_bytes(b"pn")  # an output that is not what was recorded (size) is not finished
    assert manifest.finished(tmp_path) == {"b.png"}


def test_report_counts_treatments_smallest_face_and_failures(tmp_path, capsys):
    size = _write(tmp_path, "a.png")
    with manifest.ManifestPart(tmp_path, 0) as part:
        part.add([_face("a.png", (0, 0, 80, 100), distance=0.7),
                  {**_face("a.png", (200, 10, 224, 40), "obscured", "too small for step 2 (24 px < 40 px)"), "face": 1},
                  manifest.file_entry("in/a.jpg", "a.png", status="done", size=size)])
        part.add([manifest.file_entry("in/x.jpg", "x.png", status="failed", error="in/x.jpg: not an image")])
    manifest.merge(tmp_path)
    s = summarize(tmp_path)
    assert (s["files"], s["done"], s["failed"], s["faces"]) == (2, 1, 1, 2)
    assert s["treatments"] == {"anonymized": 1, "obscured": 1} and s["reasons"] == {"too small for step 2": 1}
    assert s["smallest_face"] == {"source": "in/a.png", "face": 1, "side_px": 24.0}
    assert s["closest_guard"]["distance"] == 0.7
    assert s["failures"] == [{"source": "in/x.jpg", "error": "in/x.jpg: not an image"}]

    assert main(["report", str(tmp_path)]) == 1  # a file failed
    out = capsys.readouterr().out
    assert "2 file(s): 1 done, 1 failed" in out and "smallest face: 24 px" in out and "not an image" in out
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "holds no manifest.jsonl" in capsys.readouterr().err
