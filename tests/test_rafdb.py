"""RAF-DB: listing, official partition, label mapping, images, cache, bad input, and a CLI training run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from exprgan.datamodules import (
    INDEX_COLUMNS,
    LISTINGS,
    BadImageError,
    CacheError,
    DataRootError,
    EmptyClassError,
    LabelFileError,
    RAFDBDataModule,
    list_rafdb,
)
from tests.data_trees import RAFDB_TEST_PER_CLASS, RAFDB_TRAIN_PER_CLASS, class_value, flat_image, make_rafdb

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = sum(RAFDB_TRAIN_PER_CLASS), sum(RAFDB_TEST_PER_CLASS)


def data(root: Path, **overrides) -> RAFDBDataModule:
    options = dict(image_size=32, batch_size=2, eval_batch_size=4, augmentation=None)
    options.update(overrides)
    module = RAFDBDataModule(str(root), **options)
    module.setup("fit")
    return module


@pytest.mark.parametrize("in_basic", [True, False])
def test_listing_has_the_official_split_and_label_mapping(tmp_path, in_basic) -> None:
    basic = make_rafdb(tmp_path, in_basic=in_basic)
    frame = LISTINGS["rafdb"](tmp_path)
    assert list(frame.columns[: len(INDEX_COLUMNS)]) == list(INDEX_COLUMNS)
    assert (frame["split"] == "train").sum() == N_TRAIN and (frame["split"] == "test").sum() == N_TEST
    assert (frame["frame"] == -1).all() and (frame["fold"] == -1).all() and (frame["subject"] == "").all()
    for path in frame["path"]:
        assert (tmp_path / path).is_file() and path.startswith("basic/" if in_basic else "Image/original/")
    # the label file's 1..7 -> 0..6: surprise .. neutral
    lines = dict(line.split() for line in (basic / "EmoLabel" / "list_patition_label.txt").read_text().splitlines())
    for _, row in frame.iterrows():
        assert row["label"] == int(lines[Path(row["path"]).name]) - 1
    assert frame.groupby("label")["label_name"].first().tolist() == [
        "surprise",
        "fear",
        "disgust",
        "happiness",
        "sadness",
        "anger",
        "neutral",
    ]
    counts = frame[frame["split"] == "train"]["label"].value_counts().sort_index().tolist()
    assert counts == list(RAFDB_TRAIN_PER_CLASS)
    aligned = list_rafdb(tmp_path, images="aligned")
    assert all(p.endswith("_aligned.jpg") and (tmp_path / p).is_file() for p in aligned["path"])


def test_label_file_with_crlf_blank_lines_and_trailing_spaces_reads_the_same(tmp_path) -> None:
    make_rafdb(tmp_path / "plain")
    basic = make_rafdb(tmp_path / "messy", line_end="  \r\n", extra_lines=["", "   ", "\t"])
    label_file = basic / "EmoLabel" / "list_patition_label.txt"
    label_file.write_bytes(b"\xef\xbb\xbf\r\n" + label_file.read_bytes() + b"\r\n\r\n")  # BOM, blank lines
    plain, messy = list_rafdb(tmp_path / "plain"), list_rafdb(tmp_path / "messy")
    pd.testing.assert_frame_equal(plain, messy)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("train_99999.jpg 8", "unknown label '8'"),
        ("train_99999.jpg 0", "unknown label '0'"),
        ("train_99999.jpg happy", "unknown label 'happy'"),
        ("train_99999.jpg", "expected '<image name> <label 1..7>'"),
        ("train_99999.jpg 3 1", "expected '<image name> <label 1..7>'"),
        ("val_0001.jpg 3", "is not train_<number>.jpg"),
        ("train_00001.jpg 3", "listed again (first on line 1)"),
    ],
)
def test_bad_label_line_names_file_and_line(tmp_path, line, message) -> None:
    make_rafdb(tmp_path, extra_lines=["", line])
    label_file = tmp_path / "basic" / "EmoLabel" / "list_patition_label.txt"
    bad_line = N_TRAIN + N_TEST + 2  # after the listed images and one blank line
    with pytest.raises(LabelFileError, match=re.escape(f"{label_file}:{bad_line}: ")) as error:
        list_rafdb(tmp_path)
    assert message in str(error.value)


@pytest.mark.parametrize("where", ["missing", "empty", "no_images"])
def test_wrong_root_explains_the_layout_and_where_to_get_it(tmp_path, where) -> None:
    root = tmp_path / "RAF-DB"
    if where == "empty":
        root.mkdir()
    if where == "no_images":
        make_rafdb(root)
        for image in (root / "basic" / "Image" / "aligned").iterdir():
            image.unlink()
        (root / "basic" / "Image" / "aligned").rmdir()
    with pytest.raises(DataRootError) as error:
        data(root)
    message = str(error.value)
    assert "EmoLabel/list_patition_label.txt" in message and "Image/aligned/" in message
    assert "whdeng.cn/RAF" in message and "never downloads" in message
    assert {"missing": "no such folder", "empty": "no EmoLabel", "no_images": "no Image/aligned/"}[where] in message


def test_datamodule_splits_items_and_sizes(tmp_path) -> None:
    make_rafdb(tmp_path)
    module = data(tmp_path)
    assert module.num_expressions == 7 and module.class_names[0] == "surprise" and module.image_size == 32
    assert len(module.split("train")) == N_TRAIN and len(module.split("test")) == N_TEST
    assert module.split("val") is module.split("test")  # no val_fraction: validate on the test partition
    item = module.split("test")[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert item["subject"] == -1 and item["pose"] == -1  # RAF-DB names neither
    # the class shows in the image (the tree encodes it as a grey level)
    for k in range(len(module.split("test"))):
        item = module.split("test")[k]
        grey = (item["image"].mean() + 1) * 127.5
        assert abs(grey - class_value(int(item["label"]))) < 4
    batch = next(iter(module.val_dataloader()))
    assert set(batch) == {"image", "label", "subject", "pose", "index"} and batch["image"].shape == (4, 3, 32, 32)
    pairs = next(iter(module.train_dataloader()))
    assert pairs["image_a"].shape == (2, 3, 32, 32) and (pairs["label_a"] == 0).all()
    assert (pairs["label_b"] != pairs["label_a"]).all()


def test_original_images_grayscale_and_odd_sized_are_converted(tmp_path) -> None:
    make_rafdb(tmp_path)
    module = data(tmp_path, images="original", image_size=64)
    image = module.split("train").image(2)  # train_00003.jpg: a 48x36 grayscale JPEG
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert module.load_train_image(5).shape == (3, 64, 64)


def test_val_fraction_holds_out_training_images(tmp_path) -> None:
    make_rafdb(tmp_path, train_per_class=(4,) * 7)
    module = data(tmp_path, val_fraction=0.25)
    train, val = module.split_frame("train"), module.split_frame("val")
    assert len(val) == 7 and len(train) == 21 and not set(train["path"]) & set(val["path"])
    assert len(module.split("test")) == N_TEST


def test_missing_or_corrupt_image_is_named_or_skipped_with_a_warning(tmp_path) -> None:
    basic = make_rafdb(tmp_path)
    missing = basic / "Image" / "aligned" / "train_00002_aligned.jpg"
    corrupt = basic / "Image" / "aligned" / "test_0001_aligned.jpg"
    missing.unlink()
    corrupt.write_bytes(b"this is not a JPEG")
    with pytest.raises(BadImageError, match=re.escape(str(missing))) as error:
        data(tmp_path)
    assert "no such file" in str(error.value) and "2 listed images" in str(error.value)
    with pytest.warns(UserWarning, match="skipped 2 of .* listed images") as caught:
        module = data(tmp_path, on_bad_image="skip")
    assert "train_00002_aligned.jpg" in str(caught[0].message)
    assert len(module.split("train")) == N_TRAIN - 1 and len(module.split("test")) == N_TEST - 1
    assert sorted(Path(f).name for f in module.skipped["_file"]) == [corrupt.name, missing.name]


def test_class_without_training_images_is_named(tmp_path) -> None:
    make_rafdb(tmp_path, train_per_class=(2, 0, 2, 2, 2, 2, 2))
    with pytest.raises(EmptyClassError, match=r"RAF-DB .*'fear' \(1\)"):
        data(tmp_path)


def _cache(tmp_path: Path, listing: pd.DataFrame, failed: int) -> Path:
    """A cache as ``exprgan preprocess`` writes it: 64 px crops, index.csv, failures.csv."""
    cache = tmp_path / "cache"
    (cache / "crops").mkdir(parents=True)
    ok, failures = listing.iloc[failed:].copy(), listing.iloc[:failed].copy()
    ok["crop"] = [f"crops/{k:05d}.png" for k in range(len(ok))]
    for crop, label in zip(ok["crop"], ok["label"]):
        flat_image(class_value(int(label)), (64, 64)).save(cache / crop)
    ok.to_csv(cache / "index.csv", index=False)
    failures.assign(reason="no face found").to_csv(cache / "failures.csv", index=False)
    (cache / "meta.json").write_text("{}")
    return cache


def test_cache_serves_crops_and_leaves_out_failures(tmp_path) -> None:
    make_rafdb(tmp_path / "raw")
    cache = _cache(tmp_path, list_rafdb(tmp_path / "raw"), failed=1)
    module = data(tmp_path / "does-not-matter", cache=str(cache))
    assert len(module.split("train")) == N_TRAIN - 1 and len(module.split("test")) == N_TEST
    assert all(f.startswith(str(cache / "crops")) for f in module.split_frame("train")["_file"])
    item = module.split("test")[0]
    assert item["image"].shape == (3, 32, 32)
    assert abs((item["image"].mean() + 1) * 127.5 - class_value(int(item["label"]))) < 4


def test_cache_without_index_says_to_run_preprocess(tmp_path) -> None:
    make_rafdb(tmp_path)
    (tmp_path / "cache").mkdir()
    for cache in (tmp_path / "cache", tmp_path / "nowhere"):
        with pytest.raises(CacheError, match="exprgan preprocess"):
            data(tmp_path, cache=str(cache))


def test_rafdb_config_trains_and_validates_on_cpu(tmp_path, monkeypatch) -> None:
    from exprgan.cli import cli_main

    make_rafdb(tmp_path / "RAF-DB")
    monkeypatch.chdir(tmp_path)
    logger = '{"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": "logs", "name": "r"}}'
    cli_main(
        [
            "fit",
            "--config",
            str(ROOT / "experiments" / "rafdb.yaml"),
            "--data.root",
            str(tmp_path / "RAF-DB"),
            "--data.image_size=32",
            "--data.batch_size=2",
            "--data.eval_batch_size=4",
            "--data.num_workers=0",
            "--data.steps_per_epoch=2",
            "--data.augmentation.rotate=5",
            "--model.networks.backbone=resnet18",
            "--model.networks.pretrained=false",
            "--model.networks.perceptual_pretrained=false",
            "--model.networks.perceptual_layer_weights=[1.0]",
            "--model.networks.classifier_hidden_features=32",
            "--model.networks.gan_width=8",
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.strategy=auto",
            "--trainer.precision=32",
            "--trainer.max_steps=6",
            "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=1",
            f"--trainer.logger={logger}",
        ]
    )
    metrics = pd.read_csv(next((tmp_path / "logs" / "r").rglob("metrics.csv")))
    assert metrics["val/acc"].notna().any() and metrics["c/classification"].notna().any()
    assert (tmp_path / "runs" / "rafdb" / "checkpoints" / "last.ckpt").is_file()
