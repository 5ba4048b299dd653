"""Preprocessing: detect faces and 68 landmarks, align, crop, and cache the crops with an index.

``exprgan preprocess`` (:mod:`exprgan.preprocessing.cli`) drives :func:`preprocess`; backends
(``face_alignment``, ``dlib``) sit behind :class:`LandmarkBackend`; :mod:`.align` holds the
canonical eye and mouth positions and the similarity warp. The cache folder's format is
:mod:`exprgan.cache`'s.
"""

from exprgan.cache import CacheMismatchError, crop_name
from exprgan.preprocessing.align import CanonicalFace, align_face, alignment_matrix, key_points
from exprgan.preprocessing.backends import BACKENDS, BackendSpec
from exprgan.preprocessing.landmarks import BackendUnavailableError, BackendWeightsError, Detection, LandmarkBackend
from exprgan.preprocessing.run import PreprocessSummary, preprocess

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "BackendUnavailableError",
    "BackendWeightsError",
    "CacheMismatchError",
    "CanonicalFace",
    "Detection",
    "LandmarkBackend",
    "PreprocessSummary",
    "align_face",
    "alignment_matrix",
    "crop_name",
    "key_points",
    "preprocess",
]
