"""A uint8 memory-mapped copy of a preprocessed crop cache: training without decoding images.

``exprgan preprocess`` writes one PNG per aligned crop. Decoding a 256 px PNG costs about
as much as everything else a training image needs, so with ``cache_format: memmap`` the
crops are decoded once, resized to the training size, and stored side by side in one
array the data loader reads without decoding::

    CACHE/arrays/crops_<S>px.npy    uint8 [N, S, S, 3], row k = crop k of index.csv
    CACHE/arrays/crops_<S>px.json   the crops in row order, the index.csv fingerprint, unreadable crops

The ``.npy`` is opened with ``numpy.load(mmap_mode="r")``: pages are shared between the
DataLoader workers through the OS page cache. A rebuilt cache (another ``index.csv``)
makes the array stale; it is rebuilt on the next use. Both files are written under
temporary names and renamed, the JSON last.

Augmentation here is :class:`FastAugmenter`: the distribution of
:class:`~exprgan.datamodules.augment.Augmenter` (flip, shift-scale-rotate with reflected
borders, brightness/contrast) drawn with NumPy and applied with OpenCV on uint8, without
albumentations' per-call overhead.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from exprgan.datamodules.augment import Augmentation
from exprgan.datamodules.images import FaceImages, fit_square, read_cache
from exprgan.datamodules.io import BadImageError, read_image
from exprgan.datamodules.pairs import PairBatch, UnpairedPairs, sample_pairs
from exprgan.preprocessing.cache import INDEX, temporary_name, write_text_atomic

ARRAYS = "arrays"
FORMAT_VERSION = 1


def memmap_paths(cache: str | os.PathLike[str], image_size: int) -> tuple[Path, Path]:
    """``(array .npy, metadata .json)`` of the ``image_size`` memmap of ``cache``."""
    folder = Path(cache) / ARRAYS
    return folder / f"crops_{image_size}px.npy", folder / f"crops_{image_size}px.json"


def _index_fingerprint(cache: Path) -> str:
    return hashlib.sha256((cache / INDEX).read_bytes()).hexdigest()


def _read_meta(meta_path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def memmap_is_current(cache: str | os.PathLike[str], image_size: int) -> bool:
    """Whether the memmap of ``cache`` at ``image_size`` exists and matches its ``index.csv``."""
    cache = Path(cache)
    data_path, meta_path = memmap_paths(cache, image_size)
    meta = _read_meta(meta_path)
    return (
        meta is not None
        and data_path.is_file()
        and meta.get("version") == FORMAT_VERSION
        and meta.get("image_size") == image_size
        and meta.get("index_sha256") == _index_fingerprint(cache)
    )


def build_memmap(cache: str | os.PathLike[str], image_size: int, force: bool = False) -> Path:
    """Write the uint8 memmap of every crop of ``cache/index.csv`` at ``image_size`` (if stale).

    Each crop is read and centre-square resized exactly as the PNG path does
    (:func:`~exprgan.datamodules.images.fit_square`), so un-augmented images are identical.
    A crop that cannot be read leaves a zero row and is listed in the JSON with its reason.

    Returns:
        The ``.npy`` path.
    """
    cache = Path(cache)
    data_path, meta_path = memmap_paths(cache, image_size)
    if not force and memmap_is_current(cache, image_size):
        return data_path
    index, _ = read_cache(cache)  # raises CacheError naming what is missing
    fingerprint = _index_fingerprint(cache)
    crops = [str(crop) for crop in index["crop"]]
    data_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(data_path)
    shape = (len(crops), image_size, image_size, 3)
    array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
    problems: dict[str, str] = {}
    for row, crop in enumerate(crops):
        try:
            array[row] = fit_square(read_image(cache / crop), image_size)
        except BadImageError as error:
            problems[crop] = error.reason
            array[row] = 0
    array.flush()
    del array
    os.replace(temporary, data_path)
    meta = {
        "version": FORMAT_VERSION,
        "image_size": image_size,
        "count": len(crops),
        "index_sha256": fingerprint,
        "crops": crops,
        "problems": problems,
    }
    write_text_atomic(meta_path, json.dumps(meta) + "\n")
    return data_path


class MemmapCrops:
    """The memmap of a cache, opened lazily in each process (safe to send to DataLoader workers).

    Args:
        cache: the cache folder.
        image_size: side of the stored crops.
    """

    def __init__(self, cache: str | os.PathLike[str], image_size: int) -> None:
        self.cache = Path(cache)
        self.image_size = image_size
        self.data_path, meta_path = memmap_paths(cache, image_size)
        meta = _read_meta(meta_path)
        if meta is None or not self.data_path.is_file():
            raise FileNotFoundError(f"no memmap of {cache} at {image_size} px: call build_memmap first")
        self.row_of: dict[str, int] = {crop: row for row, crop in enumerate(meta["crops"])}
        self.problems: dict[str, str] = dict(meta["problems"])
        self._array: np.ndarray | None = None
        self._pid: int | None = None

    @property
    def array(self) -> np.ndarray:
        """``uint8 [N, S, S, 3]``, read-only, memory-mapped."""
        if self._array is None or self._pid != os.getpid():
            self._array, self._pid = np.load(self.data_path, mmap_mode="r"), os.getpid()
        return self._array

    def rows(self, crops: Sequence[str]) -> np.ndarray:
        """Rows of ``crops`` (paths relative to the cache, as in ``index.csv``)."""
        return np.array([self.row_of[str(crop)] for crop in crops], dtype=np.int64)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None, "_pid": None}  # never pickle the mapped pages


class FastAugmenter:
    """``uint8 [H, W, 3]`` (or a batch ``[B, H, W, 3]``) augmented in place under an :class:`Augmentation`.

    The same distribution as :class:`~exprgan.datamodules.augment.Augmenter` (albumentations
    2's ``HorizontalFlip``, ``Affine`` with independent x/y scales and reflected borders,
    ``RandomBrightnessContrast`` by the maximum), not the same random stream. Seeded from
    ``torch.initial_seed()`` in each process, so DataLoader workers differ.
    """

    def __init__(self, config: Augmentation) -> None:
        self.config = config
        self._rng: np.random.Generator | None = None
        self._pid: int | None = None
        self._scratch: np.ndarray | None = None  # the warp's source copy, reused

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_rng": None, "_pid": None, "_scratch": None}

    @property
    def rng(self) -> np.random.Generator:
        """This process's generator (made on first use in each process)."""
        if self._rng is None or self._pid != os.getpid():
            self._rng, self._pid = np.random.default_rng(torch.initial_seed() % 2**63), os.getpid()
        return self._rng

    def _affine(self, image: np.ndarray, out: np.ndarray) -> None:
        import cv2

        c, rng = self.config, self.rng
        height, width = image.shape[:2]
        scale_x, scale_y = rng.uniform(1 - c.scale, 1 + c.scale, size=2)
        shift_x, shift_y = rng.uniform(-c.shift, c.shift, size=2) * (width, height)
        angle = math.radians(rng.uniform(-c.rotate, c.rotate))
        cos, sin = math.cos(angle), math.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # centre -> scale -> rotate -> translate -> back (albumentations' order)
        a = np.array([[cos * scale_x, sin * scale_y], [-sin * scale_x, cos * scale_y]])
        offset = np.array([cx + shift_x, cy + shift_y]) - a @ np.array([cx, cy])
        matrix = np.hstack([a, offset[:, None]])
        cv2.warpAffine(
            image, matrix, (width, height), dst=out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Augment one ``uint8 [H, W, 3]`` image; returns a new contiguous array."""
        out = np.ascontiguousarray(image).copy()
        self.augment_batch(out[None])
        return out

    def augment_batch(self, images: np.ndarray) -> None:
        """Augment every image of a C-contiguous ``uint8 [B, H, W, 3]`` batch in place."""
        import cv2

        c, rng = self.config, self.rng
        for image in images:
            if c.flip and rng.random() < 0.5:
                cv2.flip(image, 1, dst=image)  # in place; numpy's overlapping image[:, ::-1] copy is 100x slower
            if c.affine_p > 0 and (c.shift or c.scale or c.rotate) and rng.random() < c.affine_p:
                if self._scratch is None or self._scratch.shape != image.shape:
                    self._scratch = np.empty_like(image)
                np.copyto(self._scratch, image)
                self._affine(self._scratch, image)
            if c.color_p > 0 and (c.brightness or c.contrast) and rng.random() < c.color_p:
                alpha = 1.0 + rng.uniform(-c.contrast, c.contrast)
                beta = rng.uniform(-c.brightness, c.brightness) * 255.0
                lut = np.clip(np.rint(np.arange(256, dtype=np.float32) * alpha + beta), 0, 255).astype(np.uint8)
                cv2.LUT(image, lut, dst=image)


# to_tensor's arithmetic (float32 u / 127.5 - 1) on every uint8 value u
_TO_UNIT = torch.arange(256, dtype=torch.float32).div(127.5).sub(1.0).numpy()


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``uint8 [B, H, W, 3]`` -> ``float [B, 3, H, W]`` in ``[-1, 1]``: ``to_tensor`` over a batch.

    The values are ``to_tensor``'s. On the CPU the uint8 planes are separated first (a
    quarter of the bytes of float ones) and one OpenCV table look-up, whose table holds
    ``to_tensor``'s own results, writes the floats. A tensor on another device is
    converted there (``permute, float, div, sub``: channels-last strides, which
    convolutions in channels-last order read directly).
    """
    if isinstance(images, torch.Tensor) and images.device.type != "cpu":
        return images.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    import cv2

    array = images.numpy() if isinstance(images, torch.Tensor) else images
    planar = np.ascontiguousarray(array.transpose(0, 3, 1, 2))  # uint8 [B, 3, H, W]
    out = torch.empty(planar.shape, dtype=torch.float32)
    rows = planar.reshape(-1, planar.shape[-1])  # 2-D views for OpenCV
    target = out.numpy().reshape(rows.shape)
    result = cv2.LUT(rows, _TO_UNIT, dst=target)
    if not np.shares_memory(result, target):  # an OpenCV that did not write in place
        target[:] = result
    return out


def uint8_batch(count: int, image_size: int) -> torch.Tensor:
    """An empty ``uint8 [count, S, S, 3]`` batch; in a DataLoader worker, in shared memory.

    A worker's batch goes to the main process through shared memory; allocating it there
    saves a copy, and uint8 pages cost a quarter of float ones to fault in and pin.
    """
    batch = torch.empty(count, image_size, image_size, 3, dtype=torch.uint8)
    return batch.share_memory_() if get_worker_info() is not None else batch


class MemmapFaceImages(FaceImages):
    """:class:`~exprgan.datamodules.images.FaceImages` read from a :class:`MemmapCrops`.

    Args:
        crops: the cache's memmap.
        rows: memmap row of every item.
        transform: per-image augmentation; with a :class:`FastAugmenter` batches are
            augmented in place by :meth:`images`.
        files, frames, labels, subjects, poses, image_size: see ``FaceImages``.
    """

    def __init__(
        self,
        crops: MemmapCrops,
        rows: Sequence[int],
        files: Sequence[str],
        frames: Sequence[int],
        labels: Sequence[int],
        subjects: Sequence[int],
        poses: Sequence[int],
        image_size: int,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        super().__init__(files, frames, labels, subjects, poses, image_size, transform)
        if crops.image_size != image_size:
            raise ValueError(f"the memmap holds {crops.image_size} px crops, not {image_size} px")
        self.crops = crops
        self.rows = np.asarray(rows, dtype=np.int64)

    def image(self, index: int) -> np.ndarray:
        image = np.array(self.crops.array[self.rows[index]])  # a private copy of the row
        return self.transform(image) if self.transform is not None else image

    def images(self, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """Items ``indices`` as one ``uint8 [B, S, S, 3]`` array (transformed when a transform is set).

        ``out``: a C-contiguous array of that shape to write into (e.g. shared memory).
        """
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        batch = np.take(self.crops.array, rows, axis=0, out=out)  # one copy out of the page cache
        if isinstance(self.transform, FastAugmenter):
            self.transform.augment_batch(batch)
        elif self.transform is not None:
            batch[:] = np.stack([self.transform(image) for image in batch])
        return batch


class SharedStartPairs(UnpairedPairs):
    """:class:`~exprgan.datamodules.pairs.UnpairedPairs` whose batches are loaded whole as
    uint8 into recycled buffers, for persistent DataLoader workers.

    Batches hold ``image_a, image_b: uint8 [B, H, W, 3]`` (a quarter of the bytes to move
    between processes, pin and copy to the GPU) and ``buffer``; the DataModule's
    ``on_after_batch_transfer`` turns the images into ``float [B, 3, H, W]`` in ``[-1, 1]``
    on the device (:func:`to_float_batch`) and hands the buffer back (:meth:`release`).

    **Buffers.** A worker's batch reaches the main process through shared memory, and
    fresh shared pages cost as much as the augmentation to fault in. So each worker keeps
    ``slots`` shared buffers and refills one only after the main process has released it,
    that is after copying the images out: a flag per buffer, in shared memory, says which
    are free. A batch never released (a loader iterated by hand) just keeps its buffer:
    when none is free, a fresh one is used (``buffer`` ``[-1, -1]``). Nothing is ever
    overwritten while in use.

    ``start_step`` lives in shared memory too: the main process moves it on (the DataModule
    does, batch by batch) and persistent workers, which keep their copy of this object
    between epochs, read the current value when the next epoch starts.

    Args:
        load_images: ``(indices, out)``: write those augmented images into ``out``, a
            ``uint8 [len(indices), S, S, 3]`` array.
        image_size: ``S``.
        workers: DataLoader workers (0: the main process loads).
        slots: buffers per worker (at least the loader's prefetch depth + 2).
        Other arguments: see ``UnpairedPairs``.
    """

    def __init__(
        self,
        labels: Sequence[int],
        load_images: Callable[[np.ndarray, np.ndarray], Any],
        image_size: int,
        num_expressions: int,
        batch_size: int,
        steps_per_epoch: int,
        seed: int = 0,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        class_names: Sequence[str] | None = None,
        workers: int = 0,
        slots: int = 6,
    ) -> None:
        self._start = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._free = torch.ones(max(1, workers), slots, dtype=torch.bool).share_memory_()
        self._buffers: dict[int, torch.Tensor] = {}  # this process's buffers, by slot
        self._buffers_pid: int | None = None
        self.load_images = load_images
        self.image_size = image_size
        super().__init__(
            labels,
            self._load_one,
            num_expressions,
            batch_size,
            steps_per_epoch,
            seed,
            start_step,
            rank,
            world_size,
            class_names,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_buffers": {}, "_buffers_pid": None}

    def _load_one(self, index: int) -> torch.Tensor:
        out = torch.empty(1, self.image_size, self.image_size, 3, dtype=torch.uint8)
        self.load_images(np.array([index]), out.numpy())
        return images_to_tensor(out)[0]

    @property  # type: ignore[override]
    def start_step(self) -> int:
        """First step of the next iteration (shared with the workers)."""
        return int(self._start[0])

    @start_step.setter
    def start_step(self, step: int) -> None:
        self._start[0] = step

    def _buffer(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A free buffer of this process and its ``[worker, slot]`` (slot -1: a fresh, unrecycled one)."""
        info = get_worker_info()
        worker = info.id if info is not None else 0
        free = self._free[worker]
        if self._buffers_pid != os.getpid():  # a new process: none of its buffers can be in use
            self._buffers, self._buffers_pid = {}, os.getpid()
            free.fill_(True)
        slots = torch.nonzero(free).flatten().tolist()
        if not slots:
            return uint8_batch(count, self.image_size), torch.tensor([worker, -1])
        slot = slots[0]
        free[slot] = False
        buffer = self._buffers.get(slot)
        if buffer is None or len(buffer) != count:
            buffer = self._buffers[slot] = uint8_batch(count, self.image_size)
        return buffer, torch.tensor([worker, slot])

    def release(self, buffer: torch.Tensor) -> None:
        """Hand back the buffer ``[worker, slot]`` of a batch whose images were copied out."""
        worker, slot = (int(v) for v in buffer.tolist())
        if slot >= 0:
            self._free[worker, slot] = True

    def batch(self, step: int) -> PairBatch:
        index_a, label_a, index_b, label_b = sample_pairs(self.members, step, self.batch_size, self.seed, self.rank)
        images, buffer = self._buffer(len(index_a) + len(index_b))
        self.load_images(np.concatenate([index_a, index_b]), images.numpy())  # one gather
        return {
            "image_a": images[: len(index_a)],
            "label_a": torch.from_numpy(label_a),
            "image_b": images[len(index_a) :],
            "label_b": torch.from_numpy(label_b),
            "step": torch.tensor(step),
            "buffer": buffer,
        }


def to_float_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A pair batch with its uint8 ``image_a, image_b`` as ``float [B, 3, H, W]`` in ``[-1, 1]``
    (the ``buffer`` entry dropped: the images no longer live in it)."""
    return {
        key: images_to_tensor(value) if key in ("image_a", "image_b") and value.dtype == torch.uint8 else value
        for key, value in batch.items()
        if key != "buffer"
    }
