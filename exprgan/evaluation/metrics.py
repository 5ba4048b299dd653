"""Recognition metrics of the paper's Sec. IV-C: accuracy, per-class recall and confusion matrix from
torchmetrics; ours: the per-pose accuracy of Table II, the files a run keeps (:func:`write_results`) and the
figure of Fig. 5-7 (:func:`plot_confusion_matrix`). Accuracies are fractions in ``[0, 1]``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix, multiclass_recall
from torchmetrics.utilities import dim_zero_cat


def abbreviations(class_names: Sequence[str], length: int = 3) -> list[str]:
    """Short axis labels: ``surprise, fear, ... neutral`` -> ``Sur, Fea, ... Neu``.

    The first ``length`` letters, capitalised; names sharing that prefix get longer ones
    until every label is distinct.
    """
    names = [str(n) for n in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class names are not distinct: {names}")
    sizes = [length] * len(names)
    while True:
        short = [n[:k].capitalize() for n, k in zip(names, sizes)]
        if len(set(short)) == len(short):
            return short
        sizes = [k + (short.count(s) > 1) for k, s in zip(sizes, short)]


@dataclass
class ClassificationReport:
    """Everything :func:`write_results` writes; accuracies are fractions in ``[0, 1]``."""

    class_names: list[str]  # the data set's classes, in label order
    accuracy: float  # over all samples
    mean_class_accuracy: float  # mean of per_class over the classes with samples
    per_class: dict[str, float]  # recall of every class (NaN without samples)
    support: dict[str, int]  # samples per true class
    confusion: torch.Tensor  # [C, C] row-normalised (rows: true class)
    confusion_counts: torch.Tensor  # the same in counts
    per_pose: dict[str, float] | None = None  # accuracy per pose, then "mean" over the poses (Table II)
    num_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable types (NaN becomes ``None``)."""

        def clean(values: dict[str, float]) -> dict[str, float | None]:
            return {str(k): None if math.isnan(v) else v for k, v in values.items()}

        return {
            "num_samples": self.num_samples,
            **clean({"accuracy": self.accuracy, "mean_class_accuracy": self.mean_class_accuracy}),
            "per_class": clean(self.per_class),
            "support": dict(self.support),
            "per_pose": None if self.per_pose is None else clean(self.per_pose),
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.tolist(),
            "confusion_counts": self.confusion_counts.tolist(),
        }


def classification_report(
    preds: torch.Tensor,
    target: torch.Tensor,
    class_names: Sequence[str],
    poses: torch.Tensor | None = None,
    pose_names: Sequence[str] | None = None,
) -> ClassificationReport:
    """All recognition metrics of one evaluation.

    Args:
        preds: class indices ``[N]`` or scores (logits, probabilities) ``[N, C]``.
        target: true classes ``[N]``.
        class_names: the ``C`` class names, in label order.
        poses: the pose of every sample ``[N]`` for Table II's per-pose accuracy (Multi-PIE):
            indices into ``pose_names`` (a batch's ``"pose"``; -1 is reported as
            ``"unknown"``), or pose values such as pan angles when ``pose_names`` is None.
        pose_names: the names ``poses`` index (the DataModule's ``poses``, e.g. ``-30 .. +30``).
    """
    names, n = list(class_names), len(class_names)
    preds = preds.argmax(dim=1) if preds.ndim == 2 else preds.reshape(-1)
    preds, target = preds.long().cpu(), target.reshape(-1).long().cpu()
    if len(preds) != len(target) or len(target) == 0:
        raise ValueError(f"{len(preds)} predictions for {len(target)} targets (need as many, at least 1)")
    counts = multiclass_confusion_matrix(preds, target, n)  # [C, C], rows: true class
    recall = multiclass_recall(preds, target, n, average=None, zero_division=float("nan"))
    per_pose = None
    if poses is not None:
        poses = torch.as_tensor(poses).reshape(-1).cpu()
        per_pose = {}
        for pose in poses.unique().tolist():  # sorted; -1 (unknown) first
            mask = poses == pose
            name = str(pose) if pose_names is None else pose_names[pose] if pose >= 0 else "unknown"
            per_pose[name] = float(multiclass_accuracy(preds[mask], target[mask], n, average="micro"))
        per_pose["mean"] = float(np.mean(list(per_pose.values())))  # unweighted over poses, as Table II
    return ClassificationReport(
        class_names=names,
        accuracy=float(multiclass_accuracy(preds, target, n, average="micro")),
        mean_class_accuracy=float(recall.nanmean()),
        per_class={name: float(r) for name, r in zip(names, recall)},
        support={name: int(s) for name, s in zip(names, counts.sum(dim=1))},
        confusion=counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1),
        confusion_counts=counts,
        per_pose=per_pose,
        num_samples=len(target),
    )


