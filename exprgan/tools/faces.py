"""Faces of a user's photo, aligned as in preprocessing, for ``exprgan recognize`` and ``exprgan transfer``.

:func:`find_faces` detects every face with a landmark backend, drops detections below a
confidence threshold and aligns the rest exactly as ``exprgan preprocess`` does (same
canonical eye and mouth positions, same warp) at the model's image size.
:func:`paste_face` puts an aligned crop back into the photo (the inverse warp, blended with
a soft elliptical mask). :func:`add_face_arguments` / :func:`device_and_backend` give both
tools the backend options of ``exprgan preprocess`` (:mod:`exprgan.preprocessing.options`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from exprgan.preprocessing.align import CanonicalFace, align_face
from exprgan.preprocessing.backends import BackendSpec
from exprgan.preprocessing.landmarks import LandmarkBackend
from exprgan.preprocessing.options import BACKENDS_HELP, add_backend_arguments, backend_spec
from exprgan.preprocessing.run import detect_faces

if TYPE_CHECKING:
    from exprgan.joint import JointExprGAN

# detection scores are on each backend's own scale: dlib's HOG margin (a clear frontal face
# scores about 1, weak false hits 0-0.3), S3FD's probability (faces above 0.99)
DEFAULT_MIN_SCORE: dict[str, float] = {"dlib": 0.5, "face_alignment": 0.9}


class NoFaceError(ValueError):
    """A photo has no face scoring at least the threshold; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], min_score: float, below: int = 0) -> None:
        self.path = Path(path)
        detail = (
            f" ({below} weaker detection(s) below the minimum score {min_score:g}: see --min-score)" if below else ""
        )
        super().__init__(f"{self.path}: no face found{detail}")


@dataclass(frozen=True)
class AlignedFace:
    """One face of a photo, aligned.

    Args:
        crop: ``uint8 [S, S, 3]`` the aligned face at the model's image size ``S``.
        box: ``(x1, y1, x2, y2)`` of the detector's box in the photo, pixels.
        score: the detector's confidence (on the backend's scale).
        matrix: ``[2, 3]`` affine taking photo pixels to crop pixels.
    """

    crop: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    matrix: np.ndarray


def default_min_score(backend: str) -> float:
    """The default detection threshold of a backend (0 for one exprgan does not know)."""
    return DEFAULT_MIN_SCORE.get(backend, 0.0)


def find_faces(
    image: np.ndarray,
    backend: LandmarkBackend,
    size: int,
    min_score: float = 0.0,
    canonical: CanonicalFace | None = None,
    border: str = "constant",
    detect_max_side: int | None = None,
) -> tuple[list[AlignedFace], int]:
    """Every face of ``image`` scoring at least ``min_score``, aligned, most confident first.

    Args:
        image: ``uint8 [H, W, 3]`` RGB photo.
        backend: the landmark backend (see :mod:`exprgan.preprocessing`).
        size: side of the aligned crops (the model's ``image_size``).
        min_score: detections scoring below this are dropped (the scale is the backend's).
        canonical: where eyes and mouth go (default :class:`CanonicalFace`, as in preprocessing).
        border: fill where a crop leaves the photo (``constant``: black, as in preprocessing).
        detect_max_side: detect on a copy of a larger photo reduced to this longest side.

    Returns:
        The kept faces and the number of detections dropped below ``min_score``.
    """
    detections = detect_faces(backend, image, detect_max_side)
    kept = [detection for detection in detections if detection.score >= min_score]
    faces = []
    for detection in kept:
        crop, matrix = align_face(image, detection.landmarks, size, canonical, border)
        faces.append(AlignedFace(crop=crop, box=detection.box, score=detection.score, matrix=matrix))
    return faces, len(detections) - len(kept)


