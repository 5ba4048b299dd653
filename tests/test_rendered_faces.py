"""The demo data set: determinism, difficulty, disjoint splits, transfer ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from exprgan.datamodules import EXPRESSIONS, SyntheticFacesDataModule, render
from exprgan.datamodules.base import to_tensor


def test_render_is_deterministic_and_sized() -> None:
    for size in (32, 64, 96):
        image = render(3, 4, 0.8, size=size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert np.array_equal(render(3, 4, 0.8), render(3, 4, 0.8))
    assert not np.array_equal(render(3, 4, 0.8), render(3, 4, 0.8, seed=1))
    assert np.array_equal(render(3, 6, 1.0), render(3, 0, 0.0))  # zero intensity is neutral
    with pytest.raises(ValueError, match="expression"):
        render(0, 7)


def test_identity_varies_more_than_expression() -> None:
    def l1(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(x.astype(np.float32) - y.astype(np.float32)).mean())

    faces = {(i, e): render(i, e, 0.8) for i in range(24) for e in range(7)}
    between_identities = np.mean([l1(faces[i, e], faces[i + 1, e]) for i in range(0, 24, 2) for e in range(7)])
    between_expressions = np.mean(
        [l1(faces[i, e], faces[i, f]) for i in range(24) for e in range(7) for f in range(7) if e != f]
    )
    assert between_identities >= 2 * between_expressions
    assert between_expressions > 0.5  # expressions are visible at all


def test_no_global_colour_cue_for_an_expression() -> None:
    means = np.array([[render(i, e, 1.0).reshape(-1, 3).mean(0) for e in range(7)] for i in range(20)])
    # an open mouth darkens a few pixels; no expression shifts the colours of the face
    spread_over_expressions = np.abs(means - means.mean(1, keepdims=True))
    spread_over_identities = np.abs(means - means.mean(0, keepdims=True)).mean()
    assert spread_over_expressions.max() < 8.0  # of 255, worst identity and expression
    assert spread_over_identities > 10 * spread_over_expressions.mean()


def test_splits_are_disjoint_and_targets_are_ground_truth() -> None:
    data = SyntheticFacesDataModule(image_size=32, train_identities=4, val_identities=2, test_identities=3)
    ids = [set(data.identities(s)) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    data.setup("test")
    test = data.split("test")
    assert len(test) == 3 * len(EXPRESSIONS)
    for index in range(len(test)):
        item = test[index]
        assert int(item["reference_label"]) != int(item["label"])
        reference = int(test.reference[index])
        assert int(test.identities[reference]) != int(item["subject"])
        expected = data.render(
            int(item["subject"]),
            int(item["reference_label"]),
            data.intensity(int(test.identities[reference]), int(item["reference_label"])),
        )
        assert np.allclose(item["target"].numpy(), to_tensor(expected).numpy())
        assert item["image"].min() >= -1 and item["image"].max() <= 1


def test_sizes_must_be_multiples_of_32() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        SyntheticFacesDataModule(image_size=48)


def test_an_evaluation_split_needs_two_identities() -> None:
    data = SyntheticFacesDataModule(image_size=32, train_identities=2, val_identities=1, test_identities=2)
    with pytest.raises(ValueError, match="val split needs at least 2 identities"):
        data.setup("validate")
    assert "reference" not in SyntheticFacesDataModule(image_size=32, train_identities=2).split("train")[0]
