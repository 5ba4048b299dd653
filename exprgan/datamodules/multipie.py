"""Multi-PIE expressions: 6 classes from (session, recording), 5 pan cameras, subject-independent folds."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from exprgan.cache import INDEX_COLUMNS, listing_frame
from exprgan.datamodules.folds import assign_folds, check_fold
from exprgan.datamodules.images import ImageFolderDataModule, missing_root

MULTIPIE_CLASSES: tuple[str, ...] = ("neutral", "smile", "surprise", "squint", "disgust", "scream")

EXPRESSION_OF_RECORDING: dict[tuple[int, int], str] = {
    **dict.fromkeys([(1, 1), (2, 1), (3, 1), (4, 1), (4, 2)], "neutral"),
    **dict.fromkeys([(1, 2), (3, 2)], "smile"),
    (2, 2): "surprise",
    (2, 3): "squint",
    (3, 3): "disgust",
    (4, 3): "scream",
}
"""Expression of every ``(session, recording)`` of Multi-PIE's multiview set."""

CAMERA_ANGLES: dict[str, int] = dict(
    zip("11_0 12_0 09_0 08_0 13_0 14_0 05_1 05_0 04_1 19_0 20_0 01_0 24_0".split(), range(-90, 91, 15))
)
"""Pan angle in degrees of Multi-PIE's cameras at head height, -90 (11_0) to +90 (24_0) in steps of 15
(sign: see ``pose_sign``)."""

PAN_CAMERAS: tuple[str, ...] = ("13_0", "14_0", "05_1", "05_0", "04_1")
"""The paper's five poses: -30, -15, 0, +15, +30 degrees."""

_FILE = re.compile(r"(\d{3})_(\d{2})_(\d{2})_(\d{2})(\d)_(\d{2})\.png$")

MULTIPIE_LAYOUT = """\
  ROOT/                                   Multi-PIE's data/ folder (or the folder that holds data/)
    session01/ .. session04/
      multiview/PPP/RR/CC_C/PPP_SS_RR_CCC_II.png
          PPP subject (001..346), SS session (01..04), RR recording (01..03),
          CC_C camera (13_0 14_0 05_1 05_0 04_1 for the five pan poses; CCC is the same
          without the underscore), II illumination (00..19)
      e.g. session01/multiview/001/01/05_1/001_01_01_051_07.png
"""
MULTIPIE_OBTAIN = (
    "the CMU Multi-PIE face database is licensed by Carnegie Mellon University: see "
    "https://www.cs.cmu.edu/afs/cs/project/PIE/MultiPie/Multi-Pie/Home.html "
    "for the license and the media it is sent on."
)

PoseSign = Literal[1, -1]


def pose_name(camera: str, pose_sign: int = 1) -> str:
    """The pose of ``camera`` as a string: ``"-30"``, ``"0"``, ``"+15"`` (angle times ``pose_sign``)."""
    if camera not in CAMERA_ANGLES:
        raise ValueError(f"unknown Multi-PIE camera {camera!r}; known: {sorted(CAMERA_ANGLES)}")
    angle = CAMERA_ANGLES[camera] * pose_sign
    return f"{angle:+d}" if angle else "0"


def multipie_base(root: str | os.PathLike[str]) -> Path:
    """The folder of Multi-PIE holding ``session01/multiview`` .. (``root`` or ``root/data``)."""
    root = Path(root)
    for base in (root, root / "data"):
        if base.is_dir() and any((base / f"session{s:02d}" / "multiview").is_dir() for s in range(1, 5)):
            return base
    problem = "no such folder" if not root.is_dir() else "no session01..04/multiview/ under it or under data/"
    raise missing_root("Multi-PIE", root, problem, MULTIPIE_LAYOUT, MULTIPIE_OBTAIN)


def _subject_id(subject: str | int) -> str:
    return f"{int(subject):03d}"


def _check_cameras(cameras: Sequence[str]) -> None:
    unknown = [c for c in cameras if c not in CAMERA_ANGLES]
    if unknown or not cameras:
        raise ValueError(f"unknown Multi-PIE cameras {unknown or '(none given)'}; known: {sorted(CAMERA_ANGLES)}")


def select_multipie(
    frame: pd.DataFrame,
    cameras: Sequence[str] = PAN_CAMERAS,
    illumination: int = 7,
    subjects: Sequence[str | int] | None = None,
    pose_sign: PoseSign = 1,
) -> pd.DataFrame:
    """The rows of ``frame`` (a listing or cache index) in the selection, one per (subject, expression, camera).

    Session, recording, camera and illumination are read from the file name of ``path``;
    ``label``/``label_name`` from (session, recording); ``pose`` from the camera. Of the
    images of one subject, expression and camera the earliest (session, recording) is kept.
    """
    parts = frame["path"].str.extract(_FILE)
    frame = frame[parts.notna().all(axis=1)].copy()
    parts = parts[parts.notna().all(axis=1)]
    frame["subject"] = parts[0]
    frame["session"] = parts[1].astype(np.int64)
    frame["recording"] = parts[2].astype(np.int64)
    frame["camera"] = parts[3] + "_" + parts[4]
    frame["illumination"] = parts[5].astype(np.int64)
    keep = frame["camera"].isin(list(cameras)) & (frame["illumination"] == illumination)
    if subjects is not None:
        keep &= frame["subject"].isin([_subject_id(s) for s in subjects])
    frame = frame[keep]
    names = [EXPRESSION_OF_RECORDING.get((s, r), "") for s, r in zip(frame["session"], frame["recording"])]
    frame = frame.assign(label_name=names)
    frame = frame[frame["label_name"] != ""]
    frame = frame.assign(
        label=frame["label_name"].map({name: c for c, name in enumerate(MULTIPIE_CLASSES)}).astype(np.int64),
        pose=[pose_name(c, pose_sign) for c in frame["camera"]],
    )
    frame = frame.sort_values(["subject", "label", "camera", "session", "recording"], kind="stable")
    return frame.drop_duplicates(["subject", "label", "camera"], keep="first").reset_index(drop=True)


