"""The crop cache on disk, and reading the images and video frames it is built from.

``exprgan preprocess`` (:mod:`exprgan.preprocessing`) writes a cache folder and the
DataModules (:mod:`exprgan.datamodules`) read it; this module is all either knows of it.
It imports neither Lightning nor a data set, so preprocessing workers stay light.

Layout of a cache folder ``CACHE/``::

    crops/<path without suffix>_<suffix>[_f<frame>].png   aligned crops (see crop_name)
    index.csv       the listing rows with a crop: the listing's columns + crop, score, box,
                    n_faces, other_faces
    failures.csv    the listing rows without one: the listing's columns + reason
    meta.json       settings (size, canonical positions, border, backend), data set, counts
    journal.jsonl   one line per finished image; what a resumed run skips

A *listing* is a :class:`pandas.DataFrame` with the columns :data:`INDEX_COLUMNS` (plus any of
its own), one row per image or video frame of a raw data set tree; ``index.csv`` and
``failures.csv`` keep its columns and its order. Every file is written under a temporary name
and renamed (``os.replace``), so a final name never holds a half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

INDEX = "index.csv"
FAILURES = "failures.csv"
META = "meta.json"
JOURNAL = "journal.jsonl"
CROPS = "crops"
TMP_SUFFIX = ".tmp"
FORMAT_VERSION = 1
"""``format_version`` in ``meta.json``: bumped when the layout or the columns change."""

INDEX_COLUMNS = ("path", "frame", "label", "label_name", "subject", "pose", "split", "fold", "sequence")
"""Columns of every listing, ``index.csv`` and ``failures.csv``: ``path`` relative to the data set
root, ``frame`` of a video (-1: a still image), ``label`` and ``label_name``, ``subject``, ``pose``,
``split`` (an official partition), ``fold`` (-1: none) and ``sequence``."""
DETECTION_COLUMNS = ("crop", "score", "box", "n_faces", "other_faces")
"""Columns ``index.csv`` adds: the crop relative to the cache, and what the detector found."""

_INT_COLUMNS = ("frame", "label", "fold")
_DEFAULTS: dict[str, Any] = {"frame": -1, "subject": "", "pose": "", "split": "", "fold": -1, "sequence": ""}

Key = tuple[str, int]


class BadImageError(OSError):
    """An image or video frame is missing, unreadable or corrupt; the message names it."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CacheError(FileNotFoundError):
    """A preprocessed cache folder is missing or incomplete."""


class CacheMismatchError(ValueError):
    """The cache folder was started with other settings; the message says which differ."""


# --- listings --------------------------------------------------------------------------------
def listing_frame(rows: Sequence[dict[str, Any]], extra: Sequence[str] = ()) -> pd.DataFrame:
    """A listing from row dicts: :data:`INDEX_COLUMNS` (missing ones get their defaults) then ``extra``."""
    frame = pd.DataFrame([{**_DEFAULTS, **row} for row in rows], columns=[*INDEX_COLUMNS, *extra])
    for column in INDEX_COLUMNS:
        frame[column] = frame[column].astype(np.int64 if column in _INT_COLUMNS else str)
    return frame


def listing_keys(listing: pd.DataFrame) -> list[Key]:
    """``(path, frame)`` of every listing row, in order."""
    return [(str(path), int(frame)) for path, frame in zip(listing["path"], listing["frame"])]


def crop_name(path: str, frame: int) -> str:
    """The crop's path relative to the cache, e.g. ``crops/Image/original/train_00001_jpg.png``.

    The source suffix stays in the name (``a.jpg`` and ``a.png`` do not collide) and a video
    frame adds ``_f<frame>``; ``..`` parts become ``__`` and absolute paths lose their anchor.
    """
    pure = PurePosixPath(str(path).replace("\\", "/"))
    parts = [part if part != ".." else "__" for part in pure.parts if part not in (pure.anchor, ".", "")]
    if not parts:
        raise ValueError(f"empty image path {path!r}")
    name = PurePosixPath(*parts)
    stem = name.stem + (f"_{name.suffix[1:]}" if name.suffix else "")
    if frame >= 0:
        stem += f"_f{frame:06d}"
    return str(PurePosixPath(CROPS) / name.parent / f"{stem}.png")


# --- images and video frames -----------------------------------------------------------------
def read_image(path: str | os.PathLike[str], frame: int | None = None) -> np.ndarray:
    """An image file, or frame ``frame`` of a video, as ``uint8 [H, W, 3]`` RGB.

    Grayscale, palette and RGBA images are converted to RGB.

    Raises:
        BadImageError: the file is missing, is not a readable image/video, or has no
            frame ``frame``.
    """
    path = Path(path)
    if frame is not None:
        with _video(path) as capture:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            if frame < 0 or (count > 0 and frame >= count):
                raise BadImageError(path, f"no frame {frame} (the video has {count} frames)")
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, bgr = capture.read()
        if not ok or bgr is None:
            raise BadImageError(path, f"frame {frame} could not be decoded")
        return np.ascontiguousarray(bgr[..., ::-1])
    if not path.is_file():
        raise BadImageError(path, "no such file")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadImageError(path, f"not a readable image ({error})") from error


