"""MMI: labelled frontal sessions, frame choice from videos and frame folders, 6/7 classes, folds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exprgan.cache import read_image
from exprgan.datamodules import (
    INDEX_COLUMNS,
    LISTINGS,
    BadImageError,
    DataRootError,
    LabelFileError,
    MMIDataModule,
    list_mmi,
)
from tests.data_trees import MMISession, flat_image, frame_value, make_mmi

EMOTIONS = {1: "anger", 2: "disgust", 3: "fear", 4: "happiness", 5: "sadness", 6: "surprise"}
# 6 subjects x 3 labelled sessions (every emotion with 3 subjects, so every fold trains on all
# classes), videos and frame folders alternating, 8..12 frames; plus an AU-only and a profile session
LABELLED = [
    MMISession(
        id=str(10 * subject + k),
        subject=subject,
        emotion=(subject + k - 1) % 6 + 1,
        frames=8 + (subject + k) % 5,
        video=(subject + k) % 2 == 0,
        take=k + 1,
    )
    for subject in range(1, 7)
    for k in range(3)
]
OTHERS = [
    MMISession(id="900", subject=1, emotion=None, take=7),  # AU-only
    MMISession(id="901", subject=2, emotion=4, view=1, take=8, video=False),  # profile view
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_mmi(tmp_path_factory.mktemp("mmi"), LABELLED + OTHERS)


def peaks(frames: int) -> list[int]:
    return [frames // 2 - 1, frames // 2, frames // 2 + 1]


def test_listing_takes_first_frame_and_three_around_the_middle(tree) -> None:
    frame = LISTINGS["mmi"](tree)
    assert list(frame.columns[: len(INDEX_COLUMNS)]) == list(INDEX_COLUMNS)
    assert len(frame) == 4 * len(LABELLED) and set(frame["sequence"]) == {s.id for s in LABELLED}
    for session in LABELLED:
        rows = frame[frame["sequence"] == session.id]
        assert rows["frame_index"].tolist() == [0, *peaks(session.frames)]
        assert rows["label_name"].tolist() == ["neutral"] + [EMOTIONS[session.emotion]] * 3
        assert (rows["subject"] == f"S{session.subject:03d}").all()
        media = f"S{session.subject:03d}-{session.take:03d}"
        if session.video:  # one video, frames by index
            assert (rows["path"] == f"Sessions/{session.id}/{media}.avi").all()
            assert rows["frame"].tolist() == [0, *peaks(session.frames)]
        else:  # a folder of frames, sorted naturally (-2.png before -10.png)
            names = [f"Sessions/{session.id}/{media}/{media}-{k + 1}.png" for k in [0, *peaks(session.frames)]]
            assert rows["path"].tolist() == names and (rows["frame"] == -1).all()


@pytest.mark.parametrize("video", [True, False])
def test_chosen_frames_show_the_right_pictures(tree, video) -> None:
    module = MMIDataModule(str(tree), num_classes=7, fold=0, image_size=32, augmentation=None)
    module.setup("test")
    for split in ("train", "test"):
        rows, images = module.split_frame(split), module.split(split)
        for k in range(len(rows)):
            if (rows["frame"][k] >= 0) != video:
                continue
            grey = (images[k]["image"].mean() + 1) * 127.5
            assert abs(grey - frame_value(int(rows["frame_index"][k]))) < 4, (rows["path"][k], rows["frame_index"][k])


def test_video_frames_read_by_index(tree) -> None:
    session = next(s for s in LABELLED if s.video)
    video = tree / "Sessions" / session.id / f"S{session.subject:03d}-{session.take:03d}.avi"
    for k in (0, 3, session.frames - 1):
        assert abs(int(read_image(video, k).mean()) - frame_value(k)) < 4
    with pytest.raises(BadImageError, match=re.escape(str(video))):
        read_image(video, session.frames)


def test_six_and_seven_classes(tree) -> None:
    six = MMIDataModule(str(tree), num_classes=6, image_size=32)
    seven = MMIDataModule(str(tree), num_classes=7, image_size=32)
    six.setup(), seven.setup()
    assert six.num_expressions == 6 and six.class_names == [
        "surprise",
        "fear",
        "disgust",
        "happiness",
        "sadness",
        "anger",
    ]
    assert seven.num_expressions == 7 and seven.class_names[-1] == "neutral"
    rows6 = sum(len(six.split_frame(s)) for s in ("train", "test"))
    rows7 = sum(len(seven.split_frame(s)) for s in ("train", "test"))
    assert rows6 == 3 * len(LABELLED) and rows7 == 4 * len(LABELLED)
    for module in (six, seven):
        rows = module.split_frame("train")
        assert (rows["label_name"] == [module.class_names[k] for k in rows["label"]]).all()
    assert "neutral" not in set(six.split_frame("train")["label_name"])
    # 6- and 7-class runs test on the same subjects
    assert set(six.split_frame("test")["subject"]) == set(seven.split_frame("test")["subject"])


def test_folds_are_subject_disjoint(tree) -> None:
    frame = list_mmi(tree)
    assert (frame.groupby("subject")["fold"].nunique() == 1).all() and sorted(frame["fold"].unique()) == [0, 1, 2, 3, 4]
    for fold in range(5):
        module = MMIDataModule(str(tree), fold=fold, image_size=32, augmentation=None)
        module.setup("fit")
        train, test = module.split_frame("train"), module.split_frame("test")
        assert not set(train["subject"]) & set(test["subject"])
        assert len(train) + len(test) == 3 * len(LABELLED) and (test["fold"] == fold).all()
    with pytest.raises(ValueError, match="fold must be in 0..4"):
        MMIDataModule(str(tree), fold=5)


def test_cache_serves_six_classes_from_a_seven_class_index(tmp_path, tree) -> None:
    listing = list_mmi(tree)
    cache = tmp_path / "cache"
    (cache / "crops").mkdir(parents=True)
    listing["crop"] = [f"crops/{k}.png" for k in range(len(listing))]
    for crop in listing["crop"]:
        flat_image(90, (64, 64)).save(cache / crop)
    listing.to_csv(cache / "index.csv", index=False)
    cached = MMIDataModule("/nowhere", cache=str(cache), num_classes=6, fold=3, image_size=32)
    raw = MMIDataModule(str(tree), num_classes=6, fold=3, image_size=32)
    cached.setup(), raw.setup()
    for split in ("train", "test"):
        assert cached.split_frame(split)[["path", "frame", "label"]].equals(
            raw.split_frame(split)[["path", "frame", "label"]]
        )


def test_short_sequences_and_unreadable_videos(tmp_path) -> None:
    sessions = [MMISession(id=str(k), subject=k, emotion=k % 6 + 1) for k in range(1, 6)]
    sessions += [MMISession(id="6", subject=6, emotion=1, frames=3), MMISession(id="7", subject=7, emotion=2)]
    make_mmi(tmp_path, sessions)
    broken = tmp_path / "Sessions" / "7" / "S007-001.avi"
    broken.write_bytes(b"RIFF not really a video")
    with pytest.raises(BadImageError, match=re.escape(str(broken))):
        list_mmi(tmp_path, on_bad_image="error")
    with pytest.raises(BadImageError, match=re.escape(str(broken))):
        MMIDataModule(str(tmp_path), image_size=32).setup()  # the DataModule's default: error
    # the listing's default (what `exprgan preprocess` reads): leave the session out and warn
    with pytest.warns(UserWarning, match=r"left out 2 sessions \(1 with fewer than 4 frames, 1 with unreadable video"):
        frame = list_mmi(tmp_path)
    assert set(frame["sequence"]) == {"1", "2", "3", "4", "5"}


def test_bad_annotations_name_file_and_line(tmp_path) -> None:
    make_mmi(tmp_path, [MMISession(id="1", subject=1, emotion=6)])
    annotation = tmp_path / "Sessions" / "1" / "S001-001.xml"
    annotation.write_text(annotation.read_text().replace('Value="6"', 'Value="9"'))
    with pytest.raises(LabelFileError, match=re.escape(f"{annotation}:4: unknown Emotion value '9'")):
        list_mmi(tmp_path)
    session = tmp_path / "Sessions" / "1" / "session.xml"
    session.write_text('<?xml version="1.0"?>\n<session>\n  <track view="0">\n</session>\n')
    with pytest.raises(LabelFileError, match=re.escape(f"{session}:4: malformed XML")):
        list_mmi(tmp_path)


def test_wrong_root_explains_the_layout_and_registration(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "missing", tmp_path / "empty"):
        with pytest.raises(DataRootError) as error:
            MMIDataModule(str(root), image_size=32).setup()
        message = str(error.value)
        assert "Sessions/<id>/session.xml" in message and 'Metatag Name="Emotion"' in message
        assert "mmifacedb.eu" in message and "never downloads" in message
    make_mmi(tmp_path / "au-only", [MMISession(id="1", subject=1, emotion=None)])
    with pytest.raises(DataRootError, match="no session with an Emotion metatag"):
        list_mmi(tmp_path / "au-only")
