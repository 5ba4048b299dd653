"""The shared image-folder machinery: reading and converting images, bad files, augmentation, folds, caches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from exprgan.cache import BadImageError, image_problem, listing_frame, read_image
from exprgan.datamodules import Augmentation, CacheError, LabelFileError, RAFDBDataModule, read_cache, subject_folds
from exprgan.datamodules.augment import Augmenter
from exprgan.datamodules.images import fit_square, read_text_lines
from exprgan.datamodules.rafdb import RAFDB_CLASSES
from tests.data_trees import make_rafdb

OFF = Augmentation(flip=False, affine_p=0.0, color_p=0.0)


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK"])
def test_any_image_mode_reads_as_rgb_uint8(tmp_path, mode) -> None:
    path = tmp_path / ("image.tif" if mode in ("I;16", "CMYK") else "image.png")
    Image.fromarray(noise(30, 45)).convert(mode).save(path)
    image = read_image(path)
    assert image.shape == (30, 45, 3) and image.dtype == np.uint8


def test_fit_square_crops_the_centre_and_resizes() -> None:
    image = np.zeros((37, 53, 3), dtype=np.uint8)
    image[:, 8:45] = 200  # the centre 37x37 square
    out = fit_square(image, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and (out == 200).all()
    assert fit_square(noise(64, 64), 64).shape == (64, 64, 3)
    assert fit_square(noise(100, 100), 256).shape == (256, 256, 3)


def test_bad_files_are_found_and_named(tmp_path) -> None:
    good, missing, garbage = tmp_path / "good.jpg", tmp_path / "missing.jpg", tmp_path / "garbage.jpg"
    Image.fromarray(noise(40, 40)).save(good)
    garbage.write_bytes(b"\x00" * 100)
    truncated_jpeg, truncated_png = tmp_path / "cut.jpg", tmp_path / "cut.png"
    truncated_jpeg.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    Image.fromarray(noise(40, 40)).save(tmp_path / "full.png")
    truncated_png.write_bytes((tmp_path / "full.png").read_bytes()[:-40])
    assert image_problem(str(good), -1) is None
    assert image_problem(str(missing), -1) == "no such file"
    for path in (garbage, truncated_jpeg, truncated_png):
        assert image_problem(str(path), -1).startswith("not a readable image"), path
        with pytest.raises(BadImageError, match=re.escape(str(path))):
            read_image(path)
    bad_video = tmp_path / "bad.avi"
    bad_video.write_bytes(b"RIFF" + b"\x00" * 100)
    assert image_problem(str(bad_video), 3) == "not a readable video"


def test_text_lines_with_crlf_cr_bom_blanks_and_trailing_spaces(tmp_path) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(b"\xef\xbb\xbfa 1  \r\n\r\n  \r\nb 2\rc 3\t\n\n")
    assert read_text_lines(path) == [(1, "a 1"), (4, "b 2"), (5, "c 3")]
    path.write_bytes(b"a 1\nb \xff\n")
    with pytest.raises(LabelFileError, match=re.escape(f"{path}:2: not UTF-8")):
        read_text_lines(path)


def test_augmentation_keeps_shape_and_range_and_changes_images() -> None:
    image = noise(32, 32)
    augment = Augmenter(Augmentation())
    outputs = [augment(image) for _ in range(20)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in outputs)
    assert sum(not np.array_equal(o, image) for o in outputs) >= 15
    assert all(np.array_equal(Augmenter(OFF)(image), image) for _ in range(3))
    flips = Augmenter(Augmentation(affine_p=0.0, color_p=0.0))
    for out in (flips(image) for _ in range(10)):
        assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])


def test_augmentation_follows_the_process_seed() -> None:
    image = noise(32, 32)

    def draws(seed: int) -> list[np.ndarray]:
        torch.manual_seed(seed)  # a DataLoader worker's seed
        augment = Augmenter(Augmentation())
        return [augment(image) for _ in range(5)]

    first, again, other = draws(1), draws(1), draws(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def disc(size: int = 33, radius: float = 8.0, centre: tuple[float, float] | None = None) -> np.ndarray:
    """A white disc on black, ``uint8 [size, size, 3]``, centred on the image centre by default."""
    cy, cx = centre or ((size - 1) / 2, (size - 1) / 2)
    y, x = np.mgrid[:size, :size]
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    return np.repeat((inside * 255).astype(np.uint8)[..., None], 3, axis=-1)


def centroid(image: np.ndarray) -> np.ndarray:
    weights = image[..., 0].astype(np.float64)
    y, x = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(x * weights).sum(), (y * weights).sum()]) / weights.sum()


def test_augmentation_draws_each_step_with_its_probability_and_range() -> None:
    torch.manual_seed(0)
    grey = np.full((16, 16, 3), 100, dtype=np.uint8)
    colour = Augmenter(Augmentation(flip=False, affine_p=0.0, color_p=0.5, brightness=0.1, contrast=0.2))
    values = np.array([colour(grey)[0, 0, 0] for _ in range(400)], dtype=np.int64)
    assert 160 < (values != 100).sum() < 240  # p = 0.5
    assert np.abs(values - 100).max() <= 100 * 0.2 + 0.1 * 255 + 1
    image = noise(16, 16)
    flips = Augmenter(Augmentation(affine_p=0.0, color_p=0.0))
    assert 160 < sum(np.array_equal(flips(image), image[:, ::-1]) for _ in range(400)) < 240


def test_affine_turns_about_the_centre_and_shifts_and_scales_within_range() -> None:
    torch.manual_seed(0)
    face = disc()
    turn = Augmenter(Augmentation(flip=False, affine_p=1.0, color_p=0.0, shift=0.0, scale=0.0, rotate=45.0))
    for _ in range(10):  # a disc on the centre stays there, whole, at any angle
        turned = turn(face)
        assert np.abs(centroid(turned) - centroid(face)).max() < 0.2
        assert abs(turned[..., 0].sum() / face[..., 0].sum() - 1) < 0.03
    shift = Augmenter(Augmentation(flip=False, affine_p=1.0, color_p=0.0, shift=0.1, scale=0.0, rotate=0.0))
    moves = np.array([centroid(shift(face)) - centroid(face) for _ in range(50)])
    assert np.abs(moves).max() <= 0.1 * 33 + 0.5 and np.abs(moves).max() > 1.5
    zoom = Augmenter(Augmentation(flip=False, affine_p=1.0, color_p=0.0, shift=0.0, scale=0.2, rotate=0.0))
    areas = np.array([zoom(face)[..., 0].sum() / face[..., 0].sum() for _ in range(50)])
    assert 0.8**2 - 0.05 < areas.min() < 0.9 and 1.1 < areas.max() < 1.2**2 + 0.05


def test_only_training_images_are_augmented(tmp_path) -> None:
    make_rafdb(tmp_path)
    module = RAFDBDataModule(str(tmp_path), image_size=32, augmentation=Augmentation(rotate=20.0))
    module.setup("fit")
    assert module.split("train").transform is not None and module.split("test").transform is None
    assert module.split("train").transform.config.rotate == 20.0
    off = RAFDBDataModule(str(tmp_path), image_size=32, augmentation=None)
    off.setup("fit")
    assert off.split("train").transform is None
    with pytest.raises(ValueError, match="multiple of 32"):
        RAFDBDataModule(str(tmp_path), image_size=100)
    with pytest.raises(ValueError, match="on_bad_image"):
        RAFDBDataModule(str(tmp_path), on_bad_image="ignore")


def test_subject_folds_are_deterministic_balanced_and_complete() -> None:
    subjects = [f"S{k:03d}" for k in range(23) for _ in range(1 + k % 4)]
    folds = subject_folds(subjects, 5, seed=0)
    assert folds == subject_folds(list(reversed(subjects)), 5, seed=0)
    assert set(folds) == set(subjects) and set(folds.values()) == set(range(5))
    sizes = np.bincount([folds[s] for s in subjects], minlength=5)
    assert sizes.max() - sizes.min() <= 4
    assert subject_folds(subjects, 5, seed=1) != folds
    with pytest.raises(ValueError, match="at least 5 subjects"):
        subject_folds(["a", "b", "c"], 5)
    with pytest.raises(ValueError, match="no subject"):
        subject_folds(["a", "b", "", "c", "d", "e"], 5)


def test_cache_with_missing_columns_is_rejected(tmp_path) -> None:
    listing_frame([{"path": "a.jpg", "label": 0, "label_name": "surprise"}]).to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(CacheError, match=r"missing columns \['crop'\]"):
        read_cache(tmp_path)
    frame = listing_frame([{"path": "a.jpg", "label": 0, "label_name": "surprise", "subject": "007"}])
    frame.assign(crop="crops/0.png").to_csv(tmp_path / "index.csv", index=False)
    index, failures = read_cache(tmp_path)
    assert index["subject"][0] == "007" and index["frame"][0] == -1 and index["pose"][0] == "" and failures.empty


def make_cache(folder: Path, count: int = 28, crop_size: int = 48) -> Path:
    """A cache as ``exprgan preprocess`` writes it: PNG crops under crops/, index.csv."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        split = "train" if k % 4 else "test"
        crop = f"crops/Image/original/{split}_{k:05d}_jpg.png"
        (folder / crop).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (crop_size, crop_size, 3), dtype=np.uint8)).save(folder / crop)
        label = k % len(RAFDB_CLASSES)
        path = f"Image/original/{split}_{k:05d}.jpg"
        rows.append({"path": path, "label": label, "label_name": RAFDB_CLASSES[label], "split": split, "crop": crop})
    listing_frame(rows, extra=("crop",)).to_csv(folder / "index.csv", index=False)
    return folder


