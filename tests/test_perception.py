"""Perception on the bundled photos: faces, landmark geometry, pose, alignment and paste-back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anon_model.imageio import load_image
from anon_model.perception.align import paste_back, similarity_fit, transform_points
from anon_model.perception.grain import fine_detail
from anon_model.perception.landmarks68 import MOUTH, LEFT_EYE, RIGHT_EYE
from anon_model.perception.pose import euler_yxz


def test_every_bundled_photo_has_one_face_with_sane_landmarks(example_paths, analyzer):
    for path in example_paths:
        faces = analyzer(path)
        assert len(faces) == 1, path.name
        f = faces[0]
        assert f.landmarks.shape == (68, 2) and f.crop.shape == (256, 256, 3)
        eyes_y = f.landmarks[36:48, 1].mean()
        assert eyes_y < f.landmarks[MOUTH, 1].mean() < f.landmarks[8, 1], path.name  # eyes above mouth above chin
        assert f.landmarks[RIGHT_EYE, 0].mean() < f.landmarks[LEFT_EYE, 0].mean()  # subject's right eye on image left
        box_w = f.box[2] - f.box[0]
        assert 0.25 < f.inter_ocular / box_w < 0.6, path.name  # inter-ocular distance consistent with the box
        x0, y0, x1, y1 = f.box
        inside = (f.landmarks[:, 0] > x0 - 0.2 * box_w) & (f.landmarks[:, 0] < x1 + 0.2 * box_w)
        assert inside.mean() > 0.95


def test_crop_landmarks_follow_the_alignment_template(example_paths, analyzer):
    for path in example_paths:
        f = analyzer(path)[0]
        eyes = np.stack([f.crop_landmarks[RIGHT_EYE].mean(0), f.crop_landmarks[LEFT_EYE].mean(0)])
        assert np.allclose(eyes[:, 1], 118, atol=12), path.name
        assert 45 < eyes[1, 0] - eyes[0, 0] < 85
        assert np.allclose(transform_points(f.landmarks, f.matrix), f.crop_landmarks)
        assert 0.15 < f.mask.mean() < 0.7


def test_untouched_crop_pastes_back_losslessly(example_paths, analyzer):
    for path in example_paths:
        image = load_image(path)
        f = analyzer(image)[0]
        out = paste_back(image, f.crop, f.matrix, f.mask)
        changed = np.any(out != image, axis=2)
        assert changed.sum() > 0
        x0, y0, x1, y1 = f.box
        ys, xs = np.nonzero(changed)  # blending stays around the face
        assert xs.min() >= x0 - 0.5 * (x1 - x0) and xs.max() <= x1 + 0.5 * (x1 - x0)
        # PSNR inside the blended region (everything outside is bit-identical by construction of `changed`)
        diff = out.astype(np.float64)[changed] - image[changed]
        psnr = 10 * np.log10(255**2 / np.mean(diff**2))
        assert psnr > 40, (path.name, psnr)


def test_pasting_a_different_crop_changes_only_the_face_region(example_paths, analyzer):
    image = load_image(example_paths[0])
    f = analyzer(image)[0]
    out = paste_back(image, np.zeros_like(f.crop), f.matrix, f.mask)
    changed = np.any(out != image, axis=2)
    x0, y0, x1, y1 = f.box
    margin = 0.6 * (x1 - x0)
    outside = np.ones_like(changed)
    outside[int(max(0, y0 - margin)):int(y1 + margin), int(max(0, x0 - margin)):int(x1 + margin)] = False
    assert not changed[outside].any()
    assert changed.sum() > 0.3 * (x1 - x0) * (y1 - y0)


def test_pose_yaw_flips_with_a_mirrored_photo(example_paths, analyzer):
    image = load_image([p for p in example_paths if p.stem == "obama2"][0])
    yaw = analyzer(image)[0].pose[0]
    yaw_mirror = analyzer(image[:, ::-1].copy())[0].pose[0]
    assert abs(yaw) > 10
    assert np.sign(yaw) == -np.sign(yaw_mirror) and abs(abs(yaw) - abs(yaw_mirror)) < 8


@pytest.mark.parametrize("angle", [0, -25, 25])
def test_head_pose_is_never_the_mirrored_solution(analyzer, angle):
    """No upright or tilted head of the 6-face group photo gets the mirrored PnP solution (the head "upside down":
    roll near 180 degrees, yaw and pitch flipped), and turning the photo in its plane moves the roll its way (by
    less than the turn: with six points and a generic head the Euler angles of a tilted, turned head mix)."""
    import importlib.util

    group = Path(importlib.util.find_spec("insightface").submodule_search_locations[0]) / "data/images/t1.jpg"
    pil = Image.open(group).convert("RGB")
    turned = pil.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    poses = np.array([f.pose for f in analyzer(np.asarray(turned))])
    assert len(poses) >= 5 and np.all(np.abs(poses[:, 2]) < 60), poses
    if angle:
        upright = np.array([f.pose for f in analyzer(np.asarray(pil))])
        shift = poses[:, 2].mean() - upright[:, 2].mean()
        assert np.sign(shift) == -np.sign(angle) and abs(shift) > 5, (upright, poses)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_grey_alpha_palette_inputs_are_converted(example_paths, analyzer, mode):
    pil = Image.open(example_paths[0]).convert(mode)
    faces = analyzer(pil)
    assert len(faces) == 1


def test_exif_rotation_is_applied(example_paths, analyzer, tmp_path):
    pil = Image.open(example_paths[0]).convert("RGB")
    rotated = pil.transpose(Image.Transpose.ROTATE_90)  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the EXIF tag saying "rotate 90 degrees clockwise to view"
    path = tmp_path / "sideways.jpg"
    rotated.save(path, exif=exif)
    img = load_image(path)
    assert img.shape[:2] == (pil.height, pil.width)
    assert len(analyzer(img)) == 1


def test_a_face_enlarged_by_the_paste_gets_the_photos_grain(example_paths, analyzer, monkeypatch):
    """A face 4x bigger than its crop holds comes back as grainy as the photo around it (not smooth), the same grain
    every time; a face the paste does not enlarge gets none (the test above: its own crop pastes back losslessly)."""
    small = load_image(example_paths[3])  # obama2.jpg, a face of ~150 px
    big = np.asarray(Image.fromarray(small).resize((small.shape[1] * 4, small.shape[0] * 4), Image.BICUBIC), np.float32)
    photo = np.clip(big + np.random.default_rng(1).normal(0, 6, big.shape[:2])[..., None], 0, 255).astype(np.uint8)
    f = analyzer(photo)[0]
    out = paste_back(photo, f.crop, f.matrix, f.mask)
    assert np.array_equal(out, paste_back(photo, f.crop, f.matrix, f.mask))
    x0, y0, x1, y1 = (int(v) for v in f.box)
    inner = (slice(y0 + (y1 - y0) // 3, y1 - (y1 - y0) // 3), slice(x0 + (x1 - x0) // 3, x1 - (x1 - x0) // 3))
    spread = lambda im: float(np.median(np.abs(fine_detail(im.astype(np.float32), 4.0)[inner])))  # noqa: E731
    assert 0.8 < spread(out) / spread(photo) < 1.25
    monkeypatch.setattr("anon_model.perception.align.add_grain", lambda pasted, *a, **k: pasted)
    assert spread(paste_back(photo, f.crop, f.matrix, f.mask)) < 0.5 * spread(photo)  # what the grain is for


def test_similarity_fit_is_skimages_least_squares_similarity():
    """The numpy fit behind every alignment gives skimage's SimilarityTransform (Umeyama), reflections excluded, and
    None for points with no extent."""
    from skimage.transform import SimilarityTransform
    rng = np.random.default_rng(0)
    for n in (2, 5, 68):
        src = rng.normal(size=(n, 2)) * 80 + 300
        dst = rng.normal(size=(n, 2)) * 40
        np.testing.assert_allclose(similarity_fit(src, dst), SimilarityTransform.from_estimate(src, dst).params[:2],
                                   atol=1e-9)
    mirrored = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fit = similarity_fit(mirrored, mirrored * [-1, 1])
    assert np.linalg.det(fit[:, :2]) >= 0
    assert similarity_fit(np.ones((5, 2)), np.zeros((5, 2))) is None


def test_euler_angles_are_scipys_yxz():
    """Head pose's angles read off the rotation matrix are scipy's intrinsic Y-X-Z Euler angles."""
    from scipy.spatial.transform import Rotation
    for rotvec in np.random.default_rng(1).normal(size=(200, 3)) * 0.8:
        rotation = Rotation.from_rotvec(rotvec)
        np.testing.assert_allclose(euler_yxz(rotation.as_matrix()), rotation.as_euler("YXZ", degrees=True), atol=1e-9)
