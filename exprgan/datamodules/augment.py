"""Training augmentation with albumentations: flip, small shift-scale-rotate, brightness/contrast."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations asks PyPI for updates on import


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
"""The default training augmentation."""


class Augmenter:
    """``uint8 [H, W, 3] -> uint8 [H, W, 3]`` under an :class:`Augmentation`.

    The albumentations pipeline is built on first use in each process, seeded from
    ``torch.initial_seed()``, so DataLoader workers (seeded apart by PyTorch) draw
    different augmentations instead of copies of one random stream.
    """

    def __init__(self, config: Augmentation) -> None:
        self.config = config
        self._pipeline: Any = None
        self._pid: int | None = None

    def _build(self) -> Any:
        import albumentations as A
        import cv2
        import torch

        c = self.config
        transforms: list[Any] = []
        if c.flip:
            transforms.append(A.HorizontalFlip(p=0.5))
        if c.affine_p > 0 and (c.shift or c.scale or c.rotate):
            border = {"border_mode": cv2.BORDER_REFLECT_101}
            if int(A.__version__.split(".")[0]) < 2:
                border = {"mode": cv2.BORDER_REFLECT_101}
            transforms.append(
                A.Affine(
                    scale=(1 - c.scale, 1 + c.scale),
                    translate_percent=(-c.shift, c.shift),
                    rotate=(-c.rotate, c.rotate),
                    p=c.affine_p,
                    **border,
                )
            )
        if c.color_p > 0 and (c.brightness or c.contrast):
            transforms.append(
                A.RandomBrightnessContrast(brightness_limit=c.brightness, contrast_limit=c.contrast, p=c.color_p)
            )
        seed = {"seed": torch.initial_seed() % 2**32} if int(A.__version__.split(".")[0]) >= 2 else {}
        return A.Compose(transforms, **seed)

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_pipeline": None, "_pid": None}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._pipeline is None or self._pid != os.getpid():
            self._pipeline, self._pid = self._build(), os.getpid()
        return self._pipeline(image=image)["image"]
