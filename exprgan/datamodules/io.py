"""Reading images and video frames, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class BadImageError(OSError):
    """An image or video frame is missing, unreadable or corrupt; the message names it."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_image(path: str | os.PathLike[str], frame: int | None = None) -> np.ndarray:
    """An image file, or frame ``frame`` of a video, as ``uint8 [H, W, 3]`` RGB.

    Grayscale, palette and RGBA images are converted to RGB.

    Raises:
        BadImageError: the file is missing, is not a readable image/video, or has no
            frame ``frame``.
    """
    path = Path(path)
    if not path.is_file():
        raise BadImageError(path, "no such file")
    if frame is not None:
        return _read_video_frame(path, frame)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise BadImageError(path, f"not a readable image ({error})") from error


def _read_video_frame(path: Path, frame: int) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise BadImageError(path, "not a readable video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if frame < 0 or (count > 0 and frame >= count):
            raise BadImageError(path, f"no frame {frame} (the video has {count} frames)")
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = capture.read()
        if not ok or bgr is None:
            raise BadImageError(path, f"frame {frame} could not be decoded")
        return np.ascontiguousarray(bgr[..., ::-1])
    finally:
        capture.release()


def video_frame_count(path: str | os.PathLike[str]) -> int:
    """Number of frames of a video file (decoded to the end when the header does not say)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise BadImageError(path, "no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise BadImageError(path, "not a readable video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while capture.grab():
                count += 1
        return count
    finally:
        capture.release()
