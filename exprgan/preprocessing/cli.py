"""``exprgan preprocess``: align a data set's faces into a crop cache (resumable)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

DESCRIPTION = """\
Detect each face and its 68 landmarks, align it (eyes level at fixed positions, see below),
crop and resize it, and write the crops with an index into a cache folder:
  CACHE/crops/...png   CACHE/index.csv   CACHE/failures.csv   CACHE/meta.json
index.csv keeps every listing column (path, frame, label, label_name, subject, pose, split,
fold, sequence, ...) and adds crop, score, box, n_faces, other_faces; failures.csv lists the
images without a crop and why (no face found, unreadable file, ...). Run the same command again
after an interruption: finished images are skipped.

Canonical positions (fractions of the side): left eye centre (0.365, 0.40), right eye centre
(0.635, 0.40), mouth-corner midpoint (0.50, 0.72). Eyes are always level; the eyes' midpoint is
fixed; the scale is the smaller of the eye-distance and eye-to-mouth-height ratios."""

EPILOG = """\
backends:
  face_alignment  S3FD + 2D-FAN-4 (the paper's). Weights: s3fd-619a316812.pth and
                  2DFAN4-11f355bf06.pth.tar, from --detector-weights / --landmark-weights or
                  $TORCH_HOME/hub/checkpoints/ (downloaded there when online, unless --no-download).
  dlib            HOG detector + shape_predictor_68_face_landmarks.dat; offline with
                  'pip install dlib-bin' and 'apt-get install libdlib-data' (or --predictor PATH).

examples:
  exprgan preprocess --dataset rafdb --root data/RAF-DB/basic --out cache/rafdb --workers 4
  exprgan preprocess --dataset multipie --root data/Multi-PIE --out cache/multipie --backend dlib
  exprgan preprocess --listing my_listing.csv --root data/mine --out cache/mine"""

BACKEND_OPTIONS = {
    "dlib": {"predictor": "predictor_path", "upsample": "upsample", "adjust_threshold": "adjust_threshold"},
    "face_alignment": {
        "detector_weights": "detector_weights",
        "landmark_weights": "landmark_weights",
        "device": "device",
        "filter_threshold": "filter_threshold",
        "download": "download",
    },
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``exprgan preprocess``."""
    parser = argparse.ArgumentParser(
        prog="exprgan preprocess",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=("rafdb", "multipie", "mmi"), help="a data set exprgan knows")
    source.add_argument(
        "--listing",
        type=Path,
        metavar="CSV",
        help="your own listing: a CSV with a 'path' column (relative to --root), optionally 'frame' "
        "(video frame, -1 for images) and any label/subject/split columns, which are kept",
    )
    parser.add_argument("--root", type=Path, required=True, help="the data set's folder")
    parser.add_argument("--out", type=Path, required=True, metavar="CACHE", help="the cache folder (created)")
    parser.add_argument(
        "--backend",
        default="face_alignment",
        help="face_alignment (default), dlib, or package.module:Class for your own",
    )
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (256)")
    parser.add_argument(
        "--border",
        choices=("constant", "reflect", "replicate"),
        default="constant",
        help="fill where the crop leaves the image (constant: black)",
    )
    parser.add_argument(
        "--detect-max-side",
        type=int,
        metavar="PIXELS",
        help="detect on a copy of larger images reduced to this longest side (faster; crops stay full resolution)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its own backend (1: this one)")
    parser.add_argument("--retry-failures", action="store_true", help="retry images that failed in an earlier run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    dlib = parser.add_argument_group("dlib backend")
    dlib.add_argument(
        "--predictor",
        type=Path,
        metavar="PATH",
        help="shape_predictor_68_face_landmarks.dat (default /usr/share/dlib/shape_predictor_68_face_landmarks.dat)",
    )
    dlib.add_argument("--upsample", type=int, help="detector upsampling, finds smaller faces (1)")
    dlib.add_argument("--adjust-threshold", type=float, help="added to the detector threshold (0.0)")
    fan = parser.add_argument_group("face_alignment backend")
    fan.add_argument("--detector-weights", type=Path, metavar="PATH", help="S3FD weights file s3fd-619a316812.pth")
    fan.add_argument(
        "--landmark-weights", type=Path, metavar="PATH", help="2D-FAN-4 weights file 2DFAN4-11f355bf06.pth.tar"
    )
    fan.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    fan.add_argument("--filter-threshold", type=float, help="S3FD box score threshold (0.5)")
    fan.add_argument(
        "--no-download",
        dest="download",
        action="store_const",
        const=False,
        help="never download missing weights: fail naming the files",
    )
    return parser


def backend_options(options: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The constructor options of the chosen backend; options of another backend are an error."""
    chosen = BACKEND_OPTIONS.get(options.backend, {})
    values: dict[str, Any] = {}
    for backend, names in BACKEND_OPTIONS.items():
        for attribute, keyword in names.items():
            value = getattr(options, attribute)
            if value is None:
                continue
            if backend != options.backend:
                flag = "--no-download" if attribute == "download" else "--" + attribute.replace("_", "-")
                parser.error(f"{flag} is an option of the {backend} backend, not of {options.backend}")
            if attribute in chosen:
                values[keyword] = str(value) if isinstance(value, Path) else value
    return values


def load_listing(options: argparse.Namespace) -> tuple[Any, str]:
    """The listing DataFrame and a name for it (the data set, or the CSV file)."""
    import pandas as pd

    if options.listing is not None:
        if not options.listing.is_file():
            raise FileNotFoundError(f"listing file not found: {options.listing}")
        return pd.read_csv(options.listing, keep_default_na=False), str(options.listing)
    try:
        from exprgan.datamodules.registry import LISTINGS
    except ImportError as error:
        raise ImportError(f"the data set listings are not available ({error}): use --listing CSV") from error
    return LISTINGS[options.dataset](options.root), options.dataset


def preprocess_main(args: Sequence[str]) -> None:
    """``exprgan preprocess``: align a data set's faces into a crop cache."""
    from exprgan.preprocessing.backends import BackendSpec, resolve_backend
    from exprgan.preprocessing.cache import CacheMismatchError
    from exprgan.preprocessing.landmarks import BackendUnavailableError, BackendWeightsError
    from exprgan.preprocessing.run import preprocess

    parser = build_parser()
    options = parser.parse_args(list(args))
    if options.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        resolve_backend(options.backend)
    except (ValueError, ImportError, AttributeError) as error:
        parser.error(f"--backend {options.backend}: {error}")
    spec = BackendSpec(options.backend, backend_options(options, parser))
    try:
        listing, name = load_listing(options)
    except (OSError, ValueError, ImportError) as error:  # a wrong root: the listing says what it expected
        _fail(error)
    try:
        summary = preprocess(
            listing,
            options.root,
            options.out,
            spec,
            size=options.size,
            border=options.border,
            detect_max_side=options.detect_max_side,
            workers=options.workers,
            dataset=name,
            progress=not options.no_progress,
            retry_failures=options.retry_failures,
        )
    except (BackendWeightsError, BackendUnavailableError, CacheMismatchError) as error:
        _fail(error)
    except KeyboardInterrupt:
        print(
            f"exprgan preprocess: interrupted; finished images are kept in {options.out}: "
            "run the same command to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    print(
        f"exprgan preprocess: {summary.rows} rows: {summary.crops} crops in {options.out / 'index.csv'}, "
        f"{summary.failures} failures in {options.out / 'failures.csv'} "
        f"({summary.resumed} images already done, {summary.processed} processed now)"
    )


def _fail(error: BaseException) -> NoReturn:
    print(f"exprgan preprocess: {error}", file=sys.stderr)
    raise SystemExit(1) from error
