"""Derive ``identity.chip.FIXED_FACE_BOX`` and ``identity.facenet.FACENET_WINDOW``; measure the chip windows (prints a table).

For every face of the bundled photos (and insightface's group photo when installed): dlib's mean-face square
in the 256 crop from the crop's 68 landmarks; the mean over faces is the fixed window used when ``embed`` gets
no landmarks. Then the L2 distance between dlib's own descriptor (image, ``compute_face_descriptor``) and the
torch port on the crop, with per-face landmarks and with the fixed window. FaceNet's window is the mean MTCNN
box (in crop coordinates) of the faces with |roll| < 15 deg, widened like facenet-pytorch's ``extract_face``
with margin 32 (Sandberg's VGGFace2 preprocessing).
    python docs/chip_window.py
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import dlib
import numpy as np
import torch

from anon_model.identity.chip import FIXED_FACE_BOX, face_box
from anon_model.identity.dlib_resnet import DlibResNet
from anon_model.identity.facenet import FACENET_WINDOW
from anon_model.perception.align import transform_points
from anon_model.perception import FaceAnalyzer
from anon_model.perception.weights import dlib_model_file
from anon_model.imageio import load_image

EXAMPLES = Path(__file__).resolve().parents[1] / "anon_model" / "assets" / "examples"


def photos() -> list[Path]:
    """The bundled photos, plus insightface's 6-face group photo when that package is installed."""
    paths = sorted(EXAMPLES.glob("*.jpg"))
    spec = importlib.util.find_spec("insightface")
    if spec and spec.submodule_search_locations:
        group = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "t1.jpg"
        paths += [group] if group.is_file() else []
    return paths


def main() -> None:
    analyzer, net = FaceAnalyzer(), DlibResNet.from_dlib_file()
    rec = dlib.face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))
    boxes, mtcnn, rows = [], [], []
    for path in photos():
        image = load_image(path)
        for face in analyzer(image):
            boxes.append(face_box(face.crop_landmarks))
            if abs(face.pose[2]) < 15:
                mtcnn.append(transform_points(face.box.reshape(2, 2), face.matrix).ravel())
            shape = dlib.full_object_detection(
                dlib.rectangle(*[int(v) for v in face.box]), dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks]))
            ref = torch.tensor(np.array(rec.compute_face_descriptor(image, shape)), dtype=torch.float32)
            crop = torch.tensor(face.crop, dtype=torch.float32).permute(2, 0, 1)[None] / 255
            with torch.inference_mode():
                own = net.embed(crop, landmarks=torch.tensor(face.crop_landmarks)[None])[0]
                fixed = net.embed(crop)[0]
            rows.append((path.stem, float((own - ref).norm()), float((fixed - ref).norm())))
    boxes = np.array(boxes)
    print(f"faces: {len(boxes)}; face box mean (cx, cy, side, angle) = {tuple(np.round(boxes.mean(0), 2).tolist())}, std = {tuple(np.round(boxes.std(0), 2).tolist())}")
    print(f"FIXED_FACE_BOX in use: {FIXED_FACE_BOX}")
    x0, y0, x1, y1 = np.mean(mtcnn, axis=0)
    mx, my = 32 * (x1 - x0) / (160 - 32), 32 * (y1 - y0) / (160 - 32)
    window = np.round([x0 - mx / 2, y0 - my / 2, x1 + mx / 2, y1 + my / 2], 1)
    print(f"FaceNet window from {len(mtcnn)} frontal faces: {tuple(window.tolist())}; in use: {FACENET_WINDOW}")
    print("| photo | L2(port on crop, per-face chip; dlib) | L2(port on crop, fixed window; dlib) |\n|---|---|---|")
    for name, own, fixed in rows:
        print(f"| {name} | {own:.4f} | {fixed:.4f} |")


if __name__ == "__main__":
    main()