def cached(cache: Path, **options) -> RAFDBDataModule:
    options = {"image_size": 32, "batch_size": 3, "augmentation": None, **options}
    return RAFDBDataModule("/nowhere", cache=str(cache), **options)


def test_cache_crops_are_served_resized(tmp_path) -> None:
    cache = make_cache(tmp_path)
    module = cached(cache)
    module.setup()
    for k in range(len(module.split("test"))):
        crop = read_image(cache / module.split_frame("test")["crop"][k])
        expected = torch.from_numpy(fit_square(crop, 32)).permute(2, 0, 1).float() / 127.5 - 1
        torch.testing.assert_close(module.split("test")[k]["image"], expected)


@pytest.mark.parametrize("on_bad_image", ["error", "skip"])
def test_unreadable_or_missing_crops_are_named_or_skipped(tmp_path, on_bad_image) -> None:
    cache = make_cache(tmp_path)
    (cache / "crops/Image/original/train_00001_jpg.png").write_bytes(b"not a png")
    (cache / "crops/Image/original/train_00002_jpg.png").unlink()
    if on_bad_image == "error":
        with pytest.raises(BadImageError, match="train_00001_jpg.png.*2 listed images"):
            cached(cache).setup()
        return
    module = cached(cache, on_bad_image="skip")
    with pytest.warns(UserWarning, match="skipped 2 of 28"):
        module.setup()
    assert "crops/Image/original/train_00001_jpg.png" not in module.split_frame("train")["crop"].tolist()
    assert len(module.split("train")) == 21 - 2


def test_a_cache_of_other_classes_is_named(tmp_path) -> None:
    cache = make_cache(tmp_path)
    index = pd.read_csv(cache / "index.csv", keep_default_na=False)
    index.assign(label_name="contempt").to_csv(cache / "index.csv", index=False)
    with pytest.raises(CacheError, match="index.csv has no rows for this RAF-DB configuration"):
        cached(cache).setup()


def test_loader_workers_continue_the_pair_stream_across_epochs(tmp_path) -> None:
    module = cached(make_cache(tmp_path), num_workers=2, steps_per_epoch=3)
    loader = module.train_dataloader()
    assert [int(b["step"]) for b in loader] == [0, 1, 2]
    module._pairs.start_step = 3  # what on_before_batch_transfer does after each trained batch
    assert [int(b["step"]) for b in loader] == [3, 4, 5]  # the next epoch's workers start there
