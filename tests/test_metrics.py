"""Recognition metrics: known answers from fixed predictions, files and the confusion-matrix PNG."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from PIL import Image

from exprgan.evaluation import (
    ExpressionMetrics,
    abbreviations,
    accuracy,
    classification_report,
    confusion_matrix,
    figure_to_tensor,
    per_class_accuracy,
    per_pose_accuracy,
    plot_confusion_matrix,
    save_confusion_matrix,
    write_results,
)

RAF_DB = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
MULTI_PIE = ("neutral", "smile", "surprise", "squint", "disgust", "scream")

# 10 samples, 3 classes, 3 poses. Correct: 1 1 0 0 1 1 0 1 1 1 (7 of 10).
TARGET = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])
POSES = torch.tensor([-15, 0, 15, -15, 0, 15, -15, 0, 15, -15])
NAMES = ("happy", "sad", "angry")


def test_accuracy_and_per_class_known_answer() -> None:
    assert accuracy(PREDS, TARGET) == pytest.approx(0.7)
    # class 0: samples 0-3, 2 right; class 1: 4-6, 2 right; class 2: 7-9, 3 right
    assert per_class_accuracy(PREDS, TARGET, 3).tolist() == pytest.approx([0.5, 2 / 3, 1.0])


def test_per_pose_accuracy_known_answer() -> None:
    # -15: samples 0 3 6 9 -> 1 0 0 1; 0: samples 1 4 7 -> 1 1 1; 15: samples 2 5 8 -> 0 1 1
    table = per_pose_accuracy(PREDS, TARGET, POSES)
    assert list(table) == [-15, 0, 15, "mean"]
    assert table[-15] == pytest.approx(0.5)
    assert table[0] == pytest.approx(1.0)
    assert table[15] == pytest.approx(2 / 3)
    assert table["mean"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)  # Table II's "Average": mean over poses


def test_per_pose_accepts_camera_names_and_scores() -> None:
    scores = torch.nn.functional.one_hot(PREDS, 3).float() * 5 - 1  # logits with the same argmax
    cameras = [{-15: "13_0", 0: "05_1", 15: "04_1"}[int(p)] for p in POSES]
    table = per_pose_accuracy(scores, TARGET, cameras)
    assert table["13_0"] == pytest.approx(0.5) and table["05_1"] == pytest.approx(1.0)


def test_pose_indices_get_the_datamodules_names() -> None:
    # a batch's "pose" indexes the DataModule's ``poses``; -1 = unknown
    indices = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, -1])
    report = classification_report(PREDS, TARGET, NAMES, poses=indices, pose_names=["-15", "0", "+15"])
    assert list(report.per_pose) == ["unknown", "-15", "0", "+15", "mean"]
    assert report.per_pose["-15"] == pytest.approx(1 / 3) and report.per_pose["unknown"] == 1.0


def test_confusion_matrix_rows_sum_to_one() -> None:
    normalised = confusion_matrix(PREDS, TARGET, 3)
    expected = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 2 / 3, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(normalised, expected)
    torch.testing.assert_close(normalised.sum(dim=1), torch.ones(3, dtype=torch.float64))
    counts = confusion_matrix(PREDS, TARGET, 3, normalize=False)
    assert counts.tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]


def test_class_without_samples_is_nan_not_zero() -> None:
    recall = per_class_accuracy(PREDS, TARGET, 4)
    assert math.isnan(recall[3]) and recall[:3].tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    rows = confusion_matrix(PREDS, TARGET, 4).sum(dim=1)
    assert rows.tolist() == pytest.approx([1, 1, 1, 0])
    report = classification_report(PREDS, TARGET, (*NAMES, "fear"))
    assert report.mean_class_accuracy == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_metric_class_accumulates_batches() -> None:
    metric = ExpressionMetrics(NAMES, with_poses=True)
    metric.update(PREDS[:4], TARGET[:4], POSES[:4])
    metric.update(torch.nn.functional.one_hot(PREDS[4:], 3).float(), TARGET[4:], POSES[4:])
    report = metric.compute()
    assert report.accuracy == pytest.approx(0.7)
    assert report.per_class == pytest.approx({"happy": 0.5, "sad": 2 / 3, "angry": 1.0})
    assert report.per_pose == pytest.approx({-15: 0.5, 0: 1.0, 15: 2 / 3, "mean": (0.5 + 1 + 2 / 3) / 3})
    assert report.support == {"happy": 4, "sad": 3, "angry": 3} and report.num_samples == 10
    with pytest.raises(ValueError, match="poses"):
        metric.update(PREDS, TARGET)


def test_abbreviations() -> None:
    assert " ".join(abbreviations(RAF_DB)) == "Sur Fea Dis Hap Sad Ang Neu"
    assert abbreviations(MULTI_PIE) == ["Neu", "Smi", "Sur", "Squ", "Dis", "Scr"]
    assert abbreviations(["happy", "happiness", "sad"]) == ["Happy", "Happi", "Sad"]  # clashes grow
    assert abbreviations(MULTI_PIE, length=2) == ["Ne", "Sm", "Su", "Sq", "Di", "Sc"]  # Fig. 5, upper-cased


def test_write_results(tmp_path) -> None:
    report = classification_report(PREDS, TARGET, NAMES, poses=POSES)
    paths = write_results(report, tmp_path / "out", prefix="test")
    assert set(paths) == {"json", "per_class", "confusion", "per_pose"}
    data = json.loads(paths["json"].read_text())
    assert data["accuracy"] == pytest.approx(0.7) and data["per_pose"]["-15"] == pytest.approx(0.5)
    assert data["confusion_counts"] == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]

    per_class = pd.read_csv(paths["per_class"])
    assert per_class["class"].tolist() == [*NAMES, "mean"]
    assert per_class["accuracy"].tolist() == pytest.approx([0.5, 2 / 3, 1.0, (0.5 + 2 / 3 + 1) / 3])
    per_pose = pd.read_csv(paths["per_pose"])
    assert per_pose["pose"].astype(str).tolist() == ["-15", "0", "15", "mean"]
    confusion = pd.read_csv(paths["confusion"], index_col=0)
    assert confusion.to_numpy().sum(axis=1) == pytest.approx([1, 1, 1])
    assert list(confusion.columns) == list(NAMES)


def test_confusion_matrix_png(tmp_path) -> None:
    counts = torch.randint(0, 20, (7, 7)) + torch.eye(7, dtype=torch.long) * 100
    path = save_confusion_matrix(counts, RAF_DB, tmp_path / "figs" / "confusion.png", title="RAF-DB")
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (500, 500)  # 5 in at 100 dpi

    fig = plot_confusion_matrix(counts, RAF_DB)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 49 and all(0 <= float(t) <= 100 for t in texts)  # row percentages
    row = counts[0].double() / counts[0].sum() * 100
    assert texts[0] == f"{row[0]:.1f}"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == abbreviations(RAF_DB)
    pixels = figure_to_tensor(fig)
    assert pixels.shape == (3, 500, 500) and 0 <= pixels.min() and pixels.max() <= 1
