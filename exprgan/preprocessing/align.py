"""Face alignment: a similarity transform that puts the eyes level at fixed positions.

Canonical positions (:class:`CanonicalFace`; fractions of the crop side, ``(x, y)`` from the
top-left; "left" is the image's left, the subject's right eye): left eye centre (0.365, 0.400),
the mean of landmarks 36-41; right eye centre (0.635, 0.400), the mean of 42-47; mouth centre
(0.500, 0.720), the midpoint of the mouth corners 48 and 54. The interocular distance is 0.27
of the side and the mouth 0.32 below the eyes, so a frontal face fits from the forehead to the
chin (the chin lands near 0.92).

The transform (:func:`alignment_matrix`) is a similarity (rotation, one scale, shift):

- rotation: the eye line becomes the canonical eye line (level), exactly;
- shift: the midpoint of the eyes lands exactly on the canonical midpoint;
- scale: the smaller of (canonical / face) interocular distance and (canonical / face)
  eye-to-mouth height (measured perpendicular to the eye line). On a face with the
  canonical proportions both agree and all three points land exactly; on most frontal faces
  (mouth height about 1.1 interocular distances, below the canonical 1.19) the eyes set the
  scale and land exactly; on a turned head (eyes closer together) or a long face the mouth
  sets it, so the face is never zoomed past the canonical mouth height.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MOUTH_CORNERS = (48, 54)
BORDERS = ("constant", "reflect", "replicate")


@dataclass(frozen=True)
class CanonicalFace:
    """Where the eye centres and the mouth centre go, ``(x, y)`` as fractions of the crop side."""

    left_eye: tuple[float, float] = (0.365, 0.400)  # the eye on the image's left
    right_eye: tuple[float, float] = (0.635, 0.400)  # the eye on the image's right
    mouth: tuple[float, float] = (0.500, 0.720)  # the midpoint of the mouth corners

    def points(self, size: int) -> np.ndarray:
        """``float64 [3, 2]``: left eye, right eye, mouth, in pixels of a ``size`` crop."""
        return np.array([self.left_eye, self.right_eye, self.mouth], dtype=np.float64) * size

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-friendly positions for ``meta.json``."""
        return {"left_eye": list(self.left_eye), "right_eye": list(self.right_eye), "mouth": list(self.mouth)}


def key_points(landmarks: np.ndarray) -> np.ndarray:
    """``float64 [3, 2]``: left eye centre, right eye centre, mouth centre of 68 landmarks ``[68, 2]``."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return np.stack([landmarks[part].mean(axis=0) for part in (LEFT_EYE, RIGHT_EYE, list(MOUTH_CORNERS))])


def _height(eye_left: np.ndarray, eye_right: np.ndarray, mouth: np.ndarray) -> float:
    """Signed distance of ``mouth`` from the eye line (positive below it, in image axes)."""
    eye_vector = eye_right - eye_left
    offset = mouth - (eye_left + eye_right) / 2
    return float(eye_vector[0] * offset[1] - eye_vector[1] * offset[0]) / float(np.hypot(*eye_vector))


def similarity_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ``[2, 3]`` similarity mapping key points ``source`` ([3, 2]: eyes, mouth) onto ``target``.

    See the module docstring for the rule. ``source`` eyes must be distinct points.
    """
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    source_eyes, target_eyes = source[1] - source[0], target[1] - target[0]
    source_distance = float(np.hypot(*source_eyes))
    if source_distance < 1e-9:
        raise ValueError("the two eye centres coincide: cannot align")
    scale = float(np.hypot(*target_eyes)) / source_distance
    source_height, target_height = _height(*source), _height(*target)
    if source_height > 1e-9 and target_height > 0:
        scale = min(scale, target_height / source_height)
    angle = np.arctan2(target_eyes[1], target_eyes[0]) - np.arctan2(source_eyes[1], source_eyes[0])
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = (target[0] + target[1]) / 2 - linear @ ((source[0] + source[1]) / 2)
    return np.concatenate([linear, shift[:, None]], axis=1)


def alignment_matrix(landmarks: np.ndarray, size: int, canonical: CanonicalFace | None = None) -> np.ndarray:
    """The ``[2, 3]`` matrix taking image pixels to pixels of the aligned ``size`` x ``size`` crop."""
    return similarity_from_points(key_points(landmarks), (canonical or CanonicalFace()).points(size))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` ``[N, 2]`` mapped by the ``[2, 3]`` affine ``matrix``."""
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int, border: str = "constant") -> np.ndarray:
    """The ``size`` x ``size`` crop of ``image`` (``uint8 [H, W, C]``) under ``matrix`` (bilinear).

    Where the face is shrunk, the image is first reduced with area averaging so the crop does
    not alias. Pixel centres follow OpenCV's convention (pixel ``(i, j)`` at ``(j, i)``).

    Args:
        border: outside the image: ``"constant"`` (black), ``"reflect"`` or ``"replicate"``.
    """
    modes = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}
    if border not in modes:
        raise ValueError(f"border must be one of {', '.join(BORDERS)}, got {border!r}")
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.75:  # reduce first: bilinear sampling alone would alias
        height, width = image.shape[:2]
        new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
        # pixel centres: x_small = (x + 0.5) * new_width / width - 0.5
        sx, sy = new_width / width, new_height / height
        reduce = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        matrix = matrix @ np.linalg.inv(reduce)
    return cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=modes[border]
    )


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 256,
    canonical: CanonicalFace | None = None,
    border: str = "constant",
) -> tuple[np.ndarray, np.ndarray]:
    """The aligned ``uint8 [size, size, 3]`` crop of the face with ``landmarks``, and its ``[2, 3]`` matrix."""
    matrix = alignment_matrix(landmarks, size, canonical)
    return warp(image, matrix, size, border), matrix