def crops_to_tensor(crops: list[np.ndarray]) -> torch.Tensor:
    """``uint8 [S, S, 3]`` crops -> ``float [N, 3, S, S]`` in ``[-1, 1]``, the model's input."""
    from exprgan.datamodules.base import to_tensor

    return torch.stack([to_tensor(crop) for crop in crops])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``float [N, 3, S, S]`` (or ``[3, S, S]``) in ``[-1, 1]`` -> ``uint8 [N, S, S, 3]`` (or ``[S, S, 3]``)."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.movedim(-3, -1).numpy()


def face_mask(size: int) -> np.ndarray:
    """``float32 [size, size]`` in ``[0, 1]``: 1 on the face of an aligned crop, fading to 0 before its edges.

    An ellipse around the canonical face (centre (0.5, 0.55) of the side, half-axes 0.40 and
    0.43) with a smooth fall-off over its outer 20 %, so a pasted face blends into the photo.
    """
    coordinates = (np.arange(size, dtype=np.float64) + 0.5) / size
    x, y = np.meshgrid(coordinates, coordinates)
    radius = np.hypot((x - 0.5) / 0.40, (y - 0.55) / 0.43)
    t = np.clip((1.0 - radius) / 0.2, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep


def paste_face(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` with the aligned ``crop`` warped back where its face came from (soft-edged).

    Args:
        image: ``uint8 [H, W, 3]`` the photo the face was aligned from.
        crop: ``uint8 [S, S, 3]`` an aligned face (e.g. a transfer), in the crop's frame.
        matrix: ``[2, 3]`` the alignment's affine (photo pixels -> crop pixels).

    Returns:
        ``uint8 [H, W, 3]``: the photo, the face region replaced through :func:`face_mask`.
    """
    import cv2

    height, width = image.shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    face = cv2.warpAffine(np.ascontiguousarray(crop), inverse, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(face_mask(crop.shape[0]), inverse, (width, height), flags=cv2.INTER_LINEAR)[..., None]
    blended = image.astype(np.float32) * (1 - mask) + face.astype(np.float32) * mask
    return np.clip(blended.round(), 0, 255).astype(np.uint8)


# --- the options both tools share: preprocessing's backend options, --device and --min-score ----
FACE_OPTIONS_HELP = (
    BACKENDS_HELP
    + """
Detection scores are on each backend's own scale: face_alignment's are probabilities (default
--min-score 0.9), dlib's are HOG margins (a clear face about 1; default --min-score 0.5).
Use the backend the model's training crops were made with: the alignment is the same, the
landmarks differ a little."""
)


def add_face_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--min-score`` and the backend options of ``exprgan preprocess``."""
    parser.add_argument(
        "--device",
        help="cpu, cuda, cuda:1, ... for the model and the face_alignment backend (default: cuda when available)",
    )
    add_backend_arguments(parser, device=False)
    parser.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="drop face detections scoring below S, on the backend's scale "
        f"(default: {', '.join(f'{k} {v:g}' for k, v in DEFAULT_MIN_SCORE.items())}, 0 for others)",
    )


def device_and_backend(options: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, BackendSpec]:
    """``--device`` (default: cuda when available) and the backend the options ask for, run on that device.

    Another backend's option or an unknown backend is a usage error (see
    :func:`~exprgan.preprocessing.options.backend_spec`).
    """
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, backend_spec(options, parser, device)


def open_checkpoint(checkpoint: str | os.PathLike[str], device: str) -> JointExprGAN:
    """:func:`~exprgan.tools.checkpoints.load_model`, with any failure a one-line error naming the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a loadable exprgan checkpoint (truncated, another model's, ...).
    """
    from exprgan.tools.checkpoints import load_model

    try:
        return load_model(checkpoint, device)
    except FileNotFoundError:
        raise
    except Exception as error:  # a truncated or foreign file: say which, without a traceback
        raise ValueError(
            f"{checkpoint}: not a loadable exprgan checkpoint ({type(error).__name__}: {error})"
        ) from error


def min_score_from_options(options: argparse.Namespace) -> float:
    """``--min-score``, or the backend's default."""
    return default_min_score(options.backend) if options.min_score is None else float(options.min_score)
