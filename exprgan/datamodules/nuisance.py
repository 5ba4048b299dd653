"""What an aligned in-the-wild crop keeps of the photograph: pose, light, occluders, blur, noise.

Alignment (``exprgan preprocess``) puts the eyes and mouth of a photograph at canonical points,
but not everything else: a turned head stays narrower on one side, some roll remains, the light
falls from one side, sunglasses, hair or a hand cover part of the face, and the camera adds blur
and noise. :func:`sample_nuisance` draws these per face from a NumPy ``Generator`` at a strength
in ``[0, 1]`` that scales every range; :func:`apply_nuisance` applies them to a ``uint8
[S, S, 3]`` image. A default :class:`Nuisance` (and every draw at strength 0) is the identity:
the input comes back unchanged, byte for byte.

Steps, in the order of a photograph: the occluder (it moves with the head), the pose (yaw as
a horizontal squash by ``cos(yaw)`` about an axis off the centre, roll as a rotation, a small
shift; revealed borders repeat the edge pixels), the light (brightness, contrast and a linear
gradient), then the camera's Gaussian blur and pixel noise. Positions and sizes are fractions
of the image side, so one draw means the same at every resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from exprgan.datamodules.face_renderer import EYE_SPACING, EYE_Y, ZOOM

# the ranges at strength 1
MAX_YAW = math.radians(30)
MAX_ROLL = math.radians(10)  # alignment removes most roll
MAX_SHIFT = 0.04  # of the side
MAX_BRIGHTNESS = 0.15  # of the range
MAX_CONTRAST = 0.3  # contrast in [1 - 0.3, 1 + 0.3]
MAX_GRADIENT = 0.4  # side light: the brightness changes by up to +-40% across the crop
OCCLUDER_PROBABILITY = 0.3
MAX_BLUR = 1.0 / 64  # sigma: one pixel at 64 px
MAX_NOISE = 0.03  # standard deviation, of the range

# canonical landmark positions in the crop, as fractions of the side (face_renderer's aligned layout)
_EYE_X = ZOOM * EYE_SPACING  # offset of each eye from the centre
_EYE_Y = 0.5 + ZOOM * EYE_Y

_HAIR = ((20, 15, 12), (70, 45, 25), (120, 80, 40), (150, 150, 150))
_HAND = ((241, 194, 160), (224, 172, 130), (198, 134, 86), (141, 85, 54))


@dataclass(frozen=True)
class Occluder:
    """An ellipse or a bar in front of the face (fractions of the side); soft-edged, opaque."""

    kind: str  # "glasses": a dark bar across both eyes; "patch": hair or a hand over one corner
    x: float
    y: float
    half_width: float
    half_height: float
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Nuisance:
    """One face's nuisance; the defaults change nothing."""

    yaw: float = 0.0  # radians; a squash by cos(yaw) toward an axis off the centre, on the side yaw's sign picks
    roll: float = 0.0  # radians, clockwise on screen (y points down)
    shift: tuple[float, float] = (0.0, 0.0)  # (x, y), fractions of the side
    brightness: float = 0.0  # added, fraction of the range
    contrast: float = 1.0  # about mid-grey
    gradient: float = 0.0  # relative brightness change from the crop's centre to its edge
    gradient_angle: float = 0.0  # direction the light comes from, radians
    occluder: Occluder | None = None
    blur: float = 0.0  # Gaussian sigma, fraction of the side
    noise: float = 0.0  # standard deviation, fraction of the range
    noise_seed: int = 0

    @property
    def is_identity(self) -> bool:
        return self == Nuisance()


def _occluder(rng: np.random.Generator) -> Occluder:
    if rng.random() < 0.5:  # sunglasses: a bar across both eyes; the mouth stays visible
        shade = int(rng.integers(10, 50))
        return Occluder(
            "glasses",
            0.5,
            _EYE_Y + float(rng.uniform(-0.01, 0.01)),
            _EYE_X + float(rng.uniform(0.09, 0.12)),
            float(rng.uniform(0.05, 0.07)),
            (shade, shade, shade + int(rng.integers(0, 20))),
        )
    # hair or a hand over one corner of the face: at most one eye, or one corner of the mouth
    side = 1.0 if rng.random() < 0.5 else -1.0
    upper = rng.random() < 0.5
    colors = _HAIR if upper else _HAND
    return Occluder(
        "patch",
        0.5 + side * float(rng.uniform(0.36, 0.44)),
        float(rng.uniform(0.18, 0.3)) if upper else float(rng.uniform(0.82, 0.92)),
        float(rng.uniform(0.1, 0.17)),
        float(rng.uniform(0.12, 0.2)),
        colors[int(rng.integers(len(colors)))],
    )


