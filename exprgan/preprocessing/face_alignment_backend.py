"""The ``face_alignment`` backend (Bulat & Tzimiropoulos 2017): the S3FD detector and 2D-FAN-4.

Weights: two files, ``s3fd-619a316812.pth`` (detector) and ``2DFAN4-11f355bf06.pth.tar``
(landmarks). Give their paths (``detector_weights``, ``landmark_weights``) to run offline;
without them the files are looked for where the ``face-alignment`` package keeps them
(``$TORCH_HOME/hub/checkpoints/``) and, when ``download`` is true, fetched there (with a
message on stderr). Missing files offline raise :class:`BackendWeightsError` naming them.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from exprgan.preprocessing.landmarks import BackendWeightsError, Detection, most_confident_first

DETECTOR_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"
LANDMARK_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"


def default_weights_path(url: str) -> Path:
    """Where ``face-alignment`` keeps (or downloads) the file of ``url``: the torch hub checkpoints."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _locate(path: str | os.PathLike[str] | None, url: str, what: str, option: str, download: bool) -> Path:
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise BackendWeightsError(f"face_alignment {what} weights not found: {path} (given as {option})")
        return path
    expected = default_weights_path(url)
    if expected.is_file():
        return expected
    hint = (
        f"face_alignment {what} weights not found: expected {expected} (downloadable from {url}). "
        f"Put the file there, or pass its path with {option}"
    )
    if not download:
        raise BackendWeightsError(hint + "; downloads are off")
    import torch

    print(f"exprgan: downloading the face_alignment {what} weights {url} to {expected}", file=sys.stderr)
    expected.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(expected), progress=True)
    except (OSError, RuntimeError, ValueError) as error:  # URLError is an OSError
        raise BackendWeightsError(f"{hint}. The download failed: {error}") from error
    return expected


def _load_fan(path: Path, device: str) -> Any:
    """2D-FAN-4 from a state dict (face-alignment >= 1.5 files) or a TorchScript file (1.4)."""
    import torch
    from face_alignment.models import FAN

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, OSError, ValueError, EOFError) as error:
        try:
            net = torch.jit.load(str(path), map_location=device)
        except (RuntimeError, OSError, ValueError) as jit_error:
            raise BackendWeightsError(f"{path} is not a 2D-FAN-4 weights file: {error}; {jit_error}") from error
    else:
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        net = FAN(4)
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise BackendWeightsError(f"{path} does not match 2D-FAN-4: {error}") from error
        net.to(device)
    return net.eval()


def _offline_face_alignment(detector: Any, net: Any, device: str, flip_input: bool) -> Any:
    """A ``face_alignment.FaceAlignment`` built from loaded parts (its constructor would download)."""
    import torch
    from face_alignment import FaceAlignment, LandmarksType

    model = FaceAlignment.__new__(FaceAlignment)
    model.device = device
    model.flip_input = flip_input
    model.landmarks_type = LandmarksType.TWO_D
    model.verbose = False
    model.dtype = torch.float32
    model.max_batch_size = 1
    model.face_detector = detector
    model.face_alignment_net = net
    return model


class FaceAlignmentBackend:
    """S3FD faces and 2D-FAN-4 landmarks through the ``face-alignment`` package.

    Args:
        detector_weights: the S3FD file ``s3fd-619a316812.pth`` (default: the torch hub cache).
        landmark_weights: the 2D-FAN-4 file ``2DFAN4-11f355bf06.pth.tar`` (default: the torch hub cache).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (default: CUDA when available).
        filter_threshold: S3FD keeps boxes scoring above this (0-1).
        flip_input: also run FAN on the mirrored face and average (the package's default).
        download: fetch missing default files from the package's URLs; off, missing files are an error.
    """

    name = "face_alignment"

    def __init__(
        self,
        detector_weights: str | os.PathLike[str] | None = None,
        landmark_weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
        filter_threshold: float = 0.5,
        flip_input: bool = True,
        download: bool = True,
    ) -> None:
        import torch
        from face_alignment.detection.sfd.sfd_detector import SFDDetector

        options = self.prepare(detector_weights, landmark_weights, device, filter_threshold, flip_input, download)
        self.device = options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        weights = options["detector_weights"]
        try:
            detector = SFDDetector(device=self.device, path_to_detector=weights, filter_threshold=filter_threshold)
        except (RuntimeError, OSError, ValueError, KeyError) as error:
            raise BackendWeightsError(f"{weights} is not an S3FD weights file: {error}") from error
        net = _load_fan(Path(options["landmark_weights"]), self.device)
        self._model = _offline_face_alignment(detector, net, self.device, flip_input)

    @staticmethod
    def prepare(
        detector_weights: str | os.PathLike[str] | None = None,
        landmark_weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
        filter_threshold: float = 0.5,
        flip_input: bool = True,
        download: bool = True,
    ) -> dict[str, Any]:
        """Locate (or fetch) both weights files once; the options with explicit paths."""
        detector = _locate(detector_weights, DETECTOR_URL, "detector (S3FD)", "--detector-weights", download)
        landmarks = _locate(landmark_weights, LANDMARK_URL, "landmark (2D-FAN-4)", "--landmark-weights", download)
        return {
            "detector_weights": str(detector),
            "landmark_weights": str(landmarks),
            "device": device,
            "filter_threshold": float(filter_threshold),
            "flip_input": bool(flip_input),
            "download": bool(download),
        }

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No faces were detected")
            landmarks, _, boxes = self._model.get_landmarks_from_image(image, return_bboxes=True)
        if landmarks is None:
            return []
        detections = [
            Detection(box=tuple(box[:4]), score=float(box[4]), landmarks=np.asarray(points)[:, :2])
            for points, box in zip(landmarks, boxes)
        ]
        return most_confident_first(detections)
