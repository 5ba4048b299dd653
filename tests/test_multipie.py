"""Multi-PIE: selection of one image per (subject, expression, camera), poses, subject-independent folds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from exprgan.datamodules import (
    INDEX_COLUMNS,
    LISTINGS,
    DataRootError,
    EmptyClassError,
    MultiPIEDataModule,
    list_multipie,
)
from tests.data_trees import flat_image, make_multipie

ATTENDANCE = {
    "001": (1, 2, 3, 4),
    "002": (1,),
    "003": (2,),
    "004": (3, 4),
    "005": (1, 2),
    "006": (4,),
    "007": (1, 3),
    "008": (2, 3, 4),
    "009": (1, 2, 3, 4),
    "010": (3,),
}
# distinct expressions of each subject over the sessions attended (worked out by hand)
EXPECTED = {
    "001": {"neutral", "smile", "surprise", "squint", "disgust", "scream"},
    "002": {"neutral", "smile"},
    "003": {"neutral", "surprise", "squint"},
    "004": {"neutral", "smile", "disgust", "scream"},
    "005": {"neutral", "smile", "surprise", "squint"},
    "006": {"neutral", "scream"},
    "007": {"neutral", "smile", "disgust"},
    "008": {"neutral", "smile", "surprise", "squint", "disgust", "scream"},
    "009": {"neutral", "smile", "surprise", "squint", "disgust", "scream"},
    "010": {"neutral", "smile", "disgust"},
}
PER_POSE = sum(len(e) for e in EXPECTED.values())  # 39
POSES = {"13_0": "-30", "14_0": "-15", "05_1": "0", "05_0": "+15", "04_1": "+30"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multipie")
    make_multipie(root, ATTENDANCE)
    return root


def test_selection_is_one_image_per_subject_expression_and_camera(tree) -> None:
    frame = LISTINGS["multipie"](tree)
    assert list(frame.columns[: len(INDEX_COLUMNS)]) == list(INDEX_COLUMNS)
    assert len(frame) == 5 * PER_POSE
    assert (frame["illumination"] == 7).all() and (frame["frame"] == -1).all() and (frame["split"] == "").all()
    for camera, pose in POSES.items():
        rows = frame[frame["camera"] == camera]
        assert len(rows) == PER_POSE and (rows["pose"] == pose).all()
        assert {s: set(g["label_name"]) for s, g in rows.groupby("subject")} == EXPECTED
    assert not frame.duplicated(["subject", "label", "camera"]).any()
    for path in frame["path"]:
        assert (tree / path).is_file() and path.startswith("data/session")
    # the earliest (session, recording) of an expression is kept: 006's neutral is (4, 1), not (4, 2)
    neutral = frame[(frame["subject"] == "006") & (frame["label_name"] == "neutral")]
    assert set(zip(neutral["session"], neutral["recording"])) == {(4, 1)}
    assert Path(neutral["path"].iloc[0]).name.startswith("006_04_01_")
    smile = frame[(frame["subject"] == "004") & (frame["label_name"] == "smile")]
    assert set(zip(smile["session"], smile["recording"])) == {(3, 2)}


def test_label_mapping_and_session_recording_table(tree) -> None:
    frame = list_multipie(tree)
    names = ["neutral", "smile", "surprise", "squint", "disgust", "scream"]
    assert (frame["label_name"] == [names[k] for k in frame["label"]]).all()
    table = {(s, r): n for s, r, n in zip(frame["session"], frame["recording"], frame["label_name"])}
    assert table == {
        (1, 1): "neutral",
        (2, 1): "neutral",
        (3, 1): "neutral",
        (4, 1): "neutral",
        (1, 2): "smile",
        (3, 2): "smile",
        (2, 2): "surprise",
        (2, 3): "squint",
        (3, 3): "disgust",
        (4, 3): "scream",
    }


def test_options_illumination_cameras_subjects_and_pose_sign(tree) -> None:
    assert len(list_multipie(tree, illumination=0)) == 5 * PER_POSE
    flipped = list_multipie(tree, pose_sign=-1)
    assert set(zip(flipped["camera"], flipped["pose"])) == {
        (c, p.replace("-", "+") if "-" in p else p.replace("+", "-")) for c, p in POSES.items()
    }
    frontal = list_multipie(tree, cameras=["05_1"], subjects=["1", "002", "003", "004", "005"], num_folds=2)
    assert len(frontal) == 6 + 2 + 3 + 4 + 4 and (frontal["pose"] == "0").all()
    with pytest.raises(ValueError, match="unknown Multi-PIE cameras"):
        list_multipie(tree, cameras=["99_9"])


def test_folds_are_subject_disjoint_and_balanced(tree) -> None:
    frame = list_multipie(tree)
    assert sorted(frame["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (frame.groupby("subject")["fold"].nunique() == 1).all()
    sizes = frame["fold"].value_counts()
    assert sizes.sum() == 5 * PER_POSE and sizes.max() - sizes.min() <= 5 * 6  # within one subject's images
    # the DataModule: fold k is the test set, the rest the training set, for every k
    seen = set()
    for fold in range(5):
        module = MultiPIEDataModule(str(tree), fold=fold, image_size=32, augmentation=None)
        module.setup("fit")
        train, test = module.split_frame("train"), module.split_frame("test")
        assert len(train) + len(test) == 5 * PER_POSE and len(test) == sizes[fold]
        assert not set(train["subject"]) & set(test["subject"])
        assert module.split("val") is module.split("test")
        seen |= set(test["subject"])
    assert seen == set(ATTENDANCE)
    other_seed = list_multipie(tree, fold_seed=1)
    assert other_seed.groupby("subject")["fold"].first().tolist() != frame.groupby("subject")["fold"].first().tolist()


def test_datamodule_items_carry_pose_and_subject(tree) -> None:
    module = MultiPIEDataModule(str(tree), fold=2, image_size=32, batch_size=2, eval_batch_size=8)
    module.setup("test")
    assert module.num_expressions == 6 and module.class_names[-1] == "scream"
    assert module.poses == ["-30", "-15", "0", "+15", "+30"]
    test = module.split_frame("test")
    batch = next(iter(module.test_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 32)
    for k in range(8):
        assert module.poses[int(batch["pose"][k])] == test["pose"][k]
        assert module.subjects[int(batch["subject"][k])] == test["subject"][k]
        assert int(batch["label"][k]) == test["label"][k]
    pairs = next(iter(module.train_dataloader()))
    assert pairs["image_a"].shape == (2, 3, 32, 32)


def test_val_fraction_holds_out_training_subjects(tree) -> None:
    module = MultiPIEDataModule(str(tree), fold=0, val_fraction=0.25, image_size=32, augmentation=None)
    module.setup("fit")
    train, val, test = (module.split_frame(s) for s in ("train", "val", "test"))
    assert len(val) and not set(val["subject"]) & (set(train["subject"]) | set(test["subject"]))
    assert len(train) + len(val) + len(test) == 5 * PER_POSE


def test_cache_gives_the_same_folds_and_relabels_from_the_path(tmp_path, tree) -> None:
    listing = list_multipie(tree)
    cache = tmp_path / "cache"
    (cache / "crops").mkdir(parents=True)
    ok, failed = listing.iloc[3:][list(INDEX_COLUMNS)].copy(), listing.iloc[:3][list(INDEX_COLUMNS)].copy()
    ok["crop"] = [f"crops/{k}.png" for k in range(len(ok))]
    for crop in ok["crop"]:
        flat_image(100, (48, 48)).save(cache / crop)
    ok.to_csv(cache / "index.csv", index=False)
    failed.assign(reason="no face found").to_csv(cache / "failures.csv", index=False)
    raw = MultiPIEDataModule(str(tree), fold=1, image_size=32)
    cached = MultiPIEDataModule("/nowhere", cache=str(cache), fold=1, image_size=32)
    raw.setup(), cached.setup()
    assert (
        cached.split_frame("test")["subject"].unique().tolist() == raw.split_frame("test")["subject"].unique().tolist()
    )
    assert len(cached.split_frame("train")) + len(cached.split_frame("test")) == 5 * PER_POSE - 3
    merged = cached.split_frame("test").merge(listing, on="path", suffixes=("", "_listing"))
    assert (merged["label"] == merged["label_listing"]).all() and (merged["pose"] == merged["pose_listing"]).all()
    assert cached.split("test")[0]["image"].shape == (3, 32, 32)


def test_wrong_root_explains_the_layout_and_the_license(tmp_path, tree) -> None:
    for root in (tmp_path / "missing", tmp_path):
        with pytest.raises(DataRootError) as error:
            list_multipie(root)
        message = str(error.value)
        assert "PPP_SS_RR_CCC_II.png" in message and "Carnegie Mellon" in message and "never downloads" in message
    with pytest.raises(DataRootError, match="no image of cameras .* at illumination 12"):
        list_multipie(tree, illumination=12)


def test_class_without_training_images_is_named(tmp_path) -> None:
    make_multipie(tmp_path, {f"{s:03d}": (1,) for s in range(1, 6)}, cameras=("05_1",), illuminations=(7,))
    module = MultiPIEDataModule(str(tmp_path), cameras=["05_1"], image_size=32)
    with pytest.raises(EmptyClassError, match=r"Multi-PIE \(fold 0 of 5, training split\).*'surprise' \(2\)"):
        module.setup("fit")


def test_too_few_subjects_for_the_folds(tmp_path) -> None:
    make_multipie(tmp_path, {"001": (1, 2, 3, 4), "002": (1, 2, 3, 4)}, cameras=("05_1",), illuminations=(7,))
    with pytest.raises(ValueError, match="needs at least 5 subjects, got 2"):
        list_multipie(tmp_path, cameras=["05_1"])
    assert isinstance(list_multipie(tmp_path, cameras=["05_1"], num_folds=2), pd.DataFrame)
