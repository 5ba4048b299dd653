"""The shared base of the real data sets' DataModules: listings, preprocessed caches, splits, loading."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from exprgan.cache import INDEX_COLUMNS, BadImageError, CacheError, image_problem, read_cache, read_image
from exprgan.datamodules.augment import DEFAULT_AUGMENTATION, Augmentation, Augmenter
from exprgan.datamodules.base import PairDataModule, to_tensor
from exprgan.datamodules.folds import subject_folds
from exprgan.datamodules.pairs import EmptyClassError, Sampling, class_members

OnBadImage = Literal["error", "skip"]


class DataRootError(FileNotFoundError):
    """The data root is missing or is not laid out as the data set is; the message says what was expected."""


class LabelFileError(ValueError):
    """A label or annotation file has a line that cannot be read; the message names the file and line."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        self.path, self.line = Path(path), line
        super().__init__(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


# --- listings ------------------------------------------------------------------------------
def read_text_lines(path: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank lines; CRLF/CR ends and a UTF-8 BOM are fine."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise LabelFileError(path, line, f"not UTF-8 text ({error.reason})") from error
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def missing_root(name: str, root: str | os.PathLike[str], problem: str, layout: str, obtain: str) -> DataRootError:
    """The error for a data root that is not ``name``'s: what is wrong, the layout expected, where to get it."""
    return DataRootError(
        f"{name}: {problem} (data root {str(root)!r}).\n"
        f"Expected layout:\n{layout.rstrip()}\n"
        f"How to obtain it: {obtain} exprgan never downloads it."
    )


# --- images --------------------------------------------------------------------------------
def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of ``uint8 [H, W, 3]``, resized to ``[size, size, 3]`` (area filter to shrink)."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    image = image[top : top + side, left : left + side]
    if side != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(image)


class FaceImages(Dataset):
    """The images of one split; items are ``{"image", "label", "subject", "pose", "index"}`` tensors.

    ``image`` is ``[3, S, S]`` in ``[-1, 1]``; ``subject`` and ``pose`` index the
    DataModule's ``subjects`` and ``poses`` lists (-1: unknown); ``index`` is the row of
    the split. Works without Lightning.

    Args:
        files: image (or video) file of every item.
        frames: video frame of every item, -1 for still images.
        labels: class of every item.
        subjects, poses: indices into the owner's ``subjects`` / ``poses`` (-1: none).
        image_size: side ``S`` of the square images.
        transform: ``uint8 [S, S, 3] -> uint8 [S, S, 3]`` applied after resizing
            (augmentation; ``None`` for evaluation).
    """

    def __init__(
        self,
        files: Sequence[str],
        frames: Sequence[int],
        labels: Sequence[int],
        subjects: Sequence[int],
        poses: Sequence[int],
        image_size: int,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.files = list(files)
        self.frames = np.asarray(frames, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.subjects = np.asarray(subjects, dtype=np.int64)
        self.poses = np.asarray(poses, dtype=np.int64)
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as ``uint8 [S, S, 3]`` RGB (transformed when a transform is set)."""
        frame = int(self.frames[index])
        image = fit_square(read_image(self.files[index], frame if frame >= 0 else None), self.image_size)
        return self.transform(image) if self.transform is not None else image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "image": to_tensor(self.image(index)),
            "label": torch.tensor(self.labels[index]),
            "subject": torch.tensor(self.subjects[index]),
            "pose": torch.tensor(self.poses[index]),
            "index": torch.tensor(index),
        }


class ImageFolderDataModule(PairDataModule):
    """Base of the DataModules of data sets on disk (RAF-DB, Multi-PIE, MMI).

    Rows come from the data set's listing of ``root`` or, with ``cache``, from ``cache/index.csv``
    (the aligned crops). ``setup`` checks every image once: a missing or unreadable one raises
    :class:`~exprgan.cache.BadImageError` naming it (``on_bad_image="skip"``: left out, counted in
    a warning). Splits: the official train/test partition, or with ``uses_folds`` fold ``fold`` of
    a subject-independent k-fold split as the test set. Validation uses the test split unless
    ``val_fraction > 0`` holds out that fraction of the training subjects (of the images when
    subjects are unknown). Subclasses set the class attributes, ``num_expressions``,
    ``class_names`` and ``poses``, and implement :meth:`list_raw` (and :meth:`select`).

    Args:
        root: the raw data set folder.
        cache: a folder written by ``exprgan preprocess`` (``index.csv``, crops); ``None``:
            read the raw images.
        image_size: side of the square images (a multiple of 32; 256 in the paper).
        val_fraction: fraction of training subjects held out for validation (0: validate
            on the test split).
        on_bad_image: ``error`` (raise, naming the file) or ``skip`` (leave it out, warn).
        augmentation: training augmentation (``None``: none).
        batch_size, eval_batch_size, num_workers, seed, steps_per_epoch, sampling: see
            :class:`~exprgan.datamodules.base.PairDataModule`.
    """

    dataset_name: ClassVar[str] = ""
    uses_folds: ClassVar[bool] = False

    def __init__(
        self,
        root: str,
        cache: str | None = None,
        image_size: int = 256,
        val_fraction: float = 0.0,
        on_bad_image: OnBadImage = "error",
        augmentation: Augmentation | None = DEFAULT_AUGMENTATION,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        sampling: Sampling = "cycled",
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, seed, steps_per_epoch, sampling)
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if on_bad_image not in ("error", "skip"):
            raise ValueError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")
        self.root = root
        self.cache = cache
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.on_bad_image = on_bad_image
        self.augmentation = augmentation
        self.poses: list[str] = []
        self.subjects: list[str] = []
        self.fold = 0
        self.num_folds = 5
        self.fold_seed = 0
        self.skipped = pd.DataFrame()
        self._frames: dict[str, pd.DataFrame] = {}
        self._splits: dict[str, FaceImages] = {}

    # --- what a data set provides -------------------------------------------------------
    def list_raw(self) -> pd.DataFrame:
        """The listing of ``root`` under this DataModule's options."""
        raise NotImplementedError

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of a cache index (or failures) this DataModule uses, labelled in its class order.

        Rows are matched by ``label_name``; other names (e.g. Neutral for 6-class MMI) are
        dropped. Subclasses add their own filters.
        """
        classes = {name: c for c, name in enumerate(self.class_names)}
        frame = frame[frame["label_name"].isin(list(classes))].copy()
        frame["label"] = frame["label_name"].map(classes).astype(np.int64)
        return frame

    # --- rows and splits -------------------------------------------------------------------
    def _rows(self) -> pd.DataFrame:
        """Every usable row, with ``_file`` (absolute) and ``_frame`` (-1: still) to read it from."""
        if self.cache is not None:
            index, failures = read_cache(self.cache)
            rows = self.select(index)
            listed = self.select(pd.concat([index[list(INDEX_COLUMNS)], failures[list(INDEX_COLUMNS)]]))
            rows["_file"] = [str(Path(self.cache) / crop) for crop in rows["crop"]]
            rows["_frame"] = -1
            if not len(rows):
                raise CacheError(
                    f"{self.cache}/index.csv has no rows for this {self.dataset_name} configuration "
                    f"(classes {list(self.class_names)}): was the cache built with other options?"
                )
        else:
            rows = listed = self.select(self.list_raw())
            rows["_file"] = [str(Path(self.root) / path) for path in rows["path"]]
            rows["_frame"] = rows["frame"]
        if self.uses_folds:
            folds = subject_folds(listed["subject"], self.num_folds, self.fold_seed)
            rows["fold"] = rows["subject"].map(folds).astype(np.int64)
        return rows.reset_index(drop=True)

    def _drop_bad_images(self, rows: pd.DataFrame) -> pd.DataFrame:
        counts: dict[str, int] = {}
        problems = [image_problem(f, int(k), counts) for f, k in zip(rows["_file"], rows["_frame"])]
        bad = np.array([p is not None for p in problems], dtype=bool)
        if not bad.any():
            return rows
        first = int(np.flatnonzero(bad)[0])
        if self.on_bad_image == "error":
            more = f" ({int(bad.sum())} listed images are unreadable in all)" if bad.sum() > 1 else ""
            hint = "; set on_bad_image: skip to leave them out"
            raise BadImageError(rows["_file"][first], f"{problems[first]}{more}{hint}")
        self.skipped = rows[bad].assign(reason=[p for p in problems if p is not None])
        examples = "; ".join(f"{f}: {r}" for f, r in zip(self.skipped["_file"][:3], self.skipped["reason"][:3]))
        warnings.warn(
            f"{self.dataset_name}: skipped {int(bad.sum())} of {len(rows)} listed images that are missing or "
            f"unreadable (e.g. {examples})",
            stacklevel=2,
        )
        return rows[~bad].reset_index(drop=True)

    def _split_rows(self, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
        if self.uses_folds:
            test = rows["fold"] == self.fold
            frames = {"train": rows[~test], "test": rows[test]}
            where = f"fold {self.fold} of {self.num_folds}"
        else:
            frames = {"train": rows[rows["split"] == "train"], "test": rows[rows["split"] == "test"]}
            where = "the official partition"
        for name, frame in frames.items():
            if not len(frame):
                raise ValueError(f"{self.dataset_name}: the {name} split of {where} has no images")
        train = frames["train"]
        if self.val_fraction > 0:
            # held out: whole subjects, or images when subjects are unknown
            units = train["subject"].to_numpy() if (train["subject"] != "").all() else np.arange(len(train))
            pool = np.unique(units)  # sorted
            count = min(len(pool) - 1, max(1, round(self.val_fraction * len(pool))))
            val = np.isin(units, np.random.default_rng([self.seed, 0x7A1]).permutation(pool)[:count])
            frames["train"], frames["val"] = train[~val], train[val]
        else:
            frames["val"] = frames["test"]
        try:
            class_members(frames["train"]["label"].tolist(), self.num_expressions, self.class_names)
        except EmptyClassError as error:
            raise EmptyClassError(f"{self.dataset_name} ({where}, training split): {error}") from error
        return {name: frame.reset_index(drop=True) for name, frame in frames.items()}

    def _images(self, frame: pd.DataFrame, train: bool) -> FaceImages:
        subjects = {s: k for k, s in enumerate(self.subjects)}
        poses = {p: k for k, p in enumerate(self.poses)}
        return FaceImages(
            frame["_file"].tolist(),
            frame["_frame"].tolist(),
            frame["label"].tolist(),
            [subjects.get(s, -1) for s in frame["subject"]],
            [poses.get(p, -1) for p in frame["pose"]],
            self.image_size,
            Augmenter(self.augmentation) if train and self.augmentation is not None else None,
        )

    def setup(self, stage: str | None = None) -> None:
        if self._splits:
            return
        rows = self._drop_bad_images(self._rows())
        self.subjects = sorted(s for s in rows["subject"].unique() if s)
        self._frames = self._split_rows(rows)
        self._splits = {name: self._images(self._frames[name], train=name == "train") for name in ("train", "test")}
        held_out = self.val_fraction > 0  # otherwise validation is the test split itself
        self._splits["val"] = self._images(self._frames["val"], train=False) if held_out else self._splits["test"]

    def split_frame(self, name: str) -> pd.DataFrame:
        """The rows of split ``name`` (``train``, ``val`` or ``test``)."""
        self.setup()
        return self._frames[name]

    def split(self, name: str) -> FaceImages:
        """The images of split ``name`` (``train``, ``val`` or ``test``)."""
        self.setup()
        return self._splits[name]