class ExpressionMetrics(Metric):
    """Gathers predictions over batches (and devices); :meth:`compute` gives a :class:`ClassificationReport`.

    Args:
        class_names: the data set's classes, in label order.
        pose_names: the poses a batch's ``"pose"`` indexes (the DataModule's ``poses``); given,
            ``update`` needs the poses and the report has the per-pose accuracy.
    """

    full_state_update = False

    def __init__(self, class_names: Sequence[str], pose_names: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.class_names = list(class_names)
        self.pose_names = None if pose_names is None else [str(p) for p in pose_names]
        self.with_poses = pose_names is not None  # update takes the poses
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("poses", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor, poses: torch.Tensor | None = None) -> None:
        """Add a batch: scores ``[B, C]`` or classes ``[B]``, true classes ``[B]``, pose indices ``[B]``."""
        self.preds.append(preds.argmax(dim=1) if preds.ndim == 2 else preds.reshape(-1).long())
        self.target.append(target.reshape(-1).long())
        if self.with_poses:
            if poses is None:
                raise ValueError("ExpressionMetrics(pose_names=...).update needs the poses of the batch")
            self.poses.append(torch.as_tensor(poses, device=target.device).reshape(-1).long())

    def compute(self) -> ClassificationReport:
        poses = dim_zero_cat(self.poses) if self.with_poses else None
        return classification_report(
            dim_zero_cat(self.preds), dim_zero_cat(self.target), self.class_names, poses, self.pose_names
        )


def write_results(
    report: ClassificationReport, directory: str | os.PathLike[str], prefix: str = "test"
) -> dict[str, Path]:
    """Write ``report`` as JSON (everything) and CSV tables; returns ``{kind: path}``.

    Files: ``<prefix>_results.json``, ``<prefix>_per_class.csv`` (class, abbreviation,
    accuracy, support; a last ``mean`` row), ``<prefix>_confusion.csv`` (row-normalised,
    true classes as rows) and, with poses, ``<prefix>_per_pose.csv`` (pose, accuracy; a
    last ``mean`` row). ``directory`` is created if missing.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    kinds = {"json": "results.json", "per_class": "per_class.csv", "confusion": "confusion.csv"}
    paths = {kind: out / f"{prefix}_{name}" for kind, name in kinds.items()}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    names = report.class_names
    per_class = {
        "class": names + ["mean"],
        "abbreviation": abbreviations(names) + [""],
        "accuracy": [report.per_class[n] for n in names] + [report.mean_class_accuracy],
        "support": [report.support[n] for n in names] + [report.num_samples],
    }
    pd.DataFrame(per_class).to_csv(paths["per_class"], index=False)
    confusion = pd.DataFrame(report.confusion.numpy(), index=names, columns=names)
    confusion.index.name = "true \\ predicted"
    confusion.to_csv(paths["confusion"])
    if report.per_pose is not None:
        paths["per_pose"] = out / f"{prefix}_per_pose.csv"
        per_pose = pd.DataFrame({"pose": list(report.per_pose), "accuracy": list(report.per_pose.values())})
        per_pose.to_csv(paths["per_pose"], index=False)
    return paths


def plot_confusion_matrix(
    confusion: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    abbreviate: bool = True,
    size_inches: float = 5.0,
    dpi: int = 100,
) -> Figure:
    """The paper's Fig. 5-7: the row-normalised confusion matrix in percent, torchmetrics' plot.

    Drawn on a stand-alone :class:`~matplotlib.figure.Figure` with the Agg canvas (no pyplot,
    no display needed); cells hold percentages with one decimal.

    Args:
        confusion: ``[C, C]``, rows = true class; counts are row-normalised here.
        class_names: axis labels, in label order.
        title: above the matrix, e.g. ``"RAF-DB, mean accuracy 89.01%"``.
        abbreviate: label the axes with :func:`abbreviations` (``Sur Fea ...``).
        size_inches: side of the square figure.
        dpi: pixels per inch (the PNG is ``size_inches * dpi`` pixels wide).
    """
    matrix = torch.as_tensor(confusion, dtype=torch.float64).cpu()
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"confusion must be [C, C] with C = {n}, got {tuple(matrix.shape)}")
    percent = (100 * matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1e-12)).round(decimals=1)
    labels = abbreviations(class_names) if abbreviate else [str(name) for name in class_names]
    fig = Figure(figsize=(size_inches, size_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    with warnings.catch_warnings():  # matplotlib on the tensor torchmetrics passes: numpy 2's copy= deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        MulticlassConfusionMatrix(n).plot(percent, ax=ax, labels=labels, cmap="Blues")
    for text in ax.texts:  # torchmetrics writes 15 pt numbers: fit them to the cells
        text.set_fontsize(max(5.0, min(10.0, 60.0 / n)))
    ax.set_xlabel("Predicted", fontsize=10)
    ax.set_ylabel("True", fontsize=10)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def figure_to_tensor(fig: Figure) -> torch.Tensor:
    """A drawn figure as ``[3, H, W]`` in ``[0, 1]``, the image :func:`exprgan.loggers.log_image` logs."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # [H, W, 4], uint8
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255
