"""MMI: labelled frontal sequences; first frame Neutral, frames around the middle the labelled peak."""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from exprgan.cache import BadImageError, listing_frame, video_frame_count
from exprgan.datamodules.face_renderer import EXPRESSIONS
from exprgan.datamodules.folds import assign_folds, check_fold
from exprgan.datamodules.images import ImageFolderDataModule, LabelFileError, OnBadImage, missing_root, read_text_lines

MMI_CLASSES_6: tuple[str, ...] = EXPRESSIONS[:6]
"""6-class order: surprise, fear, disgust, happiness, sadness, anger (RAF-DB's order)."""
MMI_CLASSES_7: tuple[str, ...] = EXPRESSIONS
"""7-class order: the 6 classes, then neutral."""

EMOTION_VALUES: dict[int, str] = {1: "anger", 2: "disgust", 3: "fear", 4: "happiness", 5: "sadness", 6: "surprise"}
"""``<Metatag Name="Emotion" Value="N"/>``: N -> class name."""

VIDEO_EXTENSIONS = (".avi", ".wmv", ".mp4", ".mov", ".mpg", ".mpeg", ".m4v", ".mkv")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

MMI_LAYOUT = """\
  ROOT/                             the MMI download (the folder holding Sessions/) or Sessions/ itself
    Sessions/<id>/session.xml       <session ... mediaFile="S001-001.avi"> with <track ... view="0"/>
                                    (view 0: frontal)
    Sessions/<id>/S001-001.avi      the recording, or its frames as images in the session folder or a
                                    sub-folder (S001-001/0001.png, ...)
    Sessions/<id>/S001-001.xml      <Metatag Name="Emotion" Value="N"/>, N: 1 Anger, 2 Disgust, 3 Fear,
                                    4 Happy, 5 Sadness, 6 Surprise (sessions without it are AU-only)
"""
MMI_OBTAIN = (
    "the MMI Facial Expression Database is free for non-commercial research after registering and signing "
    "its end-user license agreement at https://mmifacedb.eu/ (download from the web site once approved)."
)

_TAG = re.compile(r"<\s*Metatag\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w:.-]+)\s*=\s*[\"']([^\"']*)[\"']")
_SUBJECT = re.compile(r"S(\d+)", re.IGNORECASE)


def natural_key(name: str) -> list[int | str]:
    """Sort key putting ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def mmi_sessions(root: str | os.PathLike[str]) -> Path:
    """The ``Sessions`` folder of an MMI root (``root/Sessions`` or ``root`` itself)."""
    root = Path(root)
    for base in (root / "Sessions", root):
        if base.is_dir() and any((entry / "session.xml").is_file() for entry in base.iterdir() if entry.is_dir()):
            return base
    problem = "no such folder" if not root.is_dir() else "no Sessions/<id>/session.xml under it"
    raise missing_root("MMI", root, problem, MMI_LAYOUT, MMI_OBTAIN)


def read_emotion(path: str | os.PathLike[str]) -> int | None:
    """The ``Emotion`` metatag value (1..6) of an MMI annotation file, ``None`` without one.

    Raises:
        LabelFileError: a value that is not 1..6, or two different values (file and line).
    """
    found: tuple[int, int] | None = None
    for number, line in read_text_lines(path):
        for match in _TAG.finditer(line):
            attributes = {k.lower(): v.strip() for k, v in _ATTRIBUTE.findall(match.group(1))}
            if attributes.get("name", "").lower() != "emotion":
                continue
            value = attributes.get("value", "")
            if not value.isdigit() or int(value) not in EMOTION_VALUES:
                raise LabelFileError(path, number, f"unknown Emotion value {value!r} (MMI's are 1..6)")
            if found is not None and found[0] != int(value):
                raise LabelFileError(path, number, f"a second Emotion value {value} (line {found[1]} says {found[0]})")
            found = (int(value), number)
    return None if found is None else found[0]


def read_session(path: str | os.PathLike[str]) -> tuple[int | None, str, str]:
    """``(view of the first track or None, media file name or "", subject id or "")`` of a session.xml."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as error:
        raise LabelFileError(path, error.position[0], f"malformed XML ({error})") from error
    view: int | None = None
    media, subject = "", ""
    for element in tree.iter():
        attributes = {k.lower(): v.strip() for k, v in element.attrib.items()}
        tag = element.tag.lower()
        if tag == "track" and view is None and "view" in attributes:
            if not attributes["view"].lstrip("-").isdigit():
                raise LabelFileError(path, None, f"track view {attributes['view']!r} is not a number")
            view = int(attributes["view"])
        if not media and attributes.get("mediafile"):
            media = attributes["mediafile"]
        if tag == "subject" and not subject and attributes.get("id", "").isdigit():
            subject = f"S{int(attributes['id']):03d}"
    return view, media, subject


