"""Where the time goes: ``anon-model bench --json`` per stage on a folder of portraits and one of group photos.

    python docs/profile.py              # -> docs/profile.md (about 2 minutes on 2 CPU cores)

The portraits are 8 held-out U.S. Congress portraits (``docs/congress_bank.py``'s split; one face each, 225x275); the
group photos are insightface's t1.jpg (6 faces), Grace Hopper's portrait and the bundled astronaut photo. Each folder
is timed in a fresh process with 2 torch threads, one warm-up pass, then two timed passes (``--repeat 2``). For where
the time goes inside a stage, sample the CLI itself (``pip install py-spy``):

    py-spy record -o profile.svg -- anon-model anonymize FOLDER -o /tmp/out
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from congress_bank import IMAGES, split  # noqa: E402
from second_judge import HERE, photos, write_table  # noqa: E402

from anon_model.pipeline import STAGES  # noqa: E402


def folders(root: Path) -> dict[str, Path]:
    """The two folders timed, written under ``root``."""
    portraits, groups = root / "portraits", root / "groups"
    portraits.mkdir()
    groups.mkdir()
    for p in split()["held-out"][:8]:
        shutil.copy(IMAGES / f"{p}.jpg", portraits)
    for i, rgb in enumerate(photos()):
        Image.fromarray(np.asarray(rgb)).save(groups / f"group{i}.png")
    return {"8 portraits (1 face each)": portraits, "3 group photos": groups}


def bench(folder: Path) -> dict:
    """``anon-model bench --json`` on every photo of ``folder``, in a process of its own."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(["anon-model", "bench", "--json", "--repeat", "2", "--threads", "2",
                          *map(str, sorted(folder.iterdir()))], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in folders(Path(tmp)).items():
            r = bench(folder)
            per_face = r["stage_seconds_per_face"]
            total = sum(per_face.values()) or 1.0
            cells = [f"{per_face.get(s, 0.0):.3f} ({100 * per_face.get(s, 0.0) / total:.0f} %)" for s in STAGES]
            rows.append(f"| {name} | {r['faces']} | {r['seconds_per_face']:.3f} | " + " | ".join(cells) + " |")
            print(name, json.dumps(per_face), file=sys.stderr)
    write_table("profile.md", ["folder", "faces", "s/face end to end", *STAGES], rows)
    print((HERE / "profile.md").read_text())


if __name__ == "__main__":
    main()
