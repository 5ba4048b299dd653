"""Faces of a user's photos, aligned as in preprocessing, for ``exprgan recognize`` and ``exprgan transfer``.

:class:`FaceFinder` detects every face with a landmark backend, drops detections below a
confidence threshold and aligns the rest exactly as ``exprgan preprocess`` does (same
canonical eye and mouth positions, same warp) at the model's image size.
:func:`paste_change` adds what an edit changed in an aligned crop to its photo (the inverse warp of
the change, weighted by :func:`face_mask`, a feathered hull of the face's landmarks), so the rest
of the face keeps the photo's resolution. :func:`photo_tool_parser` and
:func:`open_model_and_faces` give both tools ``--ckpt``, ``--device``, ``--min-score`` and the
backend options of ``exprgan preprocess``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from exprgan.cache import read_image
from exprgan.datamodules.base import to_tensor
from exprgan.joint import JointExprGAN
from exprgan.preprocessing.align import CanonicalFace, align_face, transform_points
from exprgan.preprocessing.landmarks import BackendUnavailableError, LandmarkBackend
from exprgan.preprocessing.options import BACKENDS_HELP, add_backend_arguments, backend_spec
from exprgan.preprocessing.run import detect_faces
from exprgan.tools import tool_parser
from exprgan.tools.checkpoints import load_model

# detection scores are on each backend's own scale: dlib's HOG margin (a clear frontal face
# scores about 1, weak false hits 0-0.3), S3FD's probability (faces above 0.99)
DEFAULT_MIN_SCORE: dict[str, float] = {"dlib": 0.5, "face_alignment": 0.9}
# what a photo tool reports in one line: a missing or unreadable file (OSError: also a missing
# checkpoint or backend weights), a bad checkpoint, label or photo without a face (ValueError)
PHOTO_ERRORS = (OSError, ValueError, BackendUnavailableError)
# the pasted face's mask (see face_mask), in fractions of the aligned crop's side
DEFAULT_FEATHER = 0.03  # the blur's sigma
MAX_FEATHER = 0.06  # beyond, the blur (3 sigma inside the crop) leaves no part of the face fully pasted
FOREHEAD = 0.08  # how far above the brows the mask reaches
BROWS = slice(17, 27)  # landmarks 17-26 of the 68-point scheme


class NoFaceError(ValueError):
    """A photo has no face scoring at least the threshold; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], min_score: float, below: int = 0) -> None:
        self.path = Path(path)
        self.reason = "no face found" + (
            f" ({below} below the minimum score {min_score:g}: see --min-score)" if below else ""
        )
        super().__init__(f"{self.path}: {self.reason}")


@dataclass(frozen=True)
class AlignedFace:
    """One face of a photo, aligned."""

    crop: np.ndarray  # uint8 [S, S, 3], the aligned face at the model's image size S
    box: tuple[float, float, float, float]  # (x1, y1, x2, y2) of the detector's box in the photo, pixels
    score: float  # the detector's confidence (on the backend's scale)
    matrix: np.ndarray  # [2, 3] affine taking photo pixels to crop pixels
    landmarks: np.ndarray  # float64 [68, 2] the detector's landmarks (x, y), photo pixels


@dataclass(frozen=True)
class FaceFinder:
    """Finds the faces of photos and aligns them as ``exprgan preprocess`` does."""

    backend: LandmarkBackend  # see exprgan.preprocessing
    size: int  # side of the aligned crops (the model's image_size)
    min_score: float = 0.0  # detections scoring below this are dropped (the scale is the backend's)
    border: str = "constant"  # fill where a crop leaves the photo (constant: black, as in preprocessing)
    detect_max_side: int | None = None  # detect on a copy of a larger photo reduced to this longest side
    canonical: CanonicalFace | None = None  # where eyes and mouth go (default: preprocessing's)

    def align(self, image: np.ndarray, path: str | os.PathLike[str] = "image") -> list[AlignedFace]:
        """The faces of photo ``path`` (``image``, ``uint8 [H, W, 3]``) scoring >= ``min_score``, aligned, best first.

        Raises :class:`NoFaceError` when there is none.
        """
        detections = detect_faces(self.backend, image, self.detect_max_side)
        kept = [detection for detection in detections if detection.score >= self.min_score]
        if not kept:
            raise NoFaceError(path, self.min_score, len(detections))
        faces = []
        for d in kept:
            crop, matrix = align_face(image, d.landmarks, self.size, self.canonical, self.border)
            faces.append(AlignedFace(crop=crop, box=d.box, score=d.score, matrix=matrix, landmarks=d.landmarks))
        return faces

    def most_confident(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, AlignedFace]:
        """The photo ``path`` and its most confident face.

        Raises:
            BadImageError: the photo cannot be read.
            NoFaceError: no face scores at least ``min_score``; the message names the file.
        """
        image = read_image(path)
        return image, self.align(image, path)[0]


