"""Recognition metrics of the paper's Sec. IV-C: accuracy, per-class, per-pose, confusion matrix.

A pure functional core (tensors in, tensors or floats out), :class:`ExpressionMetrics`
that only accumulates predictions over batches (torchmetrics ``add_state``), and the
outputs a run keeps: CSV and JSON files (:func:`write_results`) and a confusion-matrix
figure like the paper's Fig. 5-7 (:func:`plot_confusion_matrix`).

Accuracies are fractions in ``[0, 1]``; the figure shows percentages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchmetrics.utilities import dim_zero_cat

# --- functional core ----------------------------------------------------------------------


def _labels(preds: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``[N]`` from class indices ``[N]`` or scores (logits/probabilities) ``[N, C]``."""
    if preds.ndim == 2:
        return preds.argmax(dim=1)
    if preds.ndim != 1:
        raise ValueError(f"preds must be [N] class indices or [N, C] scores, got shape {tuple(preds.shape)}")
    return preds.long()


def _check(preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    labels = _labels(preds)
    target = target.reshape(-1).long().to(labels.device)
    if len(labels) != len(target):
        raise ValueError(f"{len(labels)} predictions for {len(target)} targets")
    return labels, target


def accuracy(preds: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of correct predictions over all samples (the paper's "average accuracy").

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
    """
    labels, target = _check(preds, target)
    if len(target) == 0:
        return float("nan")
    return float((labels == target).float().mean())


def confusion_matrix(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, normalize: bool = True
) -> torch.Tensor:
    """Confusion matrix ``[C, C]`` (rows: true class, columns: predicted class), torchmetrics'.

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
        num_classes: ``C``.
        normalize: divide every row by its number of samples (rows sum to 1; a class
            without samples keeps a row of zeros). Off: counts.
    """
    labels, target = _check(preds, target)
    counts = multiclass_confusion_matrix(labels, target, num_classes).cpu()  # [C, C], int64
    if not normalize:
        return counts
    support = counts.sum(dim=1, keepdim=True)
    return counts.double() / support.clamp(min=1)


def per_class_accuracy(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Recall of every class ``[C]`` (the diagonal of the row-normalised confusion matrix).

    Classes without samples get NaN, not 0.

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
        num_classes: ``C``.
    """
    counts = confusion_matrix(preds, target, num_classes, normalize=False)
    support = counts.sum(dim=1)
    recall = counts.diagonal().double() / support.clamp(min=1)
    return torch.where(support > 0, recall, torch.full_like(recall, float("nan")))


def per_group_accuracy(
    preds: torch.Tensor, target: torch.Tensor, groups: Sequence[Hashable] | torch.Tensor
) -> dict[Hashable, float]:
    """Accuracy within every value of ``groups`` (e.g. the pose of each sample), sorted by value.

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
        groups: one value per sample (pose angles such as -30 .. 30, or camera names).
    """
    labels, target = _check(preds, target)
    values = groups.reshape(-1).tolist() if isinstance(groups, torch.Tensor) else list(groups)
    if len(values) != len(target):
        raise ValueError(f"{len(values)} group values for {len(target)} samples")
    correct = (labels == target).cpu().numpy()
    values_array = np.asarray(values, dtype=object)
    return {value: float(correct[values_array == value].mean()) for value in sorted(set(values))}


def per_pose_accuracy(
    preds: torch.Tensor, target: torch.Tensor, poses: Sequence[Hashable] | torch.Tensor
) -> dict[Hashable, float]:
    """Table II's columns: the accuracy at every pose, plus ``"mean"`` over the poses (its last column).

    The mean is the unweighted mean of the per-pose accuracies, as in Table II (equal to the
    overall accuracy when every pose has as many samples, as on Multi-PIE).

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
        poses: the pose of every sample, e.g. its pan angle in degrees.
    """
    table: dict[Hashable, float] = dict(per_group_accuracy(preds, target, poses))
    table["mean"] = float(np.mean(list(table.values()))) if table else float("nan")
    return table


def abbreviations(class_names: Sequence[str], length: int = 3) -> list[str]:
    """Short axis labels: ``surprise, fear, ... neutral`` -> ``Sur, Fea, ... Neu``.

    The first ``length`` letters, capitalised; names sharing that prefix get longer ones
    until every label is distinct.

    Args:
        class_names: the data set's class names.
        length: letters per label.
    """
    names = [str(n) for n in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class names are not distinct: {names}")
    sizes = [length] * len(names)
    while True:
        short = [n[:k].capitalize() for n, k in zip(names, sizes)]
        clashes = [i for i, s in enumerate(short) if short.count(s) > 1]
        if not clashes:
            return short
        for i in clashes:
            sizes[i] += 1


# --- the accumulated result ----------------------------------------------------------------


@dataclass
class ClassificationReport:
    """Everything :func:`write_results` writes; accuracies are fractions in ``[0, 1]``.

    Attributes:
        class_names: the data set's classes, in label order.
        accuracy: over all samples.
        mean_class_accuracy: mean of :attr:`per_class` over classes with samples.
        per_class: recall of every class (NaN without samples).
        support: samples per true class.
        confusion: row-normalised confusion matrix ``[C, C]``.
        confusion_counts: the same in counts.
        per_pose: accuracy per pose plus ``"mean"`` (Table II), when poses were given.
        num_samples: ``N``.
    """

    class_names: list[str]
    accuracy: float
    mean_class_accuracy: float
    per_class: dict[str, float]
    support: dict[str, int]
    confusion: torch.Tensor
    confusion_counts: torch.Tensor
    per_pose: dict[Hashable, float] | None = None
    num_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable types (NaN becomes ``None``)."""

        def clean(x: float) -> float | None:
            return None if isinstance(x, float) and np.isnan(x) else x

        return {
            "num_samples": self.num_samples,
            "accuracy": clean(self.accuracy),
            "mean_class_accuracy": clean(self.mean_class_accuracy),
            "per_class": {k: clean(v) for k, v in self.per_class.items()},
            "support": dict(self.support),
            "per_pose": None if self.per_pose is None else {str(k): clean(v) for k, v in self.per_pose.items()},
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.tolist(),
            "confusion_counts": self.confusion_counts.tolist(),
        }


def classification_report(
    preds: torch.Tensor,
    target: torch.Tensor,
    class_names: Sequence[str],
    poses: Sequence[Hashable] | torch.Tensor | None = None,
    pose_names: Sequence[str] | None = None,
) -> ClassificationReport:
    """All recognition metrics of one evaluation.

    Args:
        preds: class indices ``[N]`` or scores ``[N, C]``.
        target: true classes ``[N]``.
        class_names: the ``C`` class names, in label order.
        poses: the pose of every sample, for Table II's per-pose accuracy (Multi-PIE).
        pose_names: when ``poses`` are indices (a batch's ``"pose"``), the names they index
            (the DataModule's ``poses``, e.g. ``-30 .. +30``); rows follow this order and
            index -1 is reported as ``"unknown"``.
    """
    per_pose = None
    if poses is not None:
        per_pose = per_pose_accuracy(preds, target, poses)
        if pose_names is not None:
            per_pose = {
                (k if k == "mean" else pose_names[int(k)] if int(k) >= 0 else "unknown"): v for k, v in per_pose.items()
            }
    names = list(class_names)
    n = len(names)
    counts = confusion_matrix(preds, target, n, normalize=False)
    support = counts.sum(dim=1)
    recall = per_class_accuracy(preds, target, n)
    present = ~torch.isnan(recall)
    return ClassificationReport(
        class_names=names,
        accuracy=accuracy(preds, target),
        mean_class_accuracy=float(recall[present].mean()) if bool(present.any()) else float("nan"),
        per_class={name: float(r) for name, r in zip(names, recall)},
        support={name: int(s) for name, s in zip(names, support)},
        confusion=confusion_matrix(preds, target, n, normalize=True),
        confusion_counts=counts,
        per_pose=per_pose,
        num_samples=int(support.sum()),
    )


class ExpressionMetrics(Metric):
    """Collects predictions over batches (and devices); :meth:`compute` gives a :class:`ClassificationReport`.

    Args:
        class_names: the data set's classes, in label order.
        with_poses: ``update`` receives the pose of every sample (integers: pan angles in
            degrees, or indices into ``pose_names``) for the per-pose accuracy.
        pose_names: names of pose indices (see :func:`classification_report`).
    """

    full_state_update = False

    def __init__(
        self,
        class_names: Sequence[str],
        with_poses: bool = False,
        pose_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.class_names = list(class_names)
        self.with_poses = with_poses or pose_names is not None
        self.pose_names = list(pose_names) if pose_names is not None else None
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("poses", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor, poses: torch.Tensor | None = None) -> None:
        """Add a batch: scores ``[B, C]`` or classes ``[B]``, true classes ``[B]``, poses ``[B]``."""
        labels, target = _check(preds, target)
        self.preds.append(labels)
        self.target.append(target)
        if self.with_poses:
            if poses is None:
                raise ValueError("ExpressionMetrics(with_poses=True).update needs the poses of the batch")
            self.poses.append(torch.as_tensor(poses, device=labels.device).reshape(-1).long())

    def compute(self) -> ClassificationReport:
        preds, target = dim_zero_cat(self.preds).cpu(), dim_zero_cat(self.target).cpu()
        poses = dim_zero_cat(self.poses).cpu() if self.with_poses else None
        return classification_report(preds, target, self.class_names, poses, self.pose_names)


# --- files and figures ---------------------------------------------------------------------


def write_results(
    report: ClassificationReport, directory: str | os.PathLike[str], prefix: str = "test"
) -> dict[str, Path]:
    """Write ``report`` as JSON (everything) and CSV tables; returns ``{kind: path}``.

    Files: ``<prefix>_results.json``, ``<prefix>_per_class.csv`` (class, abbreviation,
    accuracy, support; a last ``mean`` row), ``<prefix>_confusion.csv`` (row-normalised,
    true classes as rows) and, with poses, ``<prefix>_per_pose.csv`` (pose, accuracy; a
    last ``mean`` row).

    Args:
        report: from :func:`classification_report` or :class:`ExpressionMetrics`.
        directory: created if missing.
        prefix: start of every file name.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{prefix}_results.json"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2) + "\n")

    names = report.class_names
    per_class = pd.DataFrame(
        {
            "class": names + ["mean"],
            "abbreviation": abbreviations(names) + [""],
            "accuracy": [report.per_class[n] for n in names] + [report.mean_class_accuracy],
            "support": [report.support[n] for n in names] + [report.num_samples],
        }
    )
    paths["per_class"] = out / f"{prefix}_per_class.csv"
    per_class.to_csv(paths["per_class"], index=False)

    confusion = pd.DataFrame(report.confusion.numpy(), index=names, columns=names)
    confusion.index.name = "true \\ predicted"
    paths["confusion"] = out / f"{prefix}_confusion.csv"
    confusion.to_csv(paths["confusion"])

    if report.per_pose is not None:
        per_pose = pd.DataFrame({"pose": list(report.per_pose), "accuracy": list(report.per_pose.values())})
        paths["per_pose"] = out / f"{prefix}_per_pose.csv"
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
    """The paper's Fig. 5-7: a row-normalised confusion matrix with percentages in the cells.

    Drawn on a stand-alone :class:`~matplotlib.figure.Figure` with the Agg canvas (no
    pyplot, no display needed).

    Args:
        confusion: ``[C, C]``, rows = true class; counts are row-normalised here.
        class_names: axis labels, in label order.
        title: above the matrix, e.g. ``"RAF-DB, mean accuracy 89.01%"``.
        abbreviate: label the axes with :func:`abbreviations` (``Sur Fea ...``).
        size_inches: side of the square figure.
        dpi: pixels per inch (the PNG is about ``size_inches * dpi`` pixels wide).
    """
    matrix = torch.as_tensor(confusion, dtype=torch.float64).cpu()
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(class_names):
        raise ValueError(f"confusion must be [C, C] with C = {len(class_names)}, got {tuple(matrix.shape)}")
    matrix = (matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1e-12)).numpy() * 100  # rows in %
    labels = abbreviations(class_names) if abbreviate else [str(n) for n in class_names]

    fig = Figure(figsize=(size_inches, size_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=100)
    n = len(labels)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    font = max(5.0, min(10.0, 60.0 / n))
    for i in range(n):
        for j in range(n):
            value = matrix[i, j]
            color = "white" if value > 50 else "black"
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=font, color=color)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def save_confusion_matrix(
    confusion: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
    **kwargs: Any,
) -> Path:
    """:func:`plot_confusion_matrix` written to a PNG at ``path``; returns the path.

    Args:
        confusion: ``[C, C]``, rows = true class.
        class_names: axis labels, in label order.
        path: the PNG (its folder is created).
        title: above the matrix.
        **kwargs: passed to :func:`plot_confusion_matrix`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_confusion_matrix(confusion, class_names, title=title, **kwargs)
    fig.savefig(path, format="png")
    return path


def figure_to_tensor(fig: Figure) -> torch.Tensor:
    """A drawn figure as ``[3, H, W]`` in ``[0, 1]``, the image :func:`exprgan.loggers.log_image` logs."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # [H, W, 4], uint8
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255
