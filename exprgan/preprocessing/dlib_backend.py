"""The ``dlib`` backend: dlib's frontal HOG face detector and its 68-landmark shape predictor.

Runs offline: ``pip install dlib-bin`` (prebuilt wheel; the ``exprgan[dlib]`` extra) and the
predictor file of Debian's ``libdlib-data`` (``apt-get install libdlib-data``), or any copy of
``shape_predictor_68_face_landmarks.dat`` passed as ``predictor_path``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from exprgan.preprocessing.landmarks import (
    BackendUnavailableError,
    BackendWeightsError,
    Detection,
    most_confident_first,
)

DEFAULT_PREDICTOR = Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")
PREDICTOR_URL = "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2"


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as error:
        raise BackendUnavailableError(
            "the dlib landmark backend needs the dlib package: pip install dlib-bin (or pip install 'exprgan[dlib]')"
        ) from error
    return dlib


def _check_predictor(path: str | os.PathLike[str] | None) -> Path:
    path = Path(path) if path is not None else DEFAULT_PREDICTOR
    if not path.is_file():
        raise BackendWeightsError(
            f"dlib's 68-landmark predictor not found: {path}. Install it with "
            f"'apt-get install libdlib-data' (it goes to {DEFAULT_PREDICTOR}), or download "
            f"{PREDICTOR_URL}, unpack it (bunzip2) and pass its path (--predictor PATH)"
        )
    return path


class DlibBackend:
    """dlib's HOG detector (with scores) and 68-point shape predictor.

    Args:
        predictor_path: the ``shape_predictor_68_face_landmarks.dat`` file
            (default ``/usr/share/dlib/shape_predictor_68_face_landmarks.dat``).
        upsample: times the detector upsamples the image (1 finds faces down to ~40 px).
        adjust_threshold: added to the detector's threshold; negative finds more, weaker faces.
    """

    name = "dlib"

    def __init__(
        self, predictor_path: str | os.PathLike[str] | None = None, upsample: int = 1, adjust_threshold: float = 0.0
    ) -> None:
        dlib = _import_dlib()
        self.predictor_path = _check_predictor(predictor_path)
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))

    @staticmethod
    def prepare(
        predictor_path: str | os.PathLike[str] | None = None, upsample: int = 1, adjust_threshold: float = 0.0
    ) -> dict[str, Any]:
        """Check the package and the predictor file once; the options with an explicit path."""
        _import_dlib()
        path = _check_predictor(predictor_path)
        return {"predictor_path": str(path), "upsample": int(upsample), "adjust_threshold": float(adjust_threshold)}

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        rectangles, scores, _ = self._detector.run(image, self.upsample, self.adjust_threshold)
        detections = []
        for rectangle, score in zip(rectangles, scores):
            points = np.array([(p.x, p.y) for p in self._predictor(image, rectangle).parts()], dtype=np.float64)
            box = (rectangle.left(), rectangle.top(), rectangle.right(), rectangle.bottom())
            detections.append(Detection(box=box, score=score, landmarks=points))
        return most_confident_first(detections)
