"""The crop cache on disk: crop names, atomic writes, the resume journal, index and meta files.

Layout of a cache folder ``CACHE/``::

    crops/<path without suffix>_<suffix>[_f<frame>].png   aligned crops
    index.csv       the listing rows with a crop: all listing columns + crop, score, box,
                    n_faces, other_faces
    failures.csv    the listing rows without one: all listing columns + reason
    meta.json       settings (size, canonical positions, border, backend), data set, counts
    journal.jsonl   one line per finished image; what a resumed run skips

Every file is written under a temporary name and renamed (``os.replace``), so a final name
never holds a half-written file. ``index.csv`` and ``failures.csv`` keep the listing's order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

INDEX = "index.csv"
FAILURES = "failures.csv"
META = "meta.json"
JOURNAL = "journal.jsonl"
CROPS = "crops"
TMP_SUFFIX = ".tmp"
DETECTION_COLUMNS = ("crop", "score", "box", "n_faces", "other_faces")

Key = tuple[str, int]


class CacheMismatchError(ValueError):
    """The cache folder was started with other settings; the message says which differ."""


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


def temporary_name(final: Path) -> Path:
    """A hidden name beside ``final`` for a file being written (``.name.<pid>.tmp``)."""
    return final.with_name(f".{final.name}.{os.getpid()}{TMP_SUFFIX}")


def write_bytes_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` through a temporary name and ``os.replace``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(final)
    temporary.write_bytes(data)
    os.replace(temporary, final)


def write_text_atomic(final: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` through a temporary name and ``os.replace``."""
    write_bytes_atomic(final, text.encode("utf-8"))


def remove_temporaries(out: Path) -> int:
    """Delete files left under temporary names by an interrupted run; how many."""
    removed = 0
    for path in out.rglob(f".*{TMP_SUFFIX}"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


class Journal:
    """The append-only record of finished images (one JSON object per line), for resuming.

    A line is appended only after its crop is in place, so a recorded success always has its
    crop. A run killed while appending leaves at most one partial last line: it is dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[Key, dict[str, Any]] = {}
        if path.exists():
            self._load()
        self._file = open(path, "a", encoding="utf-8")  # closed in close()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a partial last line: cut it off
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[(record["path"], int(record["frame"]))] = record

    def add(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` (with ``path`` and ``frame``) and flush it."""
        record = dict(record)
        self.records[(record["path"], int(record["frame"]))] = record
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def forget(self, key: Key) -> None:
        """Treat ``key`` as not done (its crop went missing); a later ``add`` supersedes the line."""
        self.records.pop(key, None)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def listing_keys(listing: pd.DataFrame) -> list[Key]:
    """``(path, frame)`` of every listing row, in order."""
    return [(str(path), int(frame)) for path, frame in zip(listing["path"], listing["frame"])]


def build_tables(listing: pd.DataFrame, records: Mapping[Key, Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(index, failures)``: the listing rows split by their records, in listing order, all columns kept."""
    keys = listing_keys(listing)
    rows = [records[key] for key in keys]
    succeeded = [record.get("crop") is not None for record in rows]
    index = listing.loc[succeeded].copy()
    for column in DETECTION_COLUMNS:
        index[column] = [record[column] for record, ok in zip(rows, succeeded) if ok]
    failed = [not ok for ok in succeeded]
    failures = listing.loc[failed].copy()
    failures["reason"] = [record["reason"] for record, ok in zip(rows, succeeded) if not ok]
    return index.reset_index(drop=True), failures.reset_index(drop=True)


def write_table(path: Path, table: pd.DataFrame) -> None:
    """``table`` as CSV (no index column), atomically."""
    write_text_atomic(path, table.to_csv(index=False, lineterminator="\n"))


def read_meta(out: Path) -> dict[str, Any] | None:
    """The cache's ``meta.json``, or None when there is none yet."""
    path = out / META
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_meta(out: Path, meta: Mapping[str, Any]) -> None:
    """``meta.json``, atomically."""
    write_text_atomic(out / META, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def check_settings(out: Path, settings: Mapping[str, Any]) -> None:
    """Raise :class:`CacheMismatchError` when ``out`` was started with other ``settings``."""
    meta = read_meta(out)
    if meta is None or "settings" not in meta:
        return
    old = json.loads(json.dumps(meta["settings"]))
    new = json.loads(json.dumps(settings))
    differing = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))  # absent == None
    if differing:
        details = "; ".join(f"{key}: {old.get(key)!r} there, {new.get(key)!r} now" for key in differing)
        raise CacheMismatchError(
            f"{out} holds a cache made with other settings ({details}). Resume with the same "
            f"settings, or use another --out folder (or delete {out})"
        )
