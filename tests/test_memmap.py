"""The uint8 memmap of a crop cache: same images as the PNGs, rebuilt when stale, fast augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from exprgan.datamodules import Augmentation, BadImageError, RAFDBDataModule
from exprgan.datamodules.base import to_tensor
from exprgan.datamodules.images import listing_frame
from exprgan.datamodules.memmap import (
    FastAugmenter,
    MemmapFaceImages,
    build_memmap,
    images_to_tensor,
    memmap_is_current,
    memmap_paths,
)
from exprgan.datamodules.rafdb import RAFDB_CLASSES

DETECTION = {"score": 1.0, "box": "[0, 0, 1, 1]", "n_faces": 1, "other_faces": "[]"}


def make_cache(folder: Path, count: int = 28, crop_size: int = 48) -> Path:
    """A cache as ``exprgan preprocess`` writes it: PNG crops under crops/, index.csv."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        split = "train" if k % 4 else "test"
        path = f"Image/original/{split}_{k:05d}.jpg"
        crop = f"crops/Image/original/{split}_{k:05d}_jpg.png"
        (folder / crop).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (crop_size, crop_size, 3), dtype=np.uint8)).save(folder / crop)
        label = k % len(RAFDB_CLASSES)
        rows.append({"path": path, "label": label, "label_name": RAFDB_CLASSES[label], "split": split, "crop": crop})
    index = listing_frame(rows, extra=("crop",))
    for column, value in DETECTION.items():
        index[column] = value
    index.to_csv(folder / "index.csv", index=False)
    return folder


def data(cache: Path, cache_format: str, **options) -> RAFDBDataModule:
    options = {"image_size": 32, "batch_size": 3, "augmentation": None, **options}
    return RAFDBDataModule("/nowhere", cache=str(cache), cache_format=cache_format, **options)


def test_memmap_serves_the_png_images(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    png, memmap = data(cache, "png"), data(cache, "memmap")
    png.setup(), memmap.setup()
    assert isinstance(memmap.split("test"), MemmapFaceImages)
    for split in ("train", "test"):
        assert len(png.split(split)) == len(memmap.split(split))
        for k in range(len(png.split(split))):
            torch.testing.assert_close(memmap.split(split)[k]["image"], png.split(split)[k]["image"], rtol=0, atol=0)
    # the training pair stream: the same steps, pairs and pixels (uint8 until on_after_batch_transfer)
    for from_png, raw in zip(png.train_dataloader(), memmap.train_dataloader()):
        assert raw["image_a"].dtype == torch.uint8 and raw["image_a"].shape == (3, 32, 32, 3)
        from_memmap = memmap.on_after_batch_transfer(raw, 0)
        assert from_png.keys() == from_memmap.keys()
        for key in from_png:
            torch.testing.assert_close(from_memmap[key], from_png[key], rtol=0, atol=0)


def test_batched_conversion_equals_to_tensor() -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    expected = torch.stack([to_tensor(image) for image in images])
    torch.testing.assert_close(images_to_tensor(images), expected, rtol=0, atol=0)
    assert images_to_tensor(images).is_contiguous()
    torch.testing.assert_close(images_to_tensor(torch.from_numpy(images)), expected, rtol=0, atol=0)


def test_a_stale_memmap_is_rebuilt(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    build_memmap(cache, 32)
    assert memmap_is_current(cache, 32) and not memmap_is_current(cache, 64)
    index = (cache / "index.csv").read_text().splitlines()
    (cache / "index.csv").write_text("\n".join(index[:-4]) + "\n")  # a smaller cache
    assert not memmap_is_current(cache, 32)
    module = data(cache, "memmap")
    module.setup()
    assert memmap_is_current(cache, 32)
    array = np.load(memmap_paths(cache, 32)[0], mmap_mode="r")
    assert array.shape == (len(index) - 5, 32, 32, 3)  # minus the header and 4 rows


@pytest.mark.parametrize("on_bad_image", ["error", "skip"])
def test_unreadable_crops_are_handled_like_the_png_path(tmp_path: Path, on_bad_image: str) -> None:
    cache = make_cache(tmp_path)
    broken = cache / "crops/Image/original/train_00001_jpg.png"
    broken.write_bytes(b"not a png")
    if on_bad_image == "error":
        with pytest.raises(BadImageError, match="train_00001_jpg.png"):
            data(cache, "memmap", on_bad_image=on_bad_image).setup()
        return
    png, memmap = data(cache, "png", on_bad_image="skip"), data(cache, "memmap", on_bad_image="skip")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        png.setup()
    with pytest.warns(UserWarning, match="skipped 1 of"):
        memmap.setup()
    assert png.split_frame("train")["crop"].tolist() == memmap.split_frame("train")["crop"].tolist()


def test_persistent_workers_continue_the_pair_stream(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    module = data(cache, "memmap", num_workers=2, steps_per_epoch=3)
    module.setup()
    loader = module.train_dataloader()
    assert loader.persistent_workers
    assert [int(b["step"]) for b in loader] == [0, 1, 2]
    module._pairs.start_step = 3  # what the DataModule does after each trained batch
    assert [int(b["step"]) for b in loader] == [3, 4, 5]  # the same workers, the next epoch


def test_memmap_needs_a_cache() -> None:
    with pytest.raises(ValueError, match="cache"):
        RAFDBDataModule("/nowhere", cache_format="memmap")


def test_fast_augmenter_changes_images_only_as_configured() -> None:
    images = np.random.default_rng(2).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    untouched = images.copy()
    FastAugmenter(Augmentation(flip=False, affine_p=0.0, color_p=0.0)).augment_batch(images)
    assert np.array_equal(images, untouched)
    flipped = images.copy()
    FastAugmenter(Augmentation(flip=True, affine_p=0.0, color_p=0.0)).augment_batch(flipped)
    for image, original in zip(flipped, images):  # each one either unchanged or mirrored
        assert np.array_equal(image, original) or np.array_equal(image, original[:, ::-1])
    torch.manual_seed(5)
    augmented = images.copy()
    FastAugmenter(Augmentation(affine_p=1.0, color_p=1.0)).augment_batch(augmented)
    assert augmented.dtype == np.uint8 and augmented.shape == images.shape
    assert not np.array_equal(augmented, images)
    torch.manual_seed(5)
    again = images.copy()
    FastAugmenter(Augmentation(affine_p=1.0, color_p=1.0)).augment_batch(again)
    assert np.array_equal(again, augmented)  # seeded from torch.initial_seed()


def test_batch_buffers_are_refilled_only_after_release(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    module = data(cache, "memmap", steps_per_epoch=20)
    module.setup()
    batches = iter(module.train_dataloader())
    held = next(batches)  # never released: its buffer must not be touched again
    snapshot = held["image_a"].clone()
    seen_slots = set()
    for _ in range(12):
        raw = next(batches)
        seen_slots.add(int(raw["buffer"][1]))
        converted = module.on_after_batch_transfer(raw, 0)  # releases raw's buffer
        assert "buffer" not in converted and converted["image_a"].dtype == torch.float32
    assert torch.equal(held["image_a"], snapshot)
    assert int(held["buffer"][1]) not in seen_slots and len(seen_slots) == 1  # one buffer, recycled
