"""RAF-DB (basic emotions): the official partition, the 7 classes, aligned or original images."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from exprgan.cache import listing_frame
from exprgan.datamodules.face_renderer import EXPRESSIONS
from exprgan.datamodules.images import ImageFolderDataModule, LabelFileError, missing_root, read_text_lines

RAFDB_CLASSES: tuple[str, ...] = EXPRESSIONS
"""Class order: the label file's 1..7 minus one (surprise, fear, disgust, happiness, sadness, anger, neutral)."""

LABEL_FILE = "EmoLabel/list_patition_label.txt"  # sic: the data set spells it "patition"
_LABEL_FILES = (LABEL_FILE, "EmoLabel/list_partition_label.txt")
_NAME = re.compile(r"^(train|test)_\d+\.(jpg|jpeg|png)$", re.IGNORECASE)

RAFDB_LAYOUT = """\
  ROOT/                                   RAF-DB's basic/ folder (or the folder that holds basic/)
    EmoLabel/list_patition_label.txt      one "train_00001.jpg 5" / "test_0001.jpg 7" line per image
                                          (1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness,
                                          6 Anger, 7 Neutral)
    Image/aligned/train_00001_aligned.jpg  the data set's 100x100 aligned faces (images: aligned)
    Image/original/train_00001.jpg        the original photographs (images: original, and
                                          what `exprgan preprocess` aligns)
"""
RAFDB_OBTAIN = (
    "RAF-DB is released by its authors for non-commercial research on request: see "
    "http://www.whdeng.cn/RAF/model1.html "
    "(sign the agreement and e-mail it; the download link is sent back)."
)

ImageKind = Literal["aligned", "original"]


def rafdb_base(root: str | os.PathLike[str]) -> Path:
    """The ``basic/`` folder of a RAF-DB root (``root`` itself or ``root/basic``)."""
    root = Path(root)
    for base in (root, root / "basic"):
        if any((base / name).is_file() for name in _LABEL_FILES):
            return base
    problem = "no such folder" if not root.is_dir() else f"no {LABEL_FILE} under it or under basic/"
    raise missing_root("RAF-DB", root, problem, RAFDB_LAYOUT, RAFDB_OBTAIN)


def read_rafdb_labels(path: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """``(image name, class index 0..6)`` of every line of ``list_patition_label.txt``.

    Raises:
        LabelFileError: a line that is not ``<train|test>_<number>.jpg <1..7>``, or a name
            listed twice (file and line number in the message).
    """
    entries: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for number, line in read_text_lines(path):
        fields = line.split()
        if len(fields) != 2:
            raise LabelFileError(path, number, f"expected '<image name> <label 1..7>', got {line!r}")
        name, label = fields
        if not _NAME.match(name):
            raise LabelFileError(path, number, f"image name {name!r} is not train_<number>.jpg or test_<number>.jpg")
        if label not in {str(k) for k in range(1, 8)}:
            raise LabelFileError(path, number, f"unknown label {label!r} for {name} (RAF-DB labels are 1..7)")
        if name in seen:
            raise LabelFileError(path, number, f"{name} is listed again (first on line {seen[name]})")
        seen[name] = number
        entries.append((name, int(label) - 1))
    if not entries:
        raise LabelFileError(path, None, "no labelled images")
    return entries


def list_rafdb(root: str | os.PathLike[str], images: ImageKind = "original") -> pd.DataFrame:
    """Every image of the official partition, one row each.

    Args:
        root: RAF-DB's ``basic/`` folder or the folder holding it.
        images: which image ``path`` names: the ``original`` photographs (what the
            preprocessing aligns) or the data set's 100x100 ``aligned`` faces. Both are in
            the extra columns ``original`` and ``aligned``.

    Returns:
        :data:`~exprgan.cache.INDEX_COLUMNS` (``split`` train/test, no
        subjects: RAF-DB does not name them) plus ``original`` and ``aligned``.
    """
    if images not in ("aligned", "original"):
        raise ValueError(f"images must be 'aligned' or 'original', got {images!r}")
    root = Path(root)
    base = rafdb_base(root)
    label_file = next(base / name for name in _LABEL_FILES if (base / name).is_file())
    folder = base / "Image" / images
    if not folder.is_dir():
        raise missing_root("RAF-DB", root, f"no Image/{images}/ folder beside EmoLabel/", RAFDB_LAYOUT, RAFDB_OBTAIN)
    image_dir = (base / "Image").relative_to(root).as_posix()  # relative to root: Image or basic/Image
    rows = []
    for name, label in read_rafdb_labels(label_file):
        stem = name.rsplit(".", 1)[0]
        original = f"{image_dir}/original/{name}"
        aligned = f"{image_dir}/aligned/{stem}_aligned.jpg"
        rows.append(
            {
                "path": aligned if images == "aligned" else original,
                "label": label,
                "label_name": RAFDB_CLASSES[label],
                "split": name.split("_", 1)[0].lower(),
                "original": original,
                "aligned": aligned,
            }
        )
    return listing_frame(rows, extra=("original", "aligned"))


class RAFDBDataModule(ImageFolderDataModule):
    """RAF-DB basic emotions: 12,271 training and 3,068 test images of 7 expressions.

    Training and test sets are the official partition (``EmoLabel/list_patition_label.txt``);
    validation uses the test set unless ``val_fraction > 0`` holds out a random fraction of
    the training images (RAF-DB does not name subjects). Images: the data set's own
    100x100 aligned faces resized to ``image_size`` (``images: aligned``), the original
    photographs centre-cropped (``images: original``), or the crops of a preprocessed
    ``cache`` (built from the originals by ``exprgan preprocess``; the paper's setting).

    Args:
        root: RAF-DB's ``basic/`` folder or the folder holding it.
        cache: a preprocessed folder (``index.csv`` and crops); overrides ``images``.
        images: ``aligned`` or ``original`` (raw tree only).
        **options: ``image_size``, ``val_fraction``, ``on_bad_image``, ``augmentation``,
            ``batch_size``, ``eval_batch_size``, ``num_workers``, ``seed``, ``steps_per_epoch``, ``sampling``
            of :class:`~exprgan.datamodules.images.ImageFolderDataModule`.
    """

    dataset_name = "RAF-DB"
    num_expressions = len(RAFDB_CLASSES)
    class_names = RAFDB_CLASSES

    def __init__(self, root: str, cache: str | None = None, images: ImageKind = "aligned", **options: Any) -> None:
        super().__init__(root, cache, **options)
        if images not in ("aligned", "original"):
            raise ValueError(f"images must be 'aligned' or 'original', got {images!r}")
        self.images = images
        self.class_names = list(RAFDB_CLASSES)

    def list_raw(self) -> pd.DataFrame:
        return list_rafdb(self.root, self.images)
