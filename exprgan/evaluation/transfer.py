"""Transfer metrics against ground truth (the rendered faces), overall and per target expression.

For a transfer ``out`` of a face ``source`` towards the ground truth ``target`` (the same
identity with the reference's expression ``y_b``):

- **target accuracy**: the share of transfers in which an independent oracle recognises
  ``y_b`` (:mod:`exprgan.evaluation.oracle`); reported with the oracle's own accuracy on
  the real held-out faces (what a perfect transfer would score, near enough);
- **edit recall**: on the pixels the true edit changes (``|target - source| >``
  :data:`EDIT_THRESHOLD` in some channel), the share of the "no change" error that the
  transfer removes, ``1 - sum|out - target| / sum|source - target|`` (1: the edit is
  exactly right; 0: as if nothing changed; below 0: worse than nothing);
- **collateral L1**: the mean ``|out - target|`` over the other pixels (and channels),
  which the edit should leave alone;
- **transfer L1** (mean ``|out - target|``) and its two baselines, "no change"
  (``source``) and "copy the reference"; **transfer ratio**: transfer L1 / "no change".

Per target expression (binned by ``y_b``): target accuracy and edit recall. Images are
``[N, 3, H, W]`` in ``[-1, 1]``; L1 figures are in those units. During training the model
logs the oracle-free figures at every validation (``TransferMetrics(..., with_oracle=False)``);
``exprgan test`` all of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics import Metric

EDIT_THRESHOLD = 0.1  # in [-1, 1] units: 5% of the range, above the renderer's antialiasing


def edit_mask(source: torch.Tensor, target: torch.Tensor, threshold: float = EDIT_THRESHOLD) -> torch.Tensor:
    """``[N, 1, H, W]`` bool: the pixels the true edit changes (in any channel)."""
    return (target - source).abs().amax(1, keepdim=True) > threshold


class TransferMetrics(Metric):
    """Accumulates the transfer metrics over batches (and devices); :meth:`compute` gives a flat dict.

    Keys: ``target_acc``, ``edit_recall``, ``collateral_l1``, ``transfer_l1``,
    ``l1_no_change``, ``l1_copy_reference``, ``transfer_ratio``, and per target expression
    ``target_acc_<name>`` and ``edit_recall_<name>`` (NaN for an expression never targeted).
    Without an oracle the ``target_acc`` keys are absent.

    Args:
        class_names: the expressions, in label order.
        with_oracle: ``update`` takes the oracle's predictions and the target accuracy is reported.
        threshold: the edit mask's threshold.
    """

    full_state_update = False

    def __init__(self, class_names: Sequence[str], with_oracle: bool = True, threshold: float = EDIT_THRESHOLD) -> None:
        super().__init__()
        self.class_names = list(class_names)
        self.with_oracle = with_oracle
        self.threshold = threshold
        for name in ("edit_error", "edit_baseline", "hits", "count"):  # per target class
            self.add_state(name, default=torch.zeros(len(self.class_names), dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("collateral_error", "collateral_pixels", "transfer", "no_change", "copy", "images"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        transferred: torch.Tensor,
        source: torch.Tensor,
        target: torch.Tensor,
        reference: torch.Tensor,
        target_labels: torch.Tensor,
        oracle_labels: torch.Tensor | None = None,
    ) -> None:
        """One batch: the transfers, their sources, ground truths and references ``[N, 3, H, W]``,
        the target expressions ``y_b [N]`` and (``with_oracle``) the oracle's predicted
        expressions of the transfers ``[N]``."""
        if not transferred.shape == source.shape == target.shape == reference.shape:
            raise ValueError(
                f"transferred, source, target and reference differ in shape: {tuple(transferred.shape)}, "
                f"{tuple(source.shape)}, {tuple(target.shape)}, {tuple(reference.shape)}"
            )
        if target_labels.shape != (len(transferred),):
            raise ValueError(f"need one target label per image ({len(transferred)}), got {tuple(target_labels.shape)}")
        if self.with_oracle and oracle_labels is None:
            raise ValueError("TransferMetrics(with_oracle=True).update needs the oracle's predictions of the transfers")
        transferred, source, target, reference = (x.double() for x in (transferred, source, target, reference))
        onehot = F.one_hot(target_labels.long(), len(self.class_names)).double()  # [N, n]: bins by y_b
        mask = edit_mask(source, target, self.threshold).double()  # [N, 1, H, W]
        error = (transferred - target).abs()
        baseline = (source - target).abs()
        self.edit_error += (error * mask).sum((1, 2, 3)) @ onehot
        self.edit_baseline += (baseline * mask).sum((1, 2, 3)) @ onehot
        if self.with_oracle:
            self.hits += (oracle_labels.to(target_labels.device) == target_labels).double() @ onehot
            self.count += onehot.sum(0)
        keep = 1.0 - mask
        self.collateral_error += (error * keep).sum()
        self.collateral_pixels += keep.sum() * transferred.shape[1]
        self.transfer += error.mean((1, 2, 3)).sum()
        self.no_change += baseline.mean((1, 2, 3)).sum()
        self.copy += (reference - target).abs().mean((1, 2, 3)).sum()
        self.images += len(transferred)

    def compute(self) -> dict[str, float]:
        def ratio(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(a / b) if float(b) > 0 else float("nan")

        results = {
            "target_acc": ratio(self.hits.sum(), self.count.sum()),
            "edit_recall": 1.0 - ratio(self.edit_error.sum(), self.edit_baseline.sum()),
            "collateral_l1": ratio(self.collateral_error, self.collateral_pixels),
            "transfer_l1": ratio(self.transfer, self.images),
            "l1_no_change": ratio(self.no_change, self.images),
            "l1_copy_reference": ratio(self.copy, self.images),
            "transfer_ratio": ratio(self.transfer, self.no_change),
        }
        for k, name in enumerate(self.class_names):
            results[f"target_acc_{name}"] = ratio(self.hits[k], self.count[k])
            results[f"edit_recall_{name}"] = 1.0 - ratio(self.edit_error[k], self.edit_baseline[k])
        if not self.with_oracle:
            results = {key: value for key, value in results.items() if not key.startswith("target_acc")}
        return results


def write_transfer_results(results: Mapping[str, float], path: str | Path) -> Path:
    """Write ``results`` (:meth:`TransferMetrics.compute`'s, plus ``oracle_acc`` when judged) as flat
    JSON (NaN becomes ``null``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {key: None if math.isnan(value) else value for key, value in results.items()}
    path.write_text(json.dumps(clean, indent=2) + "\n")
    return path


def transfer_summary(results: Mapping[str, float], class_names: Sequence[str]) -> str:
    """A few human-readable lines of ``results`` (:meth:`TransferMetrics.compute`'s, plus
    ``oracle_acc`` when judged)."""
    r = results
    pixels = (
        f"edit recall {r['edit_recall']:.3f}, collateral L1 {r['collateral_l1']:.4f}, transfer L1 "
        f"{r['transfer_l1']:.4f} (no change {r['l1_no_change']:.4f}, copy the reference "
        f"{r['l1_copy_reference']:.4f}; ratio {r['transfer_ratio']:.3f})"
    )
    if "target_acc" not in r:
        return f"transfers: {pixels}"
    per_class = ", ".join(
        f"{name} {100 * r[f'target_acc_{name}']:.1f}% / {r[f'edit_recall_{name}']:.2f}"
        for name in class_names
        if not math.isnan(r[f"target_acc_{name}"])  # never a target
    )
    return (
        f"transfers: target accuracy {100 * r['target_acc']:.1f}% (the oracle on the real faces: "
        f"{100 * r.get('oracle_acc', float('nan')):.1f}%), {pixels}\n"
        f"  target accuracy / edit recall per target expression: {per_class}"
    )