def crops_to_tensor(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """``uint8 [S, S, 3]`` crops -> ``float [N, 3, S, S]`` in ``[-1, 1]``, the model's input."""
    return torch.stack([to_tensor(crop) for crop in crops])


def face_mask(landmarks: np.ndarray, size: int, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """``float32 [size, size]`` in ``[0, 1]``: where an aligned crop's face is, feathered; 0 on the crop's border.

    Built in the crop's frame, where every face has the canonical size, so the mask scales
    with the face in the photo. The polygon is the convex hull of the 68 landmarks and of the
    brows (17-26) raised by ``FOREHEAD`` of the side (the forehead's lower edge, which the
    generator changes with the brows), each point pushed 2 sigma away from the points' centroid
    (so the landmarks keep >= 0.97 after the blur). It is filled antialiased and blurred with a
    Gaussian of sigma ``feather * size`` cut at 3 sigma; its points are first moved inside the
    crop by that reach plus 2 pixels, so the mask is exactly 0 on the crop's edge and the
    crop's frame (or its black fill beyond the photo) never shows. The price: what lies that
    close to the edge is only partly pasted (the chin, near 0.9 of the side, about half at
    the default feather). Every landmark backend gives the 68 points
    (:class:`~exprgan.preprocessing.landmarks.Detection` checks), so no mask is built from fewer.

    Args:
        landmarks: ``[68, 2]`` the face's landmarks ``(x, y)`` in crop pixels
            (``transform_points(face.matrix, face.landmarks)``).
        size: the crop's side.
        feather: the blur's sigma as a fraction of ``size``, in ``(0, MAX_FEATHER]``.
    """
    if not 0 < feather <= MAX_FEATHER:
        raise ValueError(f"feather must be in (0, {MAX_FEATHER:g}], got {feather:g}")
    sigma = feather * size
    reach = math.ceil(3 * sigma)  # the blur's radius: beyond it the mask is exactly 0
    points = np.asarray(landmarks, dtype=np.float64)
    points = np.concatenate([points, points[BROWS] - [0.0, FOREHEAD * size]])  # [78, 2]
    offsets = points - points.mean(axis=0)
    lengths = np.maximum(np.hypot(offsets[:, 0], offsets[:, 1]), 1e-9)[:, None]
    points = np.clip(points + 2 * sigma * offsets / lengths, reach + 2, size - 1 - reach - 2)
    hull = cv2.convexHull(np.round(points * 16).astype(np.int32))  # 4 fractional bits (shift=4)
    filled = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(filled, hull, 255, lineType=cv2.LINE_AA, shift=4)
    mask = cv2.GaussianBlur(filled.astype(np.float32) / 255, (2 * reach + 1, 2 * reach + 1), sigma)
    return np.clip(mask, 0.0, 1.0)


def paste_change(
    image: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    matrix: np.ndarray,
    landmarks: np.ndarray,
    feather: float = DEFAULT_FEATHER,
) -> np.ndarray:
    """``image`` plus the change an edit made to its aligned crop, warped back through a feathered face mask.

    ``out = image + warp_back(mask * (after - before))``, rounded and clipped to ``[0, 255]``:
    the change is taken in float (a darkening stays negative), weighted by :func:`face_mask`
    of the landmarks in the crop's frame, and warped into the photo's frame with the inverse
    of the alignment (bilinear, 0 outside the crop). Only the change has the crop's
    resolution: wherever the edit changed nothing, and everywhere outside the mask, the
    photo's pixels are kept exactly, so a face larger than the crop keeps its own detail.

    Args:
        image: ``uint8 [H, W, 3]`` the photo the face was aligned from.
        before: ``[S, S, 3]`` the aligned crop the edit read (``AlignedFace.crop``), 0-255 (uint8 or float).
        after: ``[S, S, 3]`` the edited crop (e.g. the transfer of ``before``), 0-255.
        matrix: ``[2, 3]`` the alignment's affine (photo pixels -> crop pixels).
        landmarks: ``[68, 2]`` the face's landmarks in the photo (``AlignedFace.landmarks``).
        feather: the mask's blur sigma as a fraction of the crop's side.

    Returns:
        ``uint8 [H, W, 3]``: the photo with the edit added.

    Raises:
        ValueError: shapes that do not fit together (the message gives them), or a bad ``feather``.
    """
    image, before, after = np.asarray(image), np.asarray(before), np.asarray(after)
    matrix, landmarks = np.asarray(matrix, dtype=np.float64), np.asarray(landmarks, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got {image.shape}")
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} must have the same shape")
    if before.ndim != 3 or before.shape[0] != before.shape[1] or before.shape[2] != 3:
        raise ValueError(f"the crops must be [S, S, 3], got {before.shape}")
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix must be [2, 3], got {matrix.shape}")
    if landmarks.shape != (68, 2):
        raise ValueError(f"landmarks must be [68, 2], got {landmarks.shape}")
    height, width = image.shape[:2]
    mask = face_mask(transform_points(matrix, landmarks), before.shape[0], feather)[..., None]  # [S, S, 1]
    change = mask * (after.astype(np.float32) - before.astype(np.float32))  # [S, S, 3], in the crop's frame
    inverse = cv2.invertAffineTransform(matrix)
    change = cv2.warpAffine(
        change, inverse, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return np.clip(np.rint(image.astype(np.float32) + change), 0, 255).astype(np.uint8)


# --- what both tools share: --ckpt, --device, --min-score and preprocessing's backend options ---
FACE_OPTIONS_HELP = (
    BACKENDS_HELP + "\n\nUse the backend the model's training crops were made with (landmarks differ a little)."
)


def photo_tool_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of tool ``prog``: ``--ckpt``, ``--device``, ``--min-score`` and ``exprgan preprocess``'s backends."""
    parser = tool_parser(prog, description, epilog=FACE_OPTIONS_HELP)
    parser.add_argument("--ckpt", type=Path, required=True, metavar="CKPT", help="a trained exprgan checkpoint")
    parser.add_argument(
        "--device",
        help="cpu, cuda, cuda:1, ... for the model and the face_alignment backend (default: cuda when available)",
    )
    defaults = ", ".join(f"{name} {score:g}" for name, score in DEFAULT_MIN_SCORE.items())
    parser.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="drop face detections scoring below S, on the backend's scale: face_alignment's are probabilities, "
        f"dlib's HOG margins, a clear face about 1 (default: {defaults}, 0 for others)",
    )
    add_backend_arguments(parser, device=False)
    return parser


def open_model_and_faces(
    options: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[JointExprGAN, FaceFinder]:
    """The ``--ckpt`` model on ``--device`` and a :class:`FaceFinder` of the options' backend at its image size.

    An unknown backend or another backend's option is a usage error (exit status 2) before
    anything is loaded (see :func:`~exprgan.preprocessing.options.backend_spec`).

    Raises:
        FileNotFoundError, ValueError: no such checkpoint, or not a loadable one.
        BackendUnavailableError, BackendWeightsError: the backend's package or weights are missing.
    """
    device = options.device or ("cuda" if torch.cuda.is_available() else "cpu")
    spec = backend_spec(options, parser, device)
    model = load_model(options.ckpt, device)
    min_score = DEFAULT_MIN_SCORE.get(options.backend, 0.0) if options.min_score is None else options.min_score
    size = int(model.hparams.image_size)
    return model, FaceFinder(spec.build(), size, min_score, options.border, options.detect_max_side)