def sample_nuisance(rng: np.random.Generator, strength: float) -> Nuisance:
    """One face's nuisance at ``strength`` in ``[0, 1]`` (0: :class:`Nuisance` ``()``, the identity)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"nuisance strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return Nuisance()

    def symmetric(limit: float) -> float:
        return float(rng.uniform(-1.0, 1.0)) * strength * limit

    return Nuisance(
        yaw=symmetric(MAX_YAW),
        roll=symmetric(MAX_ROLL),
        shift=(symmetric(MAX_SHIFT), symmetric(MAX_SHIFT)),
        brightness=symmetric(MAX_BRIGHTNESS),
        contrast=1.0 + symmetric(MAX_CONTRAST),
        gradient=float(rng.uniform(0.0, 1.0)) * strength * MAX_GRADIENT,
        gradient_angle=float(rng.uniform(0.0, 2 * math.pi)),
        occluder=_occluder(rng) if rng.random() < OCCLUDER_PROBABILITY * strength else None,
        blur=float(rng.uniform(0.0, 1.0)) * strength * MAX_BLUR,
        noise=float(rng.uniform(0.0, 1.0)) * strength * MAX_NOISE,
        noise_seed=int(rng.integers(2**31)),
    )


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each ``[S, S]``, as fractions of the side."""
    ramp = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(ramp, ramp)


def _draw_occluder(image: np.ndarray, occluder: Occluder) -> np.ndarray:
    size = image.shape[0]
    x, y = _grid(size)
    u, v = (x - occluder.x) / occluder.half_width, (y - occluder.y) / occluder.half_height
    if occluder.kind == "glasses":  # a bar with rounded ends: a superellipse
        inside = (np.abs(u) ** 6 + np.abs(v) ** 6) ** (1 / 6)
    else:
        inside = np.hypot(u, v)
    # soft edge about one pixel wide: the coverage of each pixel
    scale = min(occluder.half_width, occluder.half_height) * size
    cover = np.clip((1.0 - inside) * scale + 0.5, 0.0, 1.0)[..., None]
    return image * (1.0 - cover) + np.asarray(occluder.color, dtype=np.float64) * cover


def _pose_matrix(nuisance: Nuisance, size: int) -> np.ndarray:
    """The ``[2, 3]`` affine of the pose, input pixels -> output pixels (OpenCV's pixel centres):
    the squash by ``cos(yaw)`` toward an axis off the centre, the roll about the centre, the shift."""
    axis = 0.25 * math.sin(nuisance.yaw)  # off the centre: one side of a turned head narrows more
    squash = np.array([[math.cos(nuisance.yaw), 0.0, axis * (1 - math.cos(nuisance.yaw))], [0, 1, 0], [0, 0, 1]])
    cos_r, sin_r = math.cos(nuisance.roll), math.sin(nuisance.roll)
    roll = np.array([[cos_r, -sin_r, 0.0], [sin_r, cos_r, 0.0], [0.0, 0.0, 1.0]])
    shift = np.array([[1.0, 0.0, nuisance.shift[0]], [0.0, 1.0, nuisance.shift[1]], [0.0, 0.0, 1.0]])
    # pixel -> centred fraction of the side, and back
    to_fraction = np.array([[1 / size, 0.0, 0.5 / size - 0.5], [0.0, 1 / size, 0.5 / size - 0.5], [0.0, 0.0, 1.0]])
    return (np.linalg.inv(to_fraction) @ shift @ roll @ squash @ to_fraction)[:2]


def _light(image: np.ndarray, nuisance: Nuisance) -> np.ndarray:
    x, y = _grid(image.shape[0])
    toward = math.cos(nuisance.gradient_angle) * (x - 0.5) + math.sin(nuisance.gradient_angle) * (y - 0.5)
    ramp = 1.0 + nuisance.gradient * 2.0 * toward  # +-gradient at the crop's edges
    return ((image - 127.5) * nuisance.contrast + 127.5 + 255.0 * nuisance.brightness) * ramp[..., None]


def apply_nuisance(image: np.ndarray, nuisance: Nuisance) -> np.ndarray:
    """``image`` (``uint8 [S, S, 3]``) as a photograph with ``nuisance``; the identity returns ``image`` itself."""
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [S, S, 3] image, got {image.dtype} {list(image.shape)}")
    if nuisance.is_identity:
        return image
    size = image.shape[0]
    out = image.astype(np.float64)
    if nuisance.occluder is not None:
        out = _draw_occluder(out, nuisance.occluder)
    if nuisance.yaw or nuisance.roll or any(nuisance.shift):  # revealed borders repeat the edge pixels
        matrix = _pose_matrix(nuisance, size)
        out = cv2.warpAffine(out, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if nuisance.brightness or nuisance.contrast != 1.0 or nuisance.gradient:
        out = _light(out, nuisance)
    if nuisance.blur * size > 0.05:  # below a twentieth of a pixel a blur changes nothing
        sigma = nuisance.blur * size
        kernel = 2 * max(1, math.ceil(3 * sigma)) + 1
        out = cv2.GaussianBlur(out, (kernel, kernel), sigma, borderType=cv2.BORDER_REPLICATE)
    if nuisance.noise:
        out = out + np.random.default_rng(nuisance.noise_seed).normal(0.0, 255.0 * nuisance.noise, out.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
