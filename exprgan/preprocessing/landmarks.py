"""The landmark backend interface: a face detector plus a 68-point landmark predictor.

Every backend returns the iBUG 300-W 68-point scheme (points 36-41 and 42-47 outline the
eyes on the image's left and right, 48 and 54 are the mouth corners), in pixel coordinates
``(x, y)`` of the image it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

NUM_LANDMARKS = 68


class BackendWeightsError(FileNotFoundError):
    """A backend's weights file is missing (and could not be fetched); the message names it."""


class BackendUnavailableError(ImportError):
    """A backend's Python package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Detection:
    """One face found in an image."""

    box: tuple[float, float, float, float]  # (x1, y1, x2, y2) of the detector's box, pixels
    score: float  # the detector's confidence (higher is more confident; the scale is the backend's)
    landmarks: np.ndarray  # float64 [68, 2] points (x, y), pixels

    def __post_init__(self) -> None:
        landmarks = np.asarray(self.landmarks, dtype=np.float64)
        if landmarks.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"landmarks must be [{NUM_LANDMARKS}, 2], got {list(landmarks.shape)}")
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))


@runtime_checkable
class LandmarkBackend(Protocol):
    """Finds faces and their 68 landmarks. Built once per process (weights load in ``__init__``)."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces of ``image`` (``uint8 [H, W, 3]`` RGB), most confident first."""
        ...


def most_confident_first(detections: list[Detection]) -> list[Detection]:
    """``detections`` sorted by score, highest first (stable for ties)."""
    return sorted(detections, key=lambda detection: -detection.score)