@contextmanager
def _video(path: Path) -> Iterator[cv2.VideoCapture]:
    if not path.is_file():
        raise BadImageError(path, "no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise BadImageError(path, "not a readable video")
        yield capture
    finally:
        capture.release()


def video_frame_count(path: str | os.PathLike[str]) -> int:
    """Number of frames of a video file (decoded to the end when the header does not say)."""
    with _video(Path(path)) as capture:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else sum(1 for _ in iter(capture.grab, False))


def image_problem(path: str, frame: int, frame_counts: dict[str, int] | None = None) -> str | None:
    """Why image ``path`` (or frame ``frame`` >= 0 of video ``path``) cannot be read, or ``None``.

    A cheap check: JPEGs are decoded at 1/8 scale (which still reads all their data, so
    truncation shows), other still images are verified (headers, PNG checksums); videos
    are opened once (their frame count kept in ``frame_counts``).
    """
    if frame >= 0:
        counts = {} if frame_counts is None else frame_counts
        if path not in counts:
            try:
                counts[path] = video_frame_count(path)
            except BadImageError as error:
                counts[path] = -1
                return error.reason
        if counts[path] < 0:
            return "not a readable video"
        return None if frame < counts[path] else f"no frame {frame} (the video has {counts[path]} frames)"
    if not os.path.isfile(path):
        return "no such file"
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            else:
                image.verify()
    except Exception as error:  # PIL raises many types for broken files
        return f"not a readable image ({error})"
    return None


# --- reading a cache -------------------------------------------------------------------------
def _read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in _INT_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype(np.int64)
    return frame


def read_cache(cache: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(index, failures)`` of a preprocessed cache folder; ``failures`` is empty when absent.

    Raises:
        CacheError: no such folder, no ``index.csv`` in it, or a required column missing.
    """
    cache = Path(cache)
    index_path = cache / INDEX
    if not index_path.is_file():
        what = "does not exist" if not cache.exists() else f"has no {INDEX}"
        raise CacheError(
            f"the preprocessed cache {str(cache)!r} {what}: build it first with `exprgan preprocess` "
            "(see `exprgan preprocess --help`), or leave `cache` unset to read the raw data set"
        )
    index = _read_csv(index_path)
    missing = [c for c in (*INDEX_COLUMNS, "crop") if c not in index]
    if missing:
        raise CacheError(f"{index_path}: missing columns {missing}; rebuild the cache with `exprgan preprocess`")
    failures = _read_csv(cache / FAILURES) if (cache / FAILURES).is_file() else listing_frame([])
    return index, failures.assign(**{c: _DEFAULTS.get(c, "") for c in INDEX_COLUMNS if c not in failures})


# --- writing a cache -------------------------------------------------------------------------
def write_bytes_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` through a temporary name and ``os.replace``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{os.getpid()}{TMP_SUFFIX}")
    temporary.write_bytes(data)
    os.replace(temporary, final)


def write_text_atomic(final: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` through a temporary name and ``os.replace``."""
    write_bytes_atomic(final, text.encode("utf-8"))


def remove_temporaries(out: Path) -> None:
    """Delete the files an interrupted run left under temporary names."""
    for path in out.rglob(f".*{TMP_SUFFIX}"):
        if path.is_file():
            path.unlink()


class Journal:
    """The append-only record of finished images (one JSON object per line), for resuming.

    A line is appended only after its crop is in place, so a recorded success always has its
    crop. A run killed while appending leaves at most one partial last line: it is dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[Key, dict[str, Any]] = {}
        data = path.read_bytes() if path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a partial last line: cut it off
            os.truncate(path, len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[(record["path"], int(record["frame"]))] = record
        self._file = open(path, "a", encoding="utf-8")  # closed in close()

    def add(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` (with ``path`` and ``frame``) and flush it."""
        record = dict(record)
        self.records[(record["path"], int(record["frame"]))] = record
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def build_tables(listing: pd.DataFrame, records: Mapping[Key, Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(index, failures)``: the listing rows split by their records, in listing order, all columns kept."""
    rows = [records[key] for key in listing_keys(listing)]
    succeeded = [record.get("crop") is not None for record in rows]
    index = listing.loc[succeeded].copy()
    for column in DETECTION_COLUMNS:
        index[column] = [record[column] for record, ok in zip(rows, succeeded) if ok]
    failures = listing.loc[[not ok for ok in succeeded]].copy()
    failures["reason"] = [record["reason"] for record, ok in zip(rows, succeeded) if not ok]
    return index.reset_index(drop=True), failures.reset_index(drop=True)


def write_table(path: Path, table: pd.DataFrame) -> None:
    """``table`` as CSV (no index column), atomically."""
    write_text_atomic(path, table.to_csv(index=False, lineterminator="\n"))


def write_meta(out: Path, meta: Mapping[str, Any]) -> None:
    """``meta.json``, atomically."""
    write_text_atomic(out / META, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def check_settings(out: Path, settings: Mapping[str, Any]) -> None:
    """Raise :class:`CacheMismatchError` when ``out`` was started with other ``settings``."""
    meta = json.loads((out / META).read_text(encoding="utf-8")) if (out / META).exists() else {}
    if "settings" not in meta:
        return
    old, new = meta["settings"], json.loads(json.dumps(settings))  # as JSON stores them: tuples are lists
    differing = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))  # absent == None
    if differing:
        details = "; ".join(f"{key}: {old.get(key)!r} there, {new.get(key)!r} now" for key in differing)
        raise CacheMismatchError(
            f"{out} holds a cache made with other settings ({details}). Resume with the same "
            f"settings, or use another --out folder (or delete {out})"
        )
