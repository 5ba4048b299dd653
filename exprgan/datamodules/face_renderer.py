"""The face renderer behind the demo data set: procedural faces with ground truth for expression transfer.

Faces are drawn from identity factors (face shape, skin tone, hair colour and style, eye
size, nose, mouth width, brows, glasses, background and lighting) and expression factors for
the seven RAF-DB classes, expressed only through facial geometry (mouth shape and opening,
brow angle and height, eye openness, nose wrinkle, cheeks) with a per-sample intensity. No
colour depends on the expression, and identity varies far more than expression, as in real
faces.

The faces are *aligned* as ``exprgan preprocess`` aligns photographs: the eye centres and
the mouth centre sit at the same canonical points in every image (:data:`EYE_Y`,
:data:`EYE_SPACING`, :data:`MOUTH_Y`), and the face's outline, size and features around
them vary with the identity. This is the data the paper trains on, and where its pixel-sum
term (Eq. 10) nearly cancels for a true transfer.

:func:`render` is public: the ground-truth transfer of a pair ``(a, b)`` is
``render(identity of a, expression of b, intensity of b)``. The DataModule over these faces
is :class:`~exprgan.datamodules.rendered_faces.SyntheticFacesDataModule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

EXPRESSIONS: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RENDERER_VERSION = 2  # 2: aligned faces. Part of cache keys: bump when the faces change
SUPERSAMPLE = 4
ZOOM = 1.4  # an aligned-crop framing: the face fills most of the image, as in RAF-DB's aligned set
# the canonical landmark positions of the aligned crop (offsets from the image centre, before ZOOM)
EYE_Y = -0.05
EYE_SPACING = 0.135
MOUTH_Y = 0.22


@dataclass(frozen=True)
class Identity:
    """Everything about a face that does not change with its expression (unit square coordinates)."""

    background: tuple[int, int, int]
    light_angle: float
    light_strength: float
    skin: tuple[int, int, int]
    face_width: float
    face_height: float
    face_y: float  # the outline's centre relative to the aligned landmarks
    hair: tuple[int, int, int]
    hair_style: int  # 0 short, 1 long, 2 bald, 3 fringe
    eye_size: float
    iris: tuple[int, int, int]
    nose_length: float
    nose_width: float
    mouth_width: float
    lips: tuple[int, int, int]
    brow_thickness: float
    glasses: tuple[int, int, int] | None


@dataclass(frozen=True)
class Expression:
    """Geometry of an expression; all zeros (and ones for scales) is neutral."""

    mouth_curve: float = 0.0  # + corners up (smile), - down
    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    mouth_stretch: float = 1.0  # width scale
    upper_lip_raise: float = 0.0  # one-sided sneer
    brow_raise: float = 0.0  # + up, - down
    brow_tilt: float = 0.0  # + inner ends up (sad, fear), - inner ends down (anger)
    eye_open: float = 1.0  # eye height scale
    nose_wrinkle: float = 0.0
    cheeks: float = 0.0


# full-intensity deltas from neutral, in EXPRESSIONS order
_FULL: dict[str, Expression] = {
    "surprise": Expression(mouth_open=1.0, mouth_stretch=0.75, brow_raise=1.0, eye_open=1.55),
    "fear": Expression(
        mouth_open=0.45, mouth_stretch=1.25, mouth_curve=-0.3, brow_raise=0.6, brow_tilt=0.9, eye_open=1.45
    ),
    "disgust": Expression(
        upper_lip_raise=1.0, mouth_curve=-0.4, nose_wrinkle=1.0, brow_raise=-0.5, brow_tilt=-0.3, eye_open=0.6
    ),
    "happiness": Expression(mouth_curve=1.0, mouth_open=0.35, mouth_stretch=1.3, cheeks=1.0, eye_open=0.75),
    "sadness": Expression(mouth_curve=-0.9, mouth_stretch=0.9, brow_tilt=1.0, brow_raise=0.1, eye_open=0.75),
    "anger": Expression(brow_raise=-0.7, brow_tilt=-1.0, eye_open=0.7, mouth_curve=-0.25, mouth_stretch=0.8),
    "neutral": Expression(),
}


def expression_geometry(expression: int, intensity: float) -> Expression:
    """The geometry of class ``expression`` (index into :data:`EXPRESSIONS`) at ``intensity`` in [0, 1]."""
    if not 0 <= expression < len(EXPRESSIONS):
        raise ValueError(f"expression must be in 0..{len(EXPRESSIONS) - 1}, got {expression}")
    full, neutral = _FULL[EXPRESSIONS[expression]], Expression()
    mixed = {
        name: getattr(neutral, name) + intensity * (getattr(full, name) - getattr(neutral, name))
        for name in Expression.__dataclass_fields__
    }
    return Expression(**mixed)


_SKINS = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 86], [141, 85, 54], [92, 58, 38]])
_HAIRS = np.array([[20, 15, 12], [70, 45, 25], [120, 80, 40], [215, 180, 110], [160, 60, 25], [150, 150, 150]])


def sample_identity(identity: int, seed: int = 0) -> Identity:
    """The identity with number ``identity``; the same numbers always give the same face."""
    rng = np.random.default_rng([seed, identity, 0x1D])

    def jitter(color: np.ndarray, amount: float) -> tuple[int, int, int]:
        return tuple(int(c) for c in np.clip(color + rng.uniform(-amount, amount, 3), 0, 255))

    skin_a, skin_b = _SKINS[rng.integers(len(_SKINS))], _SKINS[rng.integers(len(_SKINS))]
    glasses = jitter(rng.choice([[15, 15, 15], [120, 70, 30], [40, 40, 110]]), 20) if rng.random() < 0.3 else None
    return Identity(
        background=jitter(rng.uniform(30, 225, 3), 0),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.35)),
        skin=jitter(skin_a + rng.random() * (skin_b - skin_a), 12),
        face_width=float(rng.uniform(0.31, 0.37)),
        face_height=float(rng.uniform(0.39, 0.45)),
        face_y=float(rng.uniform(-0.02, 0.03)),
        hair=jitter(_HAIRS[rng.integers(len(_HAIRS))], 15),
        hair_style=int(rng.integers(4)),
        eye_size=float(rng.uniform(0.05, 0.065)),
        iris=jitter(rng.choice([[60, 40, 20], [40, 90, 140], [60, 110, 60], [25, 20, 15]]), 15),
        nose_length=float(rng.uniform(0.08, 0.12)),
        nose_width=float(rng.uniform(0.025, 0.045)),
        mouth_width=float(rng.uniform(0.12, 0.155)),
        lips=jitter(np.array([170, 70, 70]), 30),
        brow_thickness=float(rng.uniform(0.022, 0.032)),
        glasses=glasses,
    )


def _darker(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in color)


def _draw_face(draw: ImageDraw.ImageDraw, person: Identity, look: Expression, scale: float) -> None:
    cx, cy = 0.5, 0.5  # aligned: the landmarks sit at fixed points

    def xy(x: float, y: float) -> tuple[float, float]:
        return ((cx + ZOOM * x) * scale, (cy + ZOOM * y) * scale)

    def box(x: float, y: float, rx: float, ry: float) -> list[float]:
        (x0, y0), (x1, y1) = xy(x - rx, y - ry), xy(x + rx, y + ry)
        return [x0, y0, x1, y1]

    def px(width: float) -> int:
        return max(1, round(width * ZOOM * scale))

    def line(points: list[tuple[float, float]], color: tuple[int, int, int], width: float) -> None:
        draw.line([xy(*p) for p in points], fill=color, width=px(width), joint="curve")

    fw, fh, fy = person.face_width, person.face_height, person.face_y
    # hair behind the face
    if person.hair_style == 1:
        draw.rounded_rectangle(box(0, fy + 0.05, fw * 1.18, fh * 1.05), radius=fw * ZOOM * scale, fill=person.hair)
    if person.hair_style in (0, 1, 3):
        draw.ellipse(box(0, fy - fh * 0.28, fw * 1.08, fh * 0.82), fill=person.hair)
    draw.ellipse(box(-fw, fy, 0.04, 0.07), fill=_darker(person.skin, 0.9))  # ears
    draw.ellipse(box(fw, fy, 0.04, 0.07), fill=_darker(person.skin, 0.9))
    draw.ellipse(box(0, fy, fw, fh), fill=person.skin)
    if person.hair_style == 3:
        draw.chord(box(0, fy - fh * 0.75, fw * 0.95, fh * 0.45), 0, 180, fill=person.hair)

    # cheeks: raised round pads below the eyes
    if look.cheeks > 0.05:
        pad = _darker(person.skin, 1.0 - 0.12 * look.cheeks)
        for side in (-1, 1):
            x, y = side * (EYE_SPACING + 0.02), EYE_Y + 0.11 - 0.03 * look.cheeks
            draw.arc(box(x, y, 0.06, 0.04 * look.cheeks + 0.005), 200, 340, fill=pad, width=px(0.02))

    # eyes
    for side in (-1, 1):
        x, y = side * EYE_SPACING, EYE_Y
        rx, ry = person.eye_size, person.eye_size * 0.55 * look.eye_open
        draw.ellipse(box(x, y, rx, ry), fill=(245, 245, 245), outline=(30, 30, 30), width=px(0.01))
        iris = min(ry, person.eye_size * 0.5)
        draw.ellipse(box(x, y, person.eye_size * 0.5, iris), fill=person.iris)
        draw.ellipse(box(x, y, person.eye_size * 0.22, min(iris, person.eye_size * 0.22)), fill=(10, 10, 10))

    # brows: inner end near the nose, outer end at the temple
    brow = _darker(person.hair, 0.7)
    for side in (-1, 1):
        base = EYE_Y - person.eye_size * 1.3 - 0.05 * look.brow_raise
        inner = (side * (EYE_SPACING - person.eye_size * 0.9), base - 0.045 * look.brow_tilt)
        outer = (side * (EYE_SPACING + person.eye_size * 1.1), base + 0.02 * look.brow_tilt)
        line([inner, outer], brow, person.brow_thickness)

    if person.glasses is not None:
        for side in (-1, 1):
            draw.ellipse(
                box(side * EYE_SPACING, EYE_Y, person.eye_size * 1.5, person.eye_size * 1.2),
                outline=person.glasses,
                width=px(0.008),
            )
        gap = EYE_SPACING - person.eye_size * 1.5
        line([(-gap, EYE_Y), (gap, EYE_Y)], person.glasses, 0.008)

    # nose, and its wrinkle lines
    nose = _darker(person.skin, 0.75)
    top, tip = EYE_Y + 0.03, EYE_Y + 0.03 + person.nose_length
    line([(0, top), (-person.nose_width * 0.3, tip), (person.nose_width, tip)], nose, 0.008)
    if look.nose_wrinkle > 0.05:
        for k in range(3):
            y = top - 0.005 + k * 0.02
            half = 0.02 + 0.02 * look.nose_wrinkle
            line(
                [(-half, y + 0.004), (0, y), (half, y + 0.004)],
                _darker(person.skin, 1 - 0.45 * look.nose_wrinkle),
                0.012,
            )

    # mouth: corners move with curve and stretch; opening is a dark ellipse
    half = person.mouth_width * look.mouth_stretch
    y = MOUTH_Y
    corner = y - 0.06 * look.mouth_curve
    mid = y + 0.02 * look.mouth_curve
    lift = 0.05 * look.upper_lip_raise
    if look.mouth_open > 0.05:
        opening = 0.09 * look.mouth_open
        draw.ellipse(
            box(0, y + opening * 0.35 + 0.01 * look.mouth_curve, half * 0.9, opening),
            fill=(60, 15, 20),
            outline=person.lips,
            width=px(0.01),
        )
    upper = [
        (-half, corner),
        (-half * 0.4, mid - 0.006 - lift * 0.3),
        (half * 0.4, mid - 0.006 - lift),
        (half, corner - lift * 0.8),
    ]
    lower = [(-half, corner), (0, mid + 0.008), (half, corner - lift * 0.8)]
    line(upper, person.lips, 0.026)
    line(lower, _darker(person.lips, 0.85), 0.022)


def _lighting(size: int, angle: float, strength: float) -> np.ndarray:
    ramp = np.linspace(-1.0, 1.0, size)
    gx, gy = np.meshgrid(ramp, ramp)
    return 1.0 + strength * 0.5 * (math.cos(angle) * gx + math.sin(angle) * gy)


def render(
    identity: int | Identity, expression: int, intensity: float = 1.0, size: int = 64, seed: int = 0
) -> np.ndarray:
    """Render a face: ``uint8 [size, size, 3]``.

    Args:
        identity: an identity number (drawn with :func:`sample_identity` and ``seed``) or an
            :class:`Identity`.
        expression: class index into :data:`EXPRESSIONS` (RAF-DB order: surprise, fear,
            disgust, happiness, sadness, anger, neutral).
        intensity: 0 is neutral, 1 the full expression.
        size: side in pixels.
        seed: the seed identity numbers are drawn with.
    """
    person = sample_identity(identity, seed) if isinstance(identity, int) else identity
    look = expression_geometry(expression, intensity)
    canvas_size = size * SUPERSAMPLE
    canvas = Image.new("RGB", (canvas_size, canvas_size), person.background)
    _draw_face(ImageDraw.Draw(canvas), person, look, canvas_size)
    image = canvas.resize((size, size), Image.Resampling.BOX)
    lit = np.asarray(image, dtype=np.float32) * _lighting(size, person.light_angle, person.light_strength)[..., None]
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)
