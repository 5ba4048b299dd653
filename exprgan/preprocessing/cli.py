"""``exprgan preprocess``: align a data set's faces into a crop cache (resumable)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from exprgan.datamodules import LISTINGS
from exprgan.preprocessing.landmarks import BackendUnavailableError
from exprgan.preprocessing.options import BACKENDS_HELP, add_backend_arguments, backend_spec
from exprgan.preprocessing.run import preprocess

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

EXAMPLES = """\
examples:
  exprgan preprocess --dataset rafdb --root data/RAF-DB/basic --out cache/rafdb --workers 4
  exprgan preprocess --dataset multipie --root data/Multi-PIE --out cache/multipie --backend dlib
  exprgan preprocess --listing my_listing.csv --root data/mine --out cache/mine"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``exprgan preprocess``."""
    parser = argparse.ArgumentParser(
        prog="exprgan preprocess",
        description=DESCRIPTION,
        epilog=BACKENDS_HELP + "\n\n" + EXAMPLES,
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
    add_backend_arguments(parser)
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (256)")
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its own backend (1: this one)")
    parser.add_argument("--retry-failures", action="store_true", help="retry images that failed in an earlier run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def load_listing(options: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """The listing DataFrame and a name for it (the data set, or the CSV file)."""
    if options.listing is not None:
        if not options.listing.is_file():
            raise FileNotFoundError(f"listing file not found: {options.listing}")
        return pd.read_csv(options.listing, keep_default_na=False), str(options.listing)
    return LISTINGS[options.dataset](options.root), options.dataset


def preprocess_main(args: Sequence[str]) -> None:
    """``exprgan preprocess``: align a data set's faces into a crop cache."""
    parser = build_parser()
    options = parser.parse_args(list(args))
    if options.workers < 1:
        parser.error("--workers must be at least 1")
    spec = backend_spec(options, parser)
    try:
        listing, name = load_listing(options)  # a wrong root: the listing says what it expected
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
    except (OSError, ValueError, BackendUnavailableError) as error:  # missing weights, a cache of other settings
        print(f"exprgan preprocess: {error}", file=sys.stderr)
        raise SystemExit(1) from error
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
