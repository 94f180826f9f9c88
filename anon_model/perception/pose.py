"""Head pose (yaw, pitch, roll) from 68 landmarks with a generic 3-D face and a PnP solve."""

from __future__ import annotations

import cv2
import numpy as np

# A generic head in camera-like axes (x right, y down, z away from the camera), millimetre-ish units:
# nose tip, chin, outer eye corners, mouth corners.  A frontal face then has rotation ~ identity.
_MODEL = np.array(
    [[0.0, 0.0, 0.0], [0.0, 330.0, 65.0], [-225.0, -170.0, 135.0], [225.0, -170.0, 135.0],
     [-150.0, 150.0, 125.0], [150.0, 150.0, 125.0]]
)
_INDICES = [30, 8, 36, 45, 48, 54]


def head_pose(landmarks: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Return (yaw, pitch, roll) in degrees; yaw > 0 when the face turns towards the image's right."""
    h, w = image_shape[:2]
    focal = float(max(h, w))
    camera = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]], np.float64)
    points = np.asarray(landmarks, np.float64)[_INDICES]
    # SQPnP finds the global solution; Levenberg-Marquardt from there refines it. Started cold, the iterative
    # solver alone can land on the mirrored solution (the head "upside down", roll near 180 degrees, yaw flipped).
    ok, rvec, tvec = cv2.solvePnP(_MODEL, points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if ok:
        ok, rvec, _ = cv2.solvePnP(_MODEL, points, camera, None, rvec, tvec, useExtrinsicGuess=True,
                                   flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.zeros(3)
    yaw, pitch, roll = euler_yxz(cv2.Rodrigues(rvec)[0])
    return np.array([yaw, -pitch, roll])


def euler_yxz(rotation: np.ndarray) -> tuple[float, float, float]:
    """Degrees (yaw, pitch, roll) with ``rotation = R_y(yaw) R_x(pitch) R_z(roll)``, |pitch| <= 90: what scipy's
    ``Rotation.as_euler("YXZ")`` gives, read off the matrix here because importing scipy.spatial costs 0.2 s of a 2 s
    ``--replace-with blur`` run (issue 25)."""
    r = rotation
    pitch = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    return (float(np.degrees(np.arctan2(r[0, 2], r[2, 2]))), float(np.degrees(pitch)),
            float(np.degrees(np.arctan2(r[1, 0], r[1, 1]))))
