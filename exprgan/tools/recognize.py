"""exprgan recognize: the expression of every face in photos, as a CSV.

Detect every face in the given photos (folders are searched recursively for image files),
align each one exactly as `exprgan preprocess` does, at the checkpoint's image size, and
classify its expression. Writes a CSV with one row per face:
  file, face (index in the photo, most confident first), box_x1, box_y1, box_x2, box_y2
  (detector box, pixels), score (detector confidence), expression (the most probable class),
  confidence (its probability), error, and the probability of every class (one column each).
A photo without a face gets one row with face = -1 and error = "no face found"; a file that
cannot be read gets one row with the reason. Detections scoring below --min-score are dropped
(dlib also fires weakly on face-like patterns, e.g. the astronaut's mission patch).

examples:
  exprgan recognize photos/ --ckpt runs/rafdb/last.ckpt --out photos.csv
  exprgan recognize a.jpg b.png --ckpt model.ckpt --backend dlib --min-score 0.8
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from exprgan.cache import BadImageError, read_image
from exprgan.joint import JointExprGAN
from exprgan.tools.faces import (
    PHOTO_ERRORS,
    FaceFinder,
    NoFaceError,
    crops_to_tensor,
    open_model_and_faces,
    photo_tool_parser,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
NO_FACE = "no face found"
# the fixed columns; then one probability column per class name
COLUMNS = ("file", "face", "box_x1", "box_y1", "box_x2", "box_y2", "score", "expression", "confidence", "error")


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
    faces: FaceFinder,
    batch_size: int = 32,
    progress: bool = True,
) -> pd.DataFrame:
    """Detect, align and classify every face of every photo in ``paths``.

    Never raises for a bad file: unreadable files and failed detections become rows with an
    ``error`` (and ``face = -1``); so do photos without a face (``error = "no face found"``).

    Args:
        paths: image files and folders (searched recursively, see :func:`find_images`).
        model: a trained model (:func:`exprgan.tools.checkpoints.load_model`); its
            ``class_names`` name the columns.
        faces: finds and aligns the faces at the model's ``image_size``.
        batch_size: faces classified per forward pass.
        progress: show a tqdm progress bar.

    Returns:
        One row per face (columns :data:`COLUMNS`, then one probability column per class,
        see :func:`probability_columns`), in file order, faces most confident first.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    class_columns = probability_columns(model.class_names)
    rows: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], np.ndarray]] = []  # (a face's row, its aligned crop), to classify

    def classify_pending() -> None:
        if pending:
            images = crops_to_tensor([crop for _, crop in pending]).to(device)
            for (row, _), p in zip(pending, model.predict_expressions(images).float().cpu().numpy()):
                row.update(expression=model.class_names[int(p.argmax())], confidence=float(p.max()))
                row.update(zip(class_columns, p.astype(float).tolist()))
            pending.clear()

    for path in tqdm(find_images(paths), unit="img", desc="recognize", disable=not progress):
        failure = {"file": str(path), "face": -1}
        try:
            found = faces.align(read_image(path), path)
        except (BadImageError, NoFaceError) as error:
            unreadable = isinstance(error, BadImageError)
            rows.append(failure | {"error": f"unreadable: {error.reason}" if unreadable else error.reason})
            continue
        except Exception as error:  # one odd photo must not stop the run: it gets its row
            rows.append(failure | {"error": f"error: {type(error).__name__}: {error}"})
            continue
        for index, face in enumerate(found):
            box = dict(zip(("box_x1", "box_y1", "box_x2", "box_y2"), face.box))
            rows.append({"file": str(path), "face": index, **box, "score": round(face.score, 4)})
            pending.append((rows[-1], face.crop))
        if len(pending) >= batch_size:
            classify_pending()
    classify_pending()
    return pd.DataFrame(rows, columns=[*COLUMNS, *class_columns]).astype({"face": int})


def summarize(table: pd.DataFrame) -> str:
    """A short summary of a :func:`recognize` table: files, faces, expressions, failures."""
    faces = table[table["face"] >= 0]
    no_face = table["error"].fillna("").str.startswith(NO_FACE)
    failed = table[(table["face"] < 0) & ~no_face]
    expressions = ", ".join(f"{name} {count}" for name, count in faces["expression"].value_counts().items())
    lines = [
        f"{table['file'].nunique()} files: {len(faces)} faces"
        + (f" ({expressions})" if expressions else "")
        + f", {int(no_face.sum())} without a face, {len(failed)} unreadable or failed"
    ]
    lines += [f"  {row.file}: {row.error}" for row in failed.head(5).itertuples()]
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more (see the error column)")
    return "\n".join(lines)


def recognize_main(args: Sequence[str]) -> None:
    """``exprgan recognize PATH... --ckpt CKPT``: the expression of every face, as a CSV."""
    parser = photo_tool_parser("exprgan recognize", __doc__)
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and folders (recursive)")
    parser.add_argument("--out", type=Path, default=Path("recognize.csv"), metavar="CSV", help="the CSV to write")
    parser.add_argument("--batch-size", type=int, default=32, help="faces classified per forward pass (32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    options = parser.parse_args(args)
    if options.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    paths = find_images(options.paths)
    if not paths:
        parser.exit(1, f"{parser.prog}: no image files in {', '.join(map(str, options.paths))}\n")
    try:
        model, faces = open_model_and_faces(options, parser)
    except PHOTO_ERRORS as error:
        parser.exit(1, f"{parser.prog}: {error}\n")
    table = recognize(paths, model, faces, options.batch_size, progress=not options.no_progress)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(options.out, index=False)
    print(f"exprgan recognize: {summarize(table)}\nresults: {options.out}")