def _media(folder: Path, media: str) -> tuple[Path | None, list[Path]]:
    """``(video, [])`` or ``(None, frames)`` of a session folder."""
    if media:
        named = folder / media
        if named.is_file() and named.suffix.lower() in VIDEO_EXTENSIONS:
            return named, []
        if named.is_dir():
            folder = named
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if videos:
        return videos[0], []
    for place in [folder, *sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))]:
        frames = [p for p in place.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS]
        if len(frames) > 1:
            return None, sorted(frames, key=lambda p: natural_key(p.name))
    return None, []


def peak_indices(num_frames: int, peak_frames: int = 3) -> list[int]:
    """The ``peak_frames`` frames around the middle of a sequence (never frame 0)."""
    middle = num_frames // 2
    start = max(1, min(middle - (peak_frames - 1) // 2, num_frames - peak_frames))
    return list(range(start, start + peak_frames))


def list_mmi(
    root: str | os.PathLike[str],
    neutral: bool = True,
    views: Sequence[int] = (0,),
    peak_frames: int = 3,
    num_folds: int = 5,
    fold_seed: int = 0,
    on_bad_image: OnBadImage = "skip",
) -> pd.DataFrame:
    """Frames of the labelled MMI sessions: the first as Neutral, ``peak_frames`` around the middle.

    Sessions without an Emotion metatag (AU-only) or whose first track's view is not in
    ``views`` are left out. Sessions whose video cannot be read (their frames cannot be
    chosen) are left out (``on_bad_image="skip"``, the default, so that ``exprgan
    preprocess`` never stops on one) or raise (``"error"``, what the DataModule passes by
    default); sequences too short for ``1 + peak_frames`` distinct frames are left out.
    Every session left out for a problem is counted in a warning.

    Args:
        root: the MMI folder holding ``Sessions/``, or ``Sessions/`` itself.
        neutral: list the first frames as Neutral (7 classes); ``False``: peaks only (6).
        views: track views to keep (0: frontal).
        peak_frames: frames taken around the middle of each sequence.
        num_folds, fold_seed: the subject-independent folds of the ``fold`` column.
        on_bad_image: ``skip`` (warn) or ``error`` for sessions whose video cannot be read.

    Returns:
        :data:`~exprgan.cache.INDEX_COLUMNS` (``path`` the video with
        ``frame`` >= 0, or the frame image with ``frame`` -1; ``sequence`` the session
        folder; ``subject`` Sxxx; ``fold``) plus ``frame_index`` (position in the
        sequence), ``num_frames`` and ``view``.
    """
    if peak_frames < 1:
        raise ValueError(f"peak_frames must be >= 1, got {peak_frames}")
    classes = MMI_CLASSES_7 if neutral else MMI_CLASSES_6
    root = Path(root)
    sessions = mmi_sessions(root)
    skipped: Counter[str] = Counter()
    rows = []
    for folder in sorted((p for p in sessions.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        if not (folder / "session.xml").is_file():
            skipped["no session.xml"] += 1
            continue
        view, media, subject = read_session(folder / "session.xml")
        if view not in views:
            continue
        annotations = [a for a in sorted(folder.glob("*.xml")) if a.name.lower() != "session.xml"]
        emotions = {value for value in map(read_emotion, annotations) if value is not None}
        if not emotions:
            continue  # AU-only session
        if len(emotions) > 1:
            skipped["Emotion files that disagree"] += 1
            continue
        label_name = EMOTION_VALUES[emotions.pop()]
        video, frames = _media(folder, media)
        try:
            if video is None and not frames:
                raise BadImageError(folder, "no video or frame images in this MMI session")
            count = video_frame_count(video) if video is not None else len(frames)
        except BadImageError:
            if on_bad_image == "error":
                raise
            skipped["no video or frames" if video is None else "unreadable video"] += 1
            continue
        if count < 1 + peak_frames:
            skipped[f"fewer than {1 + peak_frames} frames"] += 1
            continue
        media_name = video.name if video is not None else frames[0].parent.name
        subject = next((f"S{int(m.group(1)):03d}" for m in [_SUBJECT.match(media_name)] if m), subject)
        chosen = ([(0, "neutral")] if neutral else []) + [(k, label_name) for k in peak_indices(count, peak_frames)]
        for k, name in chosen:
            source = video if video is not None else frames[k]
            rows.append(
                {
                    "path": source.relative_to(root).as_posix(),
                    "frame": k if video is not None else -1,
                    "label": classes.index(name),
                    "label_name": name,
                    "subject": subject,
                    "sequence": folder.name,
                    "frame_index": k,
                    "num_frames": count,
                    "view": view,
                }
            )
    if skipped:
        reasons = ", ".join(f"{n} with {why}" for why, n in sorted(skipped.items()))
        warnings.warn(f"MMI: left out {sum(skipped.values())} sessions ({reasons})", stacklevel=2)
    if not rows:
        problem = f"no session with an Emotion metatag in view {list(views)}"
        raise missing_root("MMI", root, problem, MMI_LAYOUT, MMI_OBTAIN)
    return assign_folds(listing_frame(rows, extra=("frame_index", "num_frames", "view")), num_folds, fold_seed)


class MMIDataModule(ImageFolderDataModule):
    """MMI: 6 or 7 expressions from the labelled frontal sequences, 5-fold subject-independent CV.

    Per sequence, the first frame is Neutral (7-class only) and ``peak_frames`` frames
    around the middle carry the sequence's label (the paper: 208 sequences, 830 images).

    Args:
        root: the MMI folder holding ``Sessions/``, or ``Sessions/`` itself.
        cache: a preprocessed folder (``index.csv`` and crops); built with Neutral
            frames, it serves both 6- and 7-class runs.
        num_classes: 6 (the basic expressions) or 7 (plus Neutral).
        fold: the test fold, ``0 .. num_folds - 1``.
        num_folds: ``k`` of the cross-validation.
        fold_seed: seed of the fold assignment.
        views: session.xml track views to keep (0: frontal).
        peak_frames: frames taken around the middle of each sequence.
        **options: ``image_size``, ``val_fraction``, ``on_bad_image``, ``augmentation``,
            ``batch_size``, ``eval_batch_size``, ``num_workers``, ``seed``, ``steps_per_epoch``, ``sampling``
            of :class:`~exprgan.datamodules.images.ImageFolderDataModule`.
    """

    dataset_name = "MMI"
    uses_folds = True

    def __init__(
        self,
        root: str,
        cache: str | None = None,
        num_classes: Literal[6, 7] = 6,
        fold: int = 0,
        num_folds: int = 5,
        fold_seed: int = 0,
        views: Sequence[int] = (0,),
        peak_frames: int = 3,
        **options: Any,
    ) -> None:
        super().__init__(root, cache, **options)
        if num_classes not in (6, 7):
            raise ValueError(f"num_classes must be 6 or 7, got {num_classes}")
        check_fold(fold, num_folds)
        self.num_classes = num_classes
        self.num_expressions = num_classes
        self.class_names = list(MMI_CLASSES_7 if num_classes == 7 else MMI_CLASSES_6)
        self.fold, self.num_folds, self.fold_seed = fold, num_folds, fold_seed
        self.views = list(views)
        self.peak_frames = peak_frames

    def list_raw(self) -> pd.DataFrame:
        args = self.views, self.peak_frames, self.num_folds, self.fold_seed, self.on_bad_image
        return list_mmi(self.root, self.num_classes == 7, *args)
