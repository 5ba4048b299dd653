"""``exprgan recognize``: the expression of every face in a user's photos, as a CSV.

:func:`recognize` is the plain-function core (paths, a loaded model and a landmark backend
in, a :class:`pandas.DataFrame` out); :func:`recognize_main` is the command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pandas as pd
import torch

from exprgan.tools.faces import crops_to_tensor, find_faces

if TYPE_CHECKING:
    from exprgan.joint import JointExprGAN
    from exprgan.preprocessing.align import CanonicalFace
    from exprgan.preprocessing.landmarks import LandmarkBackend

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
NO_FACE = "no face found"
# the fixed columns; then one probability column per class name
COLUMNS = ("file", "face", "box_x1", "box_y1", "box_x2", "box_y2", "score", "expression", "confidence", "error")

DESCRIPTION = """\
Detect every face in the given photos (folders are searched recursively for image files),
align each one exactly as `exprgan preprocess` does, at the checkpoint's image size, and
classify its expression. Writes a CSV with one row per face:
  file, face (index in the photo, most confident first), box_x1, box_y1, box_x2, box_y2
  (detector box, pixels), score (detector confidence), expression (the most probable class),
  confidence (its probability), error, and the probability of every class (one column each).
A photo without a face gets one row with face = -1 and error = "no face found"; a file that
cannot be read gets one row with the reason. Detections scoring below --min-score are dropped
(dlib also fires weakly on face-like patterns, e.g. the astronaut's mission patch)."""

EXAMPLES = """\
examples:
  exprgan recognize photos/ --ckpt runs/rafdb/last.ckpt --out photos.csv
  exprgan recognize a.jpg b.png --ckpt model.ckpt --backend dlib --min-score 0.8"""


def find_images(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to recognise: each file as given, each folder's image files (recursive, sorted).

    Files named directly are kept whatever their extension (an unreadable one gets its row);
    in folders only :data:`IMAGE_EXTENSIONS` count. A path that does not exist is kept, so it
    gets a row saying so. Duplicates are listed once.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def probability_columns(class_names: Sequence[str]) -> list[str]:
    """One column name per class: the class name, ``p_NAME`` where it would clash with a fixed column."""
    return [f"p_{name}" if name in COLUMNS else str(name) for name in class_names]


def recognize(
    paths: Iterable[str | os.PathLike[str]],
    model: JointExprGAN,
    backend: LandmarkBackend,
    min_score: float = 0.0,
    batch_size: int = 32,
    canonical: CanonicalFace | None = None,
    border: str = "constant",
    detect_max_side: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Detect, align and classify every face of every photo in ``paths``.

    Never raises for a bad file: unreadable files and failed detections become rows with an
    ``error`` (and ``face = -1``); so do photos without a face (``error = "no face found"``).

    Args:
        paths: image files and folders (searched recursively, see :func:`find_images`).
        model: a trained model (e.g. :func:`exprgan.tools.checkpoints.load_model`); its
            ``hparams.image_size`` sets the crop size and its ``class_names`` the columns.
        backend: a landmark backend instance (e.g. ``BackendSpec("dlib").build()``).
        min_score: detections scoring below this are dropped (the backend's scale).
        batch_size: faces classified per forward pass.
        canonical: where eyes and mouth go (default: preprocessing's :class:`CanonicalFace`).
        border: fill where a crop leaves the photo (as in preprocessing).
        detect_max_side: detect on a copy of larger photos reduced to this longest side.
        progress: show a tqdm progress bar.

    Returns:
        One row per face (columns :data:`COLUMNS`, then one probability column per class,
        see :func:`probability_columns`), in file order, faces most confident first.
    """
    from tqdm.auto import tqdm

    from exprgan.datamodules.io import BadImageError, read_image

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    size = int(model.hparams.image_size)
    device = next(model.parameters()).device
    class_columns = probability_columns(model.class_names)
    rows: list[dict[str, Any]] = []
    pending: list[tuple[int, np.ndarray]] = []  # (row index, aligned crop) awaiting classification

    def classify_pending() -> None:
        if not pending:
            return
        images = crops_to_tensor([crop for _, crop in pending]).to(device)
        with torch.no_grad():
            probabilities = model.predict_expressions(images).float().cpu().numpy()
        for (row_index, _), p in zip(pending, probabilities):
            best = int(p.argmax())
            rows[row_index].update(expression=model.class_names[best], confidence=float(p[best]))
            rows[row_index].update(zip(class_columns, p.astype(float).tolist()))
        pending.clear()

    for path in tqdm(find_images(paths), unit="img", desc="recognize", disable=not progress):
        failure = {"file": str(path), "face": -1}
        try:
            image = read_image(path)
        except BadImageError as error:
            rows.append(failure | {"error": f"unreadable: {error.reason}"})
            continue
        try:
            faces, below = find_faces(image, backend, size, min_score, canonical, border, detect_max_side)
        except Exception as error:  # one odd photo must not stop the run: it gets its row
            rows.append(failure | {"error": f"error: {type(error).__name__}: {error}"})
            continue
        if not faces:
            detail = f" ({below} below the minimum score {min_score:g})" if below else ""
            rows.append(failure | {"error": NO_FACE + detail})
            continue
        for index, face in enumerate(faces):
            x1, y1, x2, y2 = face.box
            pending.append((len(rows), face.crop))
            rows.append(
                {"file": str(path), "face": index, "box_x1": x1, "box_y1": y1, "box_x2": x2, "box_y2": y2}
                | {"score": round(face.score, 4)}
            )
        if len(pending) >= batch_size:
            classify_pending()
    classify_pending()
    table = pd.DataFrame(rows, columns=[*COLUMNS, *class_columns])
    return table.astype({"face": int})


def summarize(table: pd.DataFrame) -> str:
    """A short summary of a :func:`recognize` table: files, faces, expressions, failures."""
    faces = table[table["face"] >= 0]
    no_face = table["error"].fillna("").str.startswith(NO_FACE)
    failed = (table["face"] < 0) & ~no_face
    counts = faces["expression"].value_counts()
    expressions = ", ".join(f"{name} {count}" for name, count in counts.items())
    lines = [
        f"{table['file'].nunique()} files: {len(faces)} faces"
        + (f" ({expressions})" if expressions else "")
        + f", {int(no_face.sum())} without a face, {int(failed.sum())} unreadable or failed"
    ]
    for _, row in table[failed].head(5).iterrows():
        lines.append(f"  {row['file']}: {row['error']}")
    if failed.sum() > 5:
        lines.append(f"  ... and {int(failed.sum()) - 5} more (see the error column)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``exprgan recognize``."""
    from exprgan.tools.faces import FACE_OPTIONS_HELP, add_face_arguments

    parser = argparse.ArgumentParser(
        prog="exprgan recognize",
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n\n" + FACE_OPTIONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and folders (recursive)")
    parser.add_argument("--ckpt", type=Path, required=True, metavar="CKPT", help="a trained exprgan checkpoint")
    parser.add_argument(
        "--out", type=Path, default=Path("recognize.csv"), metavar="CSV", help="the CSV to write (recognize.csv)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="faces classified per forward pass (32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_face_arguments(parser)
    return parser


def recognize_main(args: Sequence[str]) -> None:
    """``exprgan recognize PATH... --ckpt CKPT``: the expression of every face, as a CSV."""
    from exprgan.preprocessing.landmarks import BackendUnavailableError, BackendWeightsError
    from exprgan.tools.faces import device_and_backend, min_score_from_options, open_checkpoint

    parser = build_parser()
    options = parser.parse_args(list(args))
    if options.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    device, spec = device_and_backend(options, parser)
    paths = find_images(options.paths)
    if not paths:
        _fail(f"no image files in {', '.join(map(str, options.paths))}")
    try:
        model = open_checkpoint(options.ckpt, device)
        backend = spec.build()
    except (FileNotFoundError, ValueError, BackendUnavailableError, BackendWeightsError) as error:
        _fail(str(error))
    table = recognize(
        paths,
        model,
        backend,
        min_score=min_score_from_options(options),
        batch_size=options.batch_size,
        border=options.border,
        detect_max_side=options.detect_max_side,
        progress=not options.no_progress,
    )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(options.out, index=False)
    print(f"exprgan recognize: {summarize(table)}\nresults: {options.out}")


def _fail(message: str) -> NoReturn:
    print(f"exprgan recognize: {message}", file=sys.stderr)
    raise SystemExit(1)
