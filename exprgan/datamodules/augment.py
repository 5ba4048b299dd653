"""Training augmentation: flip, small shift-scale-rotate, brightness/contrast, on uint8 with OpenCV."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class Augmentation:
    """What augments a training image (evaluation images are never augmented).

    Args:
        flip: mirror left-right with probability 0.5.
        shift: largest translation, as a fraction of the side.
        scale: largest zoom in or out, as a fraction (0.05: 0.95x .. 1.05x).
        rotate: largest rotation in degrees.
        affine_p: probability of the shift-scale-rotate.
        brightness: largest brightness change (fraction of the range).
        contrast: largest contrast change (fraction).
        color_p: probability of the brightness/contrast change.
    """

    flip: bool = True
    shift: float = 0.05
    scale: float = 0.05
    rotate: float = 10.0
    affine_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    color_p: float = 0.5


DEFAULT_AUGMENTATION = Augmentation()


class Augmenter:
    """``uint8 [H, W, 3] -> uint8 [H, W, 3]`` under an :class:`Augmentation`.

    In order, each with its probability: a left-right flip; an affine map about the centre
    with independent x and y scales in ``1 +- scale``, a rotation in ``+-rotate`` degrees and
    a shift in ``+-shift`` of the side, bilinear, borders reflected; ``alpha * u + beta``
    with ``alpha`` in ``1 +- contrast`` and ``beta`` in ``+-brightness * 255``, rounded and
    clipped (albumentations' ``HorizontalFlip``, ``Affine`` and ``RandomBrightnessContrast``).
    The random generator is made on first use in each process from ``torch.initial_seed()``,
    so DataLoader workers (seeded apart by PyTorch) draw different augmentations.
    """

    def __init__(self, config: Augmentation) -> None:
        self.config = config
        self._rng: np.random.Generator | None = None
        self._pid: int | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._rng is None or self._pid != os.getpid():
            self._rng, self._pid = np.random.default_rng(torch.initial_seed() % 2**63), os.getpid()
        c, rng = self.config, self._rng
        image = np.ascontiguousarray(image)
        if c.flip and rng.random() < 0.5:
            image = cv2.flip(image, 1)
        if c.affine_p > 0 and (c.shift or c.scale or c.rotate) and rng.random() < c.affine_p:
            height, width = image.shape[:2]
            scale_x, scale_y = rng.uniform(1 - c.scale, 1 + c.scale, size=2)
            shift = rng.uniform(-c.shift, c.shift, size=2) * (width, height)
            angle = math.radians(rng.uniform(-c.rotate, c.rotate))
            linear = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
            linear = linear * (scale_x, scale_y)  # scale, then rotate
            centre = np.array([(width - 1) / 2, (height - 1) / 2])
            matrix = np.hstack([linear, (centre + shift - linear @ centre)[:, None]])
            image = cv2.warpAffine(
                image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
        if c.color_p > 0 and (c.brightness or c.contrast) and rng.random() < c.color_p:
            alpha = 1.0 + rng.uniform(-c.contrast, c.contrast)
            beta = rng.uniform(-c.brightness, c.brightness) * 255.0
            image = cv2.LUT(image, np.clip(np.rint(np.arange(256) * alpha + beta), 0, 255).astype(np.uint8))
        return image
