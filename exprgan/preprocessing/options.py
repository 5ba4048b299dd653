"""The landmark-backend command-line options, shared by ``exprgan preprocess`` and the photo tools.

:func:`add_backend_arguments` adds ``--backend``, ``--border``, ``--detect-max-side`` and each
backend's own options (an argument group per backend) to a parser; :func:`backend_spec` turns the
parsed options into a :class:`~exprgan.preprocessing.backends.BackendSpec`, with an option of
another backend a usage error. :data:`BACKENDS_HELP` describes the backends for an epilog.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from exprgan.preprocessing.backends import BackendSpec, resolve_backend

DEFAULT_BACKEND = "face_alignment"

# backend -> {options attribute: keyword of the backend's constructor}
BACKEND_OPTIONS: dict[str, dict[str, str]] = {
    "dlib": {"predictor": "predictor_path", "upsample": "upsample", "adjust_threshold": "adjust_threshold"},
    "face_alignment": {
        "detector_weights": "detector_weights",
        "landmark_weights": "landmark_weights",
        "backend_device": "device",
        "filter_threshold": "filter_threshold",
        "download": "download",
    },
}
# the flags whose name is not "--" + the attribute with dashes
_FLAGS = {"download": "--no-download", "backend_device": "--device"}

BACKENDS_HELP = """\
backends:
  face_alignment  S3FD + 2D-FAN-4 (the paper's; the default). Weights: s3fd-619a316812.pth and
                  2DFAN4-11f355bf06.pth.tar, from --detector-weights / --landmark-weights or
                  $TORCH_HOME/hub/checkpoints/ (downloaded there when online, unless --no-download).
  dlib            HOG detector + shape_predictor_68_face_landmarks.dat; offline with
                  'pip install dlib-bin' and 'apt-get install libdlib-data' (or --predictor PATH)."""


def add_backend_arguments(parser: argparse.ArgumentParser, device: bool = True) -> None:
    """Add ``--backend``, ``--border``, ``--detect-max-side`` and each backend's options (a group each) to ``parser``.

    ``device=False``: no face_alignment ``--device`` (the command has its own and passes it to :func:`backend_spec`).
    """
    parser.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        help=f"landmark backend: {DEFAULT_BACKEND} (default), dlib, or package.module:Class for your own",
    )
    parser.add_argument(
        "--border",
        choices=("constant", "reflect", "replicate"),
        default="constant",
        help="fill where an aligned crop leaves the image (constant: black, the default)",
    )
    parser.add_argument(
        "--detect-max-side",
        type=int,
        metavar="PIXELS",
        help="detect on a copy of larger images reduced to this longest side (faster; crops stay full resolution)",
    )
    dlib = parser.add_argument_group("dlib backend")
    dlib.add_argument(
        "--predictor",
        type=Path,
        metavar="PATH",
        help="shape_predictor_68_face_landmarks.dat (default /usr/share/dlib/shape_predictor_68_face_landmarks.dat)",
    )
    dlib.add_argument("--upsample", type=int, help="detector upsampling, finds smaller faces (1)")
    dlib.add_argument("--adjust-threshold", type=float, help="added to the HOG detector's threshold (0.0)")
    fan = parser.add_argument_group("face_alignment backend" + ("" if device else " (it runs on --device)"))
    fan.add_argument("--detector-weights", type=Path, metavar="PATH", help="S3FD weights file s3fd-619a316812.pth")
    fan.add_argument(
        "--landmark-weights", type=Path, metavar="PATH", help="2D-FAN-4 weights file 2DFAN4-11f355bf06.pth.tar"
    )
    if device:
        fan.add_argument(
            "--device",
            dest="backend_device",
            metavar="DEVICE",
            help="cpu, cuda, cuda:1, ... (default: cuda when available)",
        )
    fan.add_argument("--filter-threshold", type=float, help="S3FD's own box score threshold (0.5)")
    fan.add_argument(
        "--no-download",
        dest="download",
        action="store_const",
        const=False,
        help="never download missing weights: fail naming the files",
    )


def backend_spec(
    options: argparse.Namespace, parser: argparse.ArgumentParser, device: str | None = None
) -> BackendSpec:
    """The :class:`BackendSpec` of ``options`` (parsed by ``parser``, set up by :func:`add_backend_arguments`).

    An unknown backend or another backend's option is a usage error (exit status 2). ``device``: where the
    face_alignment backend runs, for a parser without its ``--device`` (the photo tools pass the model's).
    """
    try:
        resolve_backend(options.backend)
    except (ValueError, ImportError, AttributeError) as error:
        parser.error(f"--backend {options.backend}: {error}")
    values: dict[str, Any] = {}
    for backend, names in BACKEND_OPTIONS.items():
        for attribute, keyword in names.items():
            value = getattr(options, attribute, None)
            if value is None:
                continue
            if backend != options.backend:
                flag = _FLAGS.get(attribute, "--" + attribute.replace("_", "-"))
                parser.error(f"{flag} is an option of the {backend} backend, not of {options.backend}")
            values[keyword] = str(value) if isinstance(value, Path) else value
    if options.backend == "face_alignment" and device is not None:
        values["device"] = device
    return BackendSpec(options.backend, values)
