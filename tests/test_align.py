"""Alignment math: known similarities recovered exactly, the scale rule, the warp puts points in place."""

from __future__ import annotations

import numpy as np
import pytest

from exprgan.preprocessing.align import (
    CanonicalFace,
    align_face,
    alignment_matrix,
    key_points,
    similarity_from_points,
    transform_points,
    warp,
)

SIZE = 256


def synthetic_landmarks(left_eye, right_eye, mouth) -> np.ndarray:
    """68 points whose eye centres and mouth-corner midpoint are exactly the given points.

    Eyes: six points on a circle around each centre; mouth: corners 48/54 symmetric about
    ``mouth``, the other lip points on an ellipse around it; jaw, brows, nose: plausible filler.
    """
    left_eye, right_eye, mouth = (np.asarray(p, dtype=np.float64) for p in (left_eye, right_eye, mouth))
    eye_vector = right_eye - left_eye
    unit = eye_vector / np.linalg.norm(eye_vector)
    down = np.array([-unit[1], unit[0]])  # perpendicular, pointing down in image axes
    radius = 0.15 * np.linalg.norm(eye_vector)
    points = np.zeros((68, 2))
    circle = [np.cos(a) * unit + np.sin(a) * down for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    points[36:42] = left_eye + radius * np.array(circle)
    points[42:48] = right_eye + radius * np.array(circle)
    lips = [np.cos(a) * unit * 1.5 + np.sin(a) * down * 0.6 for a in np.linspace(np.pi, 3 * np.pi, 20, endpoint=False)]
    points[48:68] = mouth + radius * np.array(lips)
    points[48], points[54] = mouth - 1.5 * radius * unit, mouth + 1.5 * radius * unit
    centre = (left_eye + right_eye) / 2
    jaw = [np.cos(a) * unit * 2.2 + np.sin(a) * down * 3.0 for a in np.linspace(0.1, np.pi - 0.1, 17)]
    points[0:17] = centre + np.linalg.norm(eye_vector) / 2 * np.array(jaw)[::-1]
    points[17:27] = centre - 0.3 * np.linalg.norm(eye_vector) * down + np.outer(np.linspace(-1, 1, 10), eye_vector)
    points[27:36] = centre + np.outer(np.linspace(0.1, 0.7, 9), mouth - centre)
    return points


def similarity(scale: float, angle: float, shift: tuple[float, float]) -> np.ndarray:
    """The ``[2, 3]`` matrix of ``x -> scale * R(angle) x + shift``."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


def invert(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def test_synthetic_landmarks_have_the_requested_key_points() -> None:
    points = synthetic_landmarks((10.0, 20.0), (50.0, 25.0), (32.0, 70.0))
    np.testing.assert_allclose(key_points(points), [[10, 20], [50, 25], [32, 70]], atol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_a_known_similarity_is_recovered_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = similarity(rng.uniform(0.3, 3.0), rng.uniform(-0.8, 0.8), tuple(rng.uniform(-300, 300, 2)))
    canonical = CanonicalFace()
    # a face with the canonical proportions, seen through the inverse of ``truth``
    source = transform_points(invert(truth), synthetic_landmarks(*canonical.points(SIZE)))
    matrix = alignment_matrix(source, SIZE, canonical)
    np.testing.assert_allclose(matrix, truth, atol=1e-9)
    np.testing.assert_allclose(transform_points(matrix, key_points(source)), canonical.points(SIZE), atol=1e-9)


def test_other_canonical_positions_and_sizes_are_honoured() -> None:
    canonical = CanonicalFace(left_eye=(0.3, 0.35), right_eye=(0.7, 0.35), mouth=(0.5, 0.8))
    truth = similarity(0.7, 0.3, (20.0, -5.0))
    source = transform_points(invert(truth), synthetic_landmarks(*canonical.points(112)))
    np.testing.assert_allclose(alignment_matrix(source, 112, canonical), truth, atol=1e-9)


@pytest.mark.parametrize("mouth_height", [20.0, 30.0, 45.0, 60.0])
@pytest.mark.parametrize("angle", [-0.5, 0.0, 0.4])
def test_eyes_are_level_and_centred_and_the_larger_measure_sets_the_scale(mouth_height: float, angle: float) -> None:
    # an upright face: eyes 30 px apart, mouth ``mouth_height`` below them; then rotated by ``angle``
    upright = np.array([[100.0, 100.0], [130.0, 100.0], [115.0, 100.0 + mouth_height]])
    rotated = transform_points(similarity(1.0, angle, (0.0, 0.0)), upright)
    target = CanonicalFace().points(SIZE)
    matrix = similarity_from_points(rotated, target)
    placed = transform_points(matrix, rotated)
    assert placed[0, 1] == pytest.approx(placed[1, 1], abs=1e-9)  # eyes level
    np.testing.assert_allclose(placed[:2].mean(axis=0), target[:2].mean(axis=0), atol=1e-9)  # eyes' midpoint
    eye_scale = (target[1, 0] - target[0, 0]) / 30.0
    mouth_scale = (target[2, 1] - target[0, 1]) / mouth_height
    assert np.sqrt(np.linalg.det(matrix[:, :2])) == pytest.approx(min(eye_scale, mouth_scale))
    if eye_scale <= mouth_scale:  # a short face: the eyes land exactly
        np.testing.assert_allclose(placed[:2], target[:2], atol=1e-9)
    else:  # a long face: the mouth lands at its canonical height, the eyes inside theirs
        assert placed[2, 1] == pytest.approx(target[2, 1])
        assert target[0, 0] < placed[0, 0] < placed[1, 0] < target[1, 0]


def test_coincident_eyes_are_an_error() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_from_points(np.array([[5.0, 5.0], [5.0, 5.0], [5.0, 20.0]]), CanonicalFace().points(SIZE))


def _dots(shape: tuple[int, int], centres: np.ndarray, sigma: float) -> np.ndarray:
    """A black RGB image with one Gaussian blob per centre, each in its own channel."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros((*shape, 3), dtype=np.uint8)
    for channel, (x, y) in enumerate(centres):
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        image[..., channel] = np.round(255 * blob).astype(np.uint8)
    return image


def _centroids(image: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    weights = image.astype(np.float64)
    return np.array([[(xx * w).sum() / w.sum(), (yy * w).sum() / w.sum()] for w in np.moveaxis(weights, -1, 0)])


@pytest.mark.parametrize(
    ("shape", "scale", "angle"),
    [((300, 400), 1.0, 0.3), ((200, 160), 2.5, -0.2), ((1400, 1200), 0.2, 0.5)],  # same size, zoom in, shrink
)
def test_the_warp_puts_eyes_and_mouth_on_their_canonical_positions(shape, scale, angle) -> None:
    canonical = CanonicalFace()
    truth = similarity(scale, angle, (0.0, 0.0))
    source_points = transform_points(invert(truth), canonical.points(SIZE))
    source_points += np.array([shape[1], shape[0]]) / 2 - source_points.mean(axis=0)  # inside the image
    landmarks = synthetic_landmarks(*source_points)
    image = _dots(shape, source_points, sigma=4.0 / scale)  # 4 px in the crop
    crop, matrix = align_face(image, landmarks, SIZE, canonical)
    assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(transform_points(matrix, source_points), canonical.points(SIZE), atol=1e-9)
    np.testing.assert_allclose(_centroids(crop), canonical.points(SIZE), atol=0.1)


def test_borders() -> None:
    image = np.full((50, 50, 3), 200, dtype=np.uint8)
    shift_out = np.array([[1.0, 0.0, 30.0], [0.0, 1.0, 0.0]])  # the crop's left 30 columns lie outside
    assert warp(image, shift_out, 64, "constant")[:, :25].max() == 0
    assert warp(image, shift_out, 64, "replicate")[:, :25].min() == 200
    with pytest.raises(ValueError, match="border"):
        warp(image, shift_out, 64, "wrap")
