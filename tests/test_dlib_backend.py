"""The dlib backend on real photographs (scikit-image's astronaut and coffee), offline.

Needs ``pip install dlib-bin`` and ``apt-get install libdlib-data`` (``.ci/run`` installs both).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from exprgan.cli import cli_main
from exprgan.preprocessing import BackendSpec, BackendWeightsError, CanonicalFace, key_points, preprocess
from exprgan.preprocessing.align import alignment_matrix, transform_points
from exprgan.preprocessing.dlib_backend import DlibBackend
from tests.conftest import fail_in_ci_without_dlib

fail_in_ci_without_dlib()
pytest.importorskip("dlib", reason="the dlib backend needs: pip install dlib-bin")
data = pytest.importorskip("skimage.data")
SIZE = 256
EYE_TOLERANCE_PX = 3.0


def _centre(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_astronaut_keeps_the_real_face_aligned_and_coffee_has_none(tmp_path, dlib_backend: DlibBackend) -> None:
    root, out = tmp_path / "photos", tmp_path / "cache"
    root.mkdir()
    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(root / "astronaut.png")
    Image.fromarray(data.coffee()).save(root / "coffee.png")
    listing = pd.DataFrame({"path": ["astronaut.png", "coffee.png"], "label": [3, 6]})
    summary = preprocess(listing, root, out, BackendSpec("dlib"), size=SIZE, progress=False)
    assert (summary.crops, summary.failures) == (1, 1)

    index = pd.read_csv(out / "index.csv")
    row = index.iloc[0]
    assert row.path == "astronaut.png"
    # the face (around x 175-265, y 76-166 of the 512 x 512 photo), not the mission patch (lower left)
    x, y = _centre(json.loads(row.box))
    assert 190 < x < 250 and 90 < y < 150
    others = json.loads(row.other_faces)
    assert row.n_faces == len(others) + 1 >= 2  # the patch fires too: recorded, not kept
    assert all(other["score"] < row.score for other in others)
    assert any(_centre(other["box"])[1] > 300 for other in others)

    # re-detecting landmarks on the crop: the eye centres sit on their canonical positions
    crop = np.asarray(Image.open(out / row.crop).convert("RGB"))
    assert crop.shape == (SIZE, SIZE, 3)
    found = dlib_backend.detect(crop)
    assert len(found) == 1
    canonical = CanonicalFace().points(SIZE)
    eye_errors = np.linalg.norm(key_points(found[0].landmarks)[:2] - canonical[:2], axis=1)
    print(f"eye-centre errors re-detected on the crop: {eye_errors.round(2).tolist()} px")
    assert (eye_errors < EYE_TOLERANCE_PX).all(), eye_errors

    # the landmarks of the original detection, transformed: the eyes set the scale and land exactly
    original = dlib_backend.detect(astronaut)[0]
    placed = transform_points(alignment_matrix(original.landmarks, SIZE), key_points(original.landmarks))
    np.testing.assert_allclose(placed[:2], canonical[:2], atol=1e-6)

    failures = pd.read_csv(out / "failures.csv")
    assert failures[["path", "label", "reason"]].values.tolist() == [["coffee.png", 6, "no face found"]]


def test_a_missing_predictor_is_a_clear_error(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere" / "shape_predictor_68_face_landmarks.dat"
    with pytest.raises(BackendWeightsError, match="libdlib-data") as error:
        DlibBackend(predictor_path=missing)
    assert str(missing) in str(error.value) and "--predictor" in str(error.value)
    listing = tmp_path / "listing.csv"
    listing.write_text("path\na.png\n")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            [
                "preprocess",
                "--listing",
                str(listing),
                "--root",
                str(tmp_path),
                "--out",
                str(tmp_path / "c"),
                "--backend",
                "dlib",
                "--predictor",
                str(missing),
            ]
        )
    assert exit_info.value.code == 1 and str(missing) in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing started
