"""The resumable preprocessing run: listing rows in, aligned crops and an index out."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from exprgan import __version__, cache
from exprgan.preprocessing.align import BORDERS, CanonicalFace, align_face
from exprgan.preprocessing.backends import BackendSpec
from exprgan.preprocessing.landmarks import Detection, LandmarkBackend, most_confident_first

NO_FACE = "no face found"


@dataclass(frozen=True)
class Task:
    """One image to align: where to read it and where its crop goes."""

    root: str
    path: str
    frame: int
    out: str
    crop: str
    size: int
    canonical: CanonicalFace
    border: str
    detect_max_side: int | None = None


@dataclass(frozen=True)
class PreprocessSummary:
    """What a run did, in listing rows and distinct images."""

    rows: int  # listing rows
    crops: int  # rows in index.csv
    failures: int  # rows in failures.csv
    resumed: int  # images found done in the cache and skipped
    processed: int  # images processed by this run


def normalise_listing(listing: pd.DataFrame) -> pd.DataFrame:
    """A copy with a fresh index, ``path`` as str and ``frame`` as int (-1, still image, when absent)."""
    if "path" not in listing.columns:
        raise ValueError(f"a listing needs a 'path' column (relative to the root); it has {list(listing.columns)}")
    listing = listing.reset_index(drop=True).copy()
    listing["path"] = listing["path"].astype(str)
    if "frame" not in listing.columns:
        listing["frame"] = -1
    listing["frame"] = pd.to_numeric(listing["frame"], errors="coerce").fillna(-1).astype(int)
    return listing


def _detection_info(detection: Detection) -> dict[str, Any]:
    return {"score": round(detection.score, 4), "box": [round(value, 1) for value in detection.box]}


def process(task: Task, backend: LandmarkBackend) -> dict[str, Any]:
    """Read, detect, align and write one crop; the journal record (success or failure with reason).

    Never raises for a bad image or a failing detection or alignment: those become a ``reason``.
    An error writing the cache (a full disk) is raised: the run stops and can be resumed.
    """
    record: dict[str, Any] = {"path": task.path, "frame": task.frame, "crop": None, "reason": None}
    record.update({"score": None, "box": None, "n_faces": None, "other_faces": None})
    try:
        image = cache.read_image(Path(task.root) / task.path, task.frame if task.frame >= 0 else None)
    except cache.BadImageError as error:
        return record | {"reason": f"unreadable: {error.reason}"}
    try:
        detections = detect_faces(backend, image, task.detect_max_side)
        record["n_faces"] = len(detections)
        if not detections:
            return record | {"reason": NO_FACE}
        best, *others = detections
        crop, _ = align_face(image, best.landmarks, task.size, task.canonical, task.border)
    except Exception as error:  # one odd image must not stop the run: it is recorded
        return record | {"reason": f"error: {type(error).__name__}: {error}"}
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="PNG")
    cache.write_bytes_atomic(Path(task.out) / task.crop, buffer.getvalue())  # cache I/O errors do stop the run
    record.update(_detection_info(best))
    record["box"] = json.dumps(record["box"])
    record["other_faces"] = json.dumps([_detection_info(other) for other in others])
    return record | {"crop": task.crop}


def detect_faces(backend: LandmarkBackend, image: np.ndarray, max_side: int | None = None) -> list[Detection]:
    """``backend``'s faces of ``image``, most confident first, in ``image``'s pixels.

    With ``max_side``, a larger image is detected on a copy reduced to that longest side
    (much faster on big photographs); boxes and landmarks are mapped back to full resolution,
    where the crop is then taken.
    """
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return most_confident_first(backend.detect(image))
    reduction = max_side / max(height, width)
    small_width, small_height = max(1, round(width * reduction)), max(1, round(height * reduction))
    small = cv2.resize(image, (small_width, small_height), interpolation=cv2.INTER_AREA)
    scale = np.array([width / small_width, height / small_height])

    def to_full(points: np.ndarray) -> np.ndarray:  # pixel centres: x = (x_small + 0.5) * scale - 0.5
        return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5

    return [
        Detection(box=tuple(to_full(np.reshape(d.box, (2, 2))).ravel()), score=d.score, landmarks=to_full(d.landmarks))
        for d in most_confident_first(backend.detect(small))
    ]


_WORKER_BACKEND: LandmarkBackend | None = None


def _init_worker(spec: BackendSpec) -> None:
    global _WORKER_BACKEND
    _WORKER_BACKEND = spec.build()


def _process_in_worker(task: Task) -> dict[str, Any]:
    assert _WORKER_BACKEND is not None, "worker not initialised"
    return process(task, _WORKER_BACKEND)


def _run_pool(tasks: list[Task], spec: BackendSpec, workers: int, start_method: str) -> Iterator[dict[str, Any]]:
    context = multiprocessing.get_context(start_method)
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(spec,))
    pending: set[Future[dict[str, Any]]] = set()
    try:
        for task in tasks:
            pending.add(executor.submit(_process_in_worker, task))
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    except BrokenProcessPool as error:
        raise RuntimeError(
            f"a preprocessing worker died ({error}); finished images are kept: run the same command to resume"
        ) from error
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def preprocess(
    listing: pd.DataFrame,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    backend: BackendSpec | str = "face_alignment",
    size: int = 256,
    canonical: CanonicalFace | None = None,
    border: str = "constant",
    detect_max_side: int | None = None,
    workers: int = 1,
    dataset: str | None = None,
    progress: bool = True,
    start_method: str = "spawn",
    retry_failures: bool = False,
) -> PreprocessSummary:
    """Align every image of ``listing`` into the cache folder ``out``; resumes what ``out`` holds.

    Args:
        listing: one row per image or video frame: ``path`` (relative to ``root``), ``frame``
            (video frame index, -1 or absent for still images) and any other columns, which
            are kept in ``index.csv`` / ``failures.csv``.
        root: the folder the paths are relative to.
        out: the cache folder (created; see :mod:`exprgan.cache` for its layout).
        backend: a :class:`BackendSpec` or a backend name (``"face_alignment"``, ``"dlib"``).
        size: side of the square crops, pixels.
        canonical: where eyes and mouth go (default :class:`CanonicalFace`).
        border: fill outside the image: ``"constant"`` (black), ``"reflect"``, ``"replicate"``.
        detect_max_side: detect faces on a copy reduced to this longest side (crops stay full resolution).
        workers: 1 runs in this process; more starts that many processes, each with its own backend.
        dataset: the data set's name for ``meta.json``.
        progress: show a tqdm progress bar.
        start_method: multiprocessing start method of the workers (``"spawn"`` is safe with CUDA).
        retry_failures: process again the images that failed in an earlier run (e.g. after fixing files).

    Raises:
        CacheMismatchError: ``out`` was started with other settings.
        BackendWeightsError, BackendUnavailableError: the backend cannot be built.
    """
    size = int(size)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if detect_max_side is not None and detect_max_side < 32:
        raise ValueError(f"detect_max_side must be at least 32 pixels, got {detect_max_side}")
    if border not in BORDERS:
        raise ValueError(f"border must be one of {', '.join(BORDERS)}, got {border!r}")
    canonical = canonical or CanonicalFace()
    listing = normalise_listing(listing)
    spec = (BackendSpec(backend) if isinstance(backend, str) else backend).prepared()
    out, root = Path(out), Path(root)
    described = spec.describe()
    backend_options = {k: v for k, v in described["options"].items() if k not in ("device", "download")}
    settings = {
        "size": size,
        "border": border,
        "detect_max_side": detect_max_side,
        "canonical": canonical.to_dict(),
        "backend": {"name": described["name"], "options": backend_options},
    }
    out.mkdir(parents=True, exist_ok=True)
    cache.check_settings(out, settings)
    meta = {
        "format_version": cache.FORMAT_VERSION,
        "exprgan_version": __version__,
        "dataset": dataset,
        "root": str(root.resolve()),
        "settings": settings,
        "backend": described,
        "landmarks": "68-point iBUG 300-W scheme; eye centre = mean of 36-41 / 42-47, mouth = midpoint of 48, 54",
        "canonical_units": "fractions of the crop side, (x, y) from the top-left; left = the image's left",
        "files": {"crops": cache.CROPS, "index": cache.INDEX, "failures": cache.FAILURES, "journal": cache.JOURNAL},
        "complete": False,
    }
    cache.write_meta(out, meta)
    cache.remove_temporaries(out)

    journal = cache.Journal(out / cache.JOURNAL)
    try:
        for key, record in list(journal.records.items()):
            missing_crop = record.get("crop") is not None and not (out / record["crop"]).is_file()
            if missing_crop or (retry_failures and record.get("crop") is None):
                del journal.records[key]  # a later add supersedes its line
        keys = list(dict.fromkeys(cache.listing_keys(listing)))
        todo: list[cache.Key] = [key for key in keys if key not in journal.records]
        resumed = len(keys) - len(todo)
        tasks = [
            Task(
                str(root), path, frame, str(out), cache.crop_name(path, frame), size, canonical, border, detect_max_side
            )
            for path, frame in todo
        ]
        if workers > 1:
            results = _run_pool(tasks, spec, workers, start_method)
        else:
            backend = spec.build()
            results = (process(task, backend) for task in tasks)
        bar = tqdm(total=len(keys), initial=resumed, unit="img", desc="preprocess", disable=not progress)
        with closing(results) as stream, bar:
            for record in stream:
                journal.add(record)
                bar.update()
    finally:
        journal.close()

    index, failures = cache.build_tables(listing, journal.records)
    cache.write_table(out / cache.INDEX, index)
    cache.write_table(out / cache.FAILURES, failures)
    counts = {"rows": len(listing), "crops": len(index), "failures": len(failures)}
    cache.write_meta(out, meta | {"complete": True, "counts": counts})
    return PreprocessSummary(len(listing), len(index), len(failures), resumed, len(todo))
