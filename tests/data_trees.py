"""Builders of tiny fake data set trees in each data set's real layout and file naming.

Images are a few dozen pixels, filled with a flat colour (plus a little noise) that
encodes what the test needs to recognise: the class for RAF-DB, the frame index for MMI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RAFDB_TRAIN_PER_CLASS = (3, 2, 2, 4, 2, 2, 3)  # labels 1..7
RAFDB_TEST_PER_CLASS = (1, 1, 1, 2, 1, 1, 1)

MULTIPIE_RECORDINGS = {1: (1, 2), 2: (1, 2, 3), 3: (1, 2, 3), 4: (1, 2, 3)}
"""Recordings of each session of Multi-PIE's multiview set."""


def flat_image(value: int, size: tuple[int, int] = (40, 40), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A ``width x height`` image of grey level ``value`` with +-2 noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    pixels = np.clip(value + rng.integers(-2, 3, size=(height, width)), 0, 255).astype(np.uint8)
    image = Image.fromarray(np.stack([pixels] * 3, axis=-1))
    return image.convert(mode)


def class_value(label: int) -> int:
    """Grey level of RAF-DB images of class ``label`` (0-based)."""
    return 20 + 30 * label


def make_rafdb(
    root: Path,
    train_per_class: Sequence[int] = RAFDB_TRAIN_PER_CLASS,
    test_per_class: Sequence[int] = RAFDB_TEST_PER_CLASS,
    line_end: str = "\n",
    extra_lines: Iterable[str] = (),
    in_basic: bool = True,
) -> Path:
    """A RAF-DB ``basic/`` tree under ``root`` (``root/basic`` when ``in_basic``); returns the basic folder.

    ``EmoLabel/list_patition_label.txt`` lists training images first (``train_00001.jpg``),
    then test images (``test_0001.jpg``), classes interleaved; ``Image/aligned`` holds
    40x40 ``<stem>_aligned.jpg`` and ``Image/original`` 48x36 originals (every third one
    grayscale).
    """
    base = root / "basic" if in_basic else root
    (base / "EmoLabel").mkdir(parents=True)
    (base / "Image" / "aligned").mkdir(parents=True)
    (base / "Image" / "original").mkdir(parents=True)
    lines = []
    for split, per_class, digits in (("train", train_per_class, 5), ("test", test_per_class, 4)):
        labels = [c for k in range(max(per_class)) for c in range(7) if k < per_class[c]]
        for number, label in enumerate(labels, start=1):
            name = f"{split}_{number:0{digits}d}.jpg"
            lines.append(f"{name} {label + 1}")
            value = class_value(label)
            flat_image(value, (40, 40), seed=number).save(base / "Image" / "aligned" / f"{name[:-4]}_aligned.jpg")
            mode = "L" if number % 3 == 0 else "RGB"
            flat_image(value, (48, 36), mode, seed=number).save(base / "Image" / "original" / name)
    lines.extend(extra_lines)
    (base / "EmoLabel" / "list_patition_label.txt").write_bytes(line_end.join(lines + [""]).encode())
    return base


def multipie_name(subject: str, session: int, recording: int, camera: str, illumination: int) -> str:
    """``PPP_SS_RR_CCC_II.png``."""
    return f"{subject}_{session:02d}_{recording:02d}_{camera.replace('_', '')}_{illumination:02d}.png"


def make_multipie(
    root: Path,
    attendance: dict[str, Sequence[int]],
    cameras: Sequence[str] = ("13_0", "14_0", "05_1", "05_0", "04_1"),
    illuminations: Sequence[int] = (0, 7),
) -> Path:
    """A Multi-PIE ``data/`` tree under ``root``: ``subject -> sessions attended``; returns ``root/data``.

    Every attended session holds all of that session's recordings, for every camera
    (plus the frontal-but-elevated camera 08_1, never selected) and illumination: 32x24 PNGs.
    """
    base = root / "data"
    for subject, sessions in attendance.items():
        for session in sessions:
            for recording in MULTIPIE_RECORDINGS[session]:
                for camera in (*cameras, "08_1"):
                    folder = base / f"session{session:02d}" / "multiview" / subject / f"{recording:02d}" / camera
                    folder.mkdir(parents=True, exist_ok=True)
                    for illumination in illuminations:
                        name = multipie_name(subject, session, recording, camera, illumination)
                        flat_image(40 + 10 * recording, (32, 24)).save(folder / name)
    return base


@dataclass(frozen=True)
class MMISession:
    """One MMI session to write.

    Args:
        id: folder name under ``Sessions/``.
        subject: subject number (``S{subject:03d}``).
        emotion: the ``Emotion`` metatag value 1..6, or ``None`` (AU-only session).
        view: the track view in session.xml (0 frontal).
        frames: number of frames.
        video: an MJPG ``.avi`` (``True``) or a folder of PNG frames (``False``).
        take: the take number in the media name ``S001-<take>``.
    """

    id: str
    subject: int
    emotion: int | None
    view: int = 0
    frames: int = 10
    video: bool = True
    take: int = 1


def frame_value(index: int) -> int:
    """Grey level of MMI frame ``index``."""
    return 10 + 20 * index


def write_video(path: Path, frames: int, size: int = 32) -> None:
    """An MJPG ``.avi`` whose frame ``k`` is flat grey :func:`frame_value(k) <frame_value>`."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi files here"
    for k in range(frames):
        writer.write(np.full((size, size, 3), frame_value(k), dtype=np.uint8))
    writer.release()


def make_mmi(root: Path, sessions: Sequence[MMISession]) -> Path:
    """An MMI tree ``root/Sessions/<id>/`` with session.xml, the annotation XML and the media; returns root."""
    for s in sessions:
        folder = root / "Sessions" / s.id
        folder.mkdir(parents=True)
        media = f"S{s.subject:03d}-{s.take:03d}"
        media_file = f"{media}.avi" if s.video else media
        (folder / "session.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<session sessionId="{s.id}" mediaFile="{media_file}" mediaDuration="{s.frames / 25:.2f}">\n'
            f'  <subject id="{s.subject}" gender="Female" />\n'
            f'  <track id="0" type="video" view="{s.view}" fps="25" />\n'
            "</session>\n"
        )
        tags = ['  <Metatag Name="Gender" Value="Female" />']
        if s.emotion is not None:
            tags.append(f'  <Metatag Name="Emotion" Value="{s.emotion}" />')
        tags.append('  <ActionUnit Number="12" />')
        (folder / f"{media}.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<Metatags>\n' + "\n".join(tags) + "\n</Metatags>\n"
        )
        if s.video:
            write_video(folder / media_file, s.frames)
        else:
            (folder / media).mkdir()
            for k in range(s.frames):
                flat_image(frame_value(k), (36, 30)).save(folder / media / f"{media}-{k + 1}.png")
    return root
