"""Recognition metrics: known answers from hand-built predictions, files and the confusion-matrix PNG."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from PIL import Image

from exprgan.evaluation.metrics import (
    ExpressionMetrics,
    abbreviations,
    classification_report,
    figure_to_tensor,
    plot_confusion_matrix,
    write_results,
)

RAF_DB = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
MULTI_PIE = ("neutral", "smile", "surprise", "squint", "disgust", "scream")

# 10 samples, 3 classes, 3 poses. Correct: 1 1 0 0 1 1 0 1 1 1 (7 of 10).
TARGET = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])
POSES = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])  # indices into POSE_NAMES
POSE_NAMES = ("-15", "0", "+15")
NAMES = ("happy", "sad", "angry")
# -15: samples 0 3 6 9 -> 1 0 0 1; 0: samples 1 4 7 -> 1 1 1; +15: samples 2 5 8 -> 0 1 1
PER_POSE = {"-15": 0.5, "0": 1.0, "+15": 2 / 3, "mean": (0.5 + 1.0 + 2 / 3) / 3}  # Table II's mean over poses


def test_known_answers() -> None:
    report = classification_report(PREDS, TARGET, NAMES)
    assert report.accuracy == pytest.approx(0.7)
    # class 0: samples 0-3, 2 right; class 1: 4-6, 2 right; class 2: 7-9, 3 right
    assert report.per_class == pytest.approx({"happy": 0.5, "sad": 2 / 3, "angry": 1.0})
    assert report.mean_class_accuracy == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert report.confusion_counts.tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]  # rows: true, columns: predicted
    expected = torch.tensor([[0.5, 0.25, 0.25], [1 / 3, 2 / 3, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(report.confusion, expected)
    assert report.support == {"happy": 4, "sad": 3, "angry": 3} and report.num_samples == 10 and report.per_pose is None
    scores = torch.nn.functional.one_hot(PREDS, 3).float() * 5 - 1  # logits with the same argmax
    assert classification_report(scores, TARGET, NAMES).per_class == report.per_class


def test_per_pose_known_answer() -> None:
    report = classification_report(PREDS, TARGET, NAMES, poses=POSES, pose_names=POSE_NAMES)
    assert report.per_pose == pytest.approx(PER_POSE) and list(report.per_pose) == [*POSE_NAMES, "mean"]
    unknown = classification_report(PREDS, TARGET, NAMES, poses=torch.tensor([*POSES[:9], -1]), pose_names=POSE_NAMES)
    assert list(unknown.per_pose) == ["unknown", *POSE_NAMES, "mean"] and unknown.per_pose["unknown"] == 1.0
    angles = classification_report(PREDS, TARGET, NAMES, poses=torch.tensor([-15, 0, 15])[POSES])  # raw values
    assert angles.per_pose == pytest.approx({"-15": 0.5, "0": 1.0, "15": 2 / 3, "mean": PER_POSE["mean"]})


def test_class_without_samples_is_nan_not_zero() -> None:
    report = classification_report(PREDS, TARGET, (*NAMES, "fear"))
    assert math.isnan(report.per_class["fear"]) and report.support["fear"] == 0
    assert report.mean_class_accuracy == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert report.confusion.sum(dim=1).tolist() == pytest.approx([1, 1, 1, 0])
    assert report.to_dict()["per_class"]["fear"] is None  # JSON null
    with pytest.raises(ValueError, match="10 predictions for 9 targets"):
        classification_report(PREDS, TARGET[:9], NAMES)


def test_metric_class_accumulates_batches() -> None:
    metric = ExpressionMetrics(NAMES, pose_names=POSE_NAMES)
    assert metric.with_poses and not ExpressionMetrics(NAMES).with_poses
    metric.update(PREDS[:4], TARGET[:4], POSES[:4])
    metric.update(torch.nn.functional.one_hot(PREDS[4:], 3).float(), TARGET[4:], POSES[4:])
    report = metric.compute()
    assert report.accuracy == pytest.approx(0.7) and report.num_samples == 10
    assert report.per_class == pytest.approx({"happy": 0.5, "sad": 2 / 3, "angry": 1.0})
    assert report.per_pose == pytest.approx(PER_POSE)
    with pytest.raises(ValueError, match="poses"):
        metric.update(PREDS, TARGET)
    metric.reset()
    metric.update(PREDS[:4], TARGET[:4], POSES[:4])
    assert metric.compute().num_samples == 4


def test_abbreviations() -> None:
    assert " ".join(abbreviations(RAF_DB)) == "Sur Fea Dis Hap Sad Ang Neu"
    assert abbreviations(MULTI_PIE) == ["Neu", "Smi", "Sur", "Squ", "Dis", "Scr"]
    assert abbreviations(["happy", "happiness", "sad"]) == ["Happy", "Happi", "Sad"]  # clashes grow
    assert abbreviations(MULTI_PIE, length=2) == ["Ne", "Sm", "Su", "Sq", "Di", "Sc"]  # Fig. 5, upper-cased


def test_write_results(tmp_path) -> None:
    report = classification_report(PREDS, TARGET, NAMES, poses=POSES, pose_names=POSE_NAMES)
    paths = write_results(report, tmp_path / "out", prefix="test")
    assert set(paths) == {"json", "per_class", "confusion", "per_pose"}
    assert paths["json"].name == "test_results.json"
    data = json.loads(paths["json"].read_text())
    assert data["accuracy"] == pytest.approx(0.7) and data["per_pose"]["-15"] == pytest.approx(0.5)
    assert data["confusion_counts"] == [[2, 1, 1], [1, 2, 0], [0, 0, 3]] and data["class_names"] == list(NAMES)

    per_class = pd.read_csv(paths["per_class"])
    assert per_class["class"].tolist() == [*NAMES, "mean"]
    assert per_class["accuracy"].tolist() == pytest.approx([0.5, 2 / 3, 1.0, (0.5 + 2 / 3 + 1) / 3])
    assert per_class["support"].tolist() == [4, 3, 3, 10]
    per_pose = pd.read_csv(paths["per_pose"], dtype={"pose": str})
    assert per_pose["pose"].tolist() == [*POSE_NAMES, "mean"]
    confusion = pd.read_csv(paths["confusion"], index_col=0)
    assert confusion.to_numpy().sum(axis=1) == pytest.approx([1, 1, 1]) and list(confusion.columns) == list(NAMES)
    assert "per_pose" not in write_results(classification_report(PREDS, TARGET, NAMES), tmp_path / "no_poses")


def test_confusion_matrix_figure(tmp_path) -> None:
    counts = torch.randint(0, 20, (7, 7)) + torch.eye(7, dtype=torch.long) * 100
    fig = plot_confusion_matrix(counts, RAF_DB, title="RAF-DB")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 49 and all(0 <= float(t) <= 100 for t in texts)  # row percentages
    row = counts[0].double() / counts[0].sum() * 100
    assert float(texts[0]) == pytest.approx(float(row[0]), abs=0.05)  # rows: true class, one decimal
    assert float(texts[1]) == pytest.approx(float(row[1]), abs=0.05)  # columns: predicted class
    assert [t.get_text() for t in ax.get_xticklabels()] == abbreviations(RAF_DB)
    assert [t.get_text() for t in ax.get_yticklabels()] == abbreviations(RAF_DB)
    assert ax.get_title() == "RAF-DB"
    fig.savefig(tmp_path / "confusion.png")
    with Image.open(tmp_path / "confusion.png") as image:
        assert image.format == "PNG" and image.size == (500, 500)  # 5 in at 100 dpi
    pixels = figure_to_tensor(fig)
    assert pixels.shape == (3, 500, 500) and 0 <= pixels.min() and pixels.max() <= 1
    with pytest.raises(ValueError, match="C = 6"):
        plot_confusion_matrix(counts, MULTI_PIE)
