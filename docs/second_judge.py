"""What docs/antiface.py and docs/guard_margin.py share: their test photos, the independent judge's verdict on an
anonymized face, and rewriting a markdown page's generated table."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from anon_model.evaluation.recognizers import FaceNetCasiaRecognizer

HERE = Path(__file__).resolve().parent


def photos() -> list[np.ndarray]:
    """insightface's t1.jpg, the astronaut photo and Grace Hopper's portrait (none is a bank person)."""
    import insightface
    import matplotlib

    paths = [Path(insightface.__file__).parent / "data/images/t1.jpg", HERE.parent / "anon_model/assets/examples/astronaut.jpg",
             Path(matplotlib.get_data_path()) / "sample_data/grace_hopper.jpg"]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def facenet_distance(judge: FaceNetCasiaRecognizer, original: np.ndarray, output: np.ndarray, record) -> float:
    """FaceNet-CASIA's L2 distance between a face of ``original`` and the same place in ``output`` (at the original's
    landmarks); below 1.0 it is still the same person."""
    at = [SimpleNamespace(landmarks=record.landmarks)]
    return float(judge.score(judge.embed(original, at), judge.embed(output, at))[0, 0])


def write_table(page: str, header: list[str], rows: list[str]) -> None:
    """Replace the table between ``<!-- table -->`` and ``<!-- /table -->`` of docs/``page``."""
    path = HERE / page
    head, _, rest = path.read_text().partition("<!-- table -->")
    _, _, tail = rest.partition("<!-- /table -->")
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows])
    path.write_text(f"{head}<!-- table -->\n{table}\n<!-- /table -->{tail}")