def list_multipie(
    root: str | os.PathLike[str],
    cameras: Sequence[str] = PAN_CAMERAS,
    illumination: int = 7,
    subjects: Sequence[str | int] | None = None,
    pose_sign: PoseSign = 1,
    num_folds: int = 5,
    fold_seed: int = 0,
) -> pd.DataFrame:
    """The paper's selection from Multi-PIE's multiview images: one image per (subject, expression, camera).

    On the full multiview set with the five pan cameras this is 1,531 images per pose,
    7,655 in all.

    Args:
        root: Multi-PIE's ``data/`` folder or the folder holding it.
        cameras: cameras (``CC_C``) to take, each one pose.
        illumination: the flash shot ``II`` to take (07: frontal flash).
        subjects: subjects to take (``None``: all).
        pose_sign: 1: camera 13_0 is -30 degrees, 04_1 +30; -1 flips the sign (papers differ).
        num_folds, fold_seed: the subject-independent folds of the ``fold`` column.

    Returns:
        :data:`~exprgan.cache.INDEX_COLUMNS` (``subject`` PPP, ``pose`` the
        signed angle, ``fold``) plus ``session``, ``recording``, ``camera``, ``illumination``.
    """
    _check_cameras(cameras)
    root = Path(root)
    base = multipie_base(root)
    wanted = None if subjects is None else {_subject_id(s) for s in subjects}
    rows = []
    for session in range(1, 5):
        multiview = base / f"session{session:02d}" / "multiview"
        if not multiview.is_dir():
            continue
        for subject in sorted(e.name for e in os.scandir(multiview) if e.is_dir() and e.name.isdigit()):
            if wanted is not None and subject not in wanted:
                continue
            for recording in sorted(e.name for e in os.scandir(multiview / subject) if e.is_dir()):
                if not recording.isdigit() or (session, int(recording)) not in EXPRESSION_OF_RECORDING:
                    continue
                for camera in cameras:
                    name = f"{subject}_{session:02d}_{recording}_{camera.replace('_', '')}_{illumination:02d}.png"
                    path = multiview / subject / recording / camera / name
                    if path.is_file():
                        rows.append({"path": path.relative_to(root).as_posix(), "label": 0, "label_name": ""})
    extra = ("session", "recording", "camera", "illumination")
    if not rows:
        problem = f"no image of cameras {list(cameras)} at illumination {illumination:02d}"
        raise missing_root("Multi-PIE", root, problem, MULTIPIE_LAYOUT, MULTIPIE_OBTAIN)
    frame = select_multipie(listing_frame(rows), cameras, illumination, None, pose_sign)
    frame = assign_folds(frame, num_folds, fold_seed)
    return frame[[*INDEX_COLUMNS, *extra]]


class MultiPIEDataModule(ImageFolderDataModule):
    """Multi-PIE: 6 posed expressions at 5 pan angles, 5-fold subject-independent cross-validation.

    Evaluation items carry ``pose``, an index into :attr:`poses` (``["-30", "-15", "0", "+15",
    "+30"]``), for per-pose accuracy.

    Args:
        root: Multi-PIE's ``data/`` folder or the folder holding it.
        cache: a preprocessed folder (``index.csv`` and crops).
        fold: the test fold, ``0 .. num_folds - 1``.
        num_folds: ``k`` of the cross-validation.
        fold_seed: seed of the fold assignment.
        cameras: cameras (``CC_C``), one pose each (the 5 pan cameras).
        illumination: the flash shot ``II`` (07: frontal flash).
        subjects: subjects to use (``None``: all).
        pose_sign: 1: 13_0 is -30 degrees and 04_1 +30; -1 flips the sign.
        **options: ``image_size``, ``val_fraction``, ``on_bad_image``, ``augmentation``,
            ``batch_size``, ``eval_batch_size``, ``num_workers``, ``seed``, ``steps_per_epoch``, ``sampling``
            of :class:`~exprgan.datamodules.images.ImageFolderDataModule`.
    """

    dataset_name = "Multi-PIE"
    uses_folds = True
    num_expressions = len(MULTIPIE_CLASSES)
    class_names = MULTIPIE_CLASSES

    def __init__(
        self,
        root: str,
        cache: str | None = None,
        fold: int = 0,
        num_folds: int = 5,
        fold_seed: int = 0,
        cameras: Sequence[str] = PAN_CAMERAS,
        illumination: int = 7,
        subjects: list[str] | None = None,
        pose_sign: PoseSign = 1,
        **options: Any,
    ) -> None:
        super().__init__(root, cache, **options)
        check_fold(fold, num_folds)
        _check_cameras(cameras)
        if pose_sign not in (1, -1):
            raise ValueError(f"pose_sign must be 1 or -1, got {pose_sign}")
        self.fold, self.num_folds, self.fold_seed = fold, num_folds, fold_seed
        self.cameras = list(cameras)
        self.illumination = illumination
        self.subject_list = subjects
        self.pose_sign = pose_sign
        self.class_names = list(MULTIPIE_CLASSES)
        self.poses = sorted({pose_name(c, pose_sign) for c in self.cameras}, key=int)

    def list_raw(self) -> pd.DataFrame:
        args = self.cameras, self.illumination, self.subject_list, self.pose_sign, self.num_folds, self.fold_seed
        return list_multipie(self.root, *args)

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        return select_multipie(frame, self.cameras, self.illumination, self.subject_list, self.pose_sign)
