"""``exprgan recognize`` on real photographs (scikit-image's astronaut and coffee), offline, with dlib.

One face row for the astronaut (the mission patch's weak detection is below the default
threshold) with probabilities summing to 1; a photo without a face and an unreadable file get
their rows; folders are searched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from exprgan.cli import cli_main
from exprgan.datamodules.face_renderer import EXPRESSIONS
from exprgan.tools.checkpoints import load_model
from exprgan.tools.faces import DEFAULT_MIN_SCORE, FaceFinder
from exprgan.tools.recognize import COLUMNS, find_images, probability_columns, recognize
from tests.conftest import DEMO_SIZE, fail_in_ci_without_dlib

fail_in_ci_without_dlib()
data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """astronaut.jpg, and a folder with coffee.png, nested/broken.jpg and notes.txt."""
    root = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(root / "astronaut.jpg", quality=95)
    folder = root / "folder"
    (folder / "nested").mkdir(parents=True)
    Image.fromarray(data.coffee()).save(folder / "coffee.png")
    (folder / "nested" / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    (folder / "notes.txt").write_text("not an image: skipped in folders")
    return root


def test_recognize_command_writes_one_row_per_face_and_a_row_per_failure(
    photos: Path, demo_checkpoint: Path, dlib_backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "faces.csv"
    astronaut, folder = photos / "astronaut.jpg", photos / "folder"
    cli_main(
        [
            "recognize",
            str(astronaut),
            str(folder),
            "--ckpt",
            str(demo_checkpoint),
            "--backend",
            "dlib",
            "--out",
            str(out),
        ]
        + ["--no-progress", "--device", "cpu"]
    )
    printed = capsys.readouterr().out
    assert str(out) in printed and "3 files: 1 faces" in printed and "1 without a face" in printed

    table = pd.read_csv(out)
    assert list(table.columns) == [*COLUMNS, *EXPRESSIONS]
    assert table["file"].tolist() == [str(astronaut), str(folder / "coffee.png"), str(folder / "nested" / "broken.jpg")]

    face = table.iloc[0]
    print(f"astronaut: box {face[['box_x1', 'box_y1', 'box_x2', 'box_y2']].astype(float).tolist()}, score {face.score}")
    assert face.face == 0 and pd.isna(face.error)
    # the face (x 175-265, y 76-166 of the 512 x 512 photo), not the mission patch (lower left, weak)
    assert 190 < (face.box_x1 + face.box_x2) / 2 < 250 and 90 < (face.box_y1 + face.box_y2) / 2 < 150
    assert face.score >= DEFAULT_MIN_SCORE["dlib"]
    probabilities = face[list(EXPRESSIONS)].to_numpy(dtype=float)
    assert probabilities.shape == (7,) and (probabilities >= 0).all()
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert face.expression == EXPRESSIONS[int(probabilities.argmax())]
    assert face.confidence == pytest.approx(probabilities.max())

    coffee, broken = table.iloc[1], table.iloc[2]
    assert coffee.face == -1 and coffee.error == "no face found" and pd.isna(coffee.box_x1)
    assert broken.face == -1 and broken.error.startswith("unreadable: not a readable image")
    assert table.iloc[1:][list(EXPRESSIONS)].isna().all().all()


def test_the_threshold_drops_the_mission_patch_and_is_an_option(
    photos: Path, demo_checkpoint: Path, dlib_backend
) -> None:
    model = load_model(demo_checkpoint)
    path = photos / "astronaut.jpg"
    everything = recognize([path], model, FaceFinder(dlib_backend, DEMO_SIZE), batch_size=1, progress=False)
    assert everything["face"].tolist() == [0, 1]
    patch = everything.iloc[1]
    assert patch.score < DEFAULT_MIN_SCORE["dlib"] < everything.iloc[0].score
    assert (patch.box_y1 + patch.box_y2) / 2 > 300  # lower half: the patch on the suit
    np.testing.assert_allclose(everything[list(EXPRESSIONS)].sum(axis=1), 1.0, atol=1e-5)

    strict = recognize([path], model, FaceFinder(dlib_backend, DEMO_SIZE, min_score=5.0), progress=False)
    assert strict["face"].tolist() == [-1]
    assert strict.iloc[0].error == "no face found (2 below the minimum score 5: see --min-score)"


def test_find_images_keeps_named_files_and_walks_folders_sorted(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    for name in ("b/z.PNG", "b/a.jpg", "b/c/m.jpeg", "b/readme.md", "x.dat"):
        (tmp_path / name).write_bytes(b"")
    found = find_images([tmp_path / "x.dat", tmp_path / "b", tmp_path / "b" / "a.jpg", tmp_path / "missing.jpg"])
    relative = [p.relative_to(tmp_path).as_posix() for p in found]
    assert relative == ["x.dat", "b/a.jpg", "b/c/m.jpeg", "b/z.PNG", "missing.jpg"]


def test_probability_columns_avoid_the_fixed_columns() -> None:
    assert probability_columns(["happy", "score", "error"]) == ["happy", "p_score", "p_error"]


def test_recognize_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["recognize", str(empty), "--ckpt", str(tmp_path / "none.ckpt")])
    assert exit_info.value.code == 1 and f"no image files in {empty}" in capsys.readouterr().err

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["recognize", str(tmp_path / "a.png"), "--ckpt", str(tmp_path / "none.ckpt"), "--backend", "dlib"])
    assert exit_info.value.code == 1 and f"no such checkpoint: {tmp_path / 'none.ckpt'}" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:  # another backend's option: a usage error before any loading
        cli_main(["recognize", str(tmp_path), "--ckpt", "x.ckpt", "--backend", "dlib", "--detector-weights", "s3fd"])
    assert exit_info.value.code == 2 and "--detector-weights is an option of the face_alignment backend" in (
        capsys.readouterr().err
    )
