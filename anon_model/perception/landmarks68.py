"""Index ranges of the iBUG 300-W 68-point scheme (shared by dlib's predictor and face-alignment's FAN)."""

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # the subject's right: image left in a frontal photo
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_BASE = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)
MOUTH = slice(48, 68)

#: (part, closed?) pairs drawn by the landmark renderer.
CONTOURS = (
    (JAW, False), (RIGHT_BROW, False), (LEFT_BROW, False), (NOSE_BRIDGE, False), (NOSE_BASE, False),
    (RIGHT_EYE, True), (LEFT_EYE, True), (OUTER_LIPS, True), (INNER_LIPS, True),
)
