"""What validation and ``exprgan test`` report beyond a model's accuracy."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics.classification import MulticlassAccuracy

from exprgan.evaluation.metrics import ExpressionMetrics, figure_to_tensor, plot_confusion_matrix, write_results
from exprgan.evaluation.oracle import oracle_predict
from exprgan.evaluation.transfer import TransferMetrics, transfer_summary, write_transfer_results
from exprgan.loggers import log_image
from exprgan.offline import offline_dir, rank_zero_first, run_dir

Batch = dict[str, torch.Tensor]


class EvaluationReport(pl.Callback):
    """Per-class, per-pose and transfer metrics, the confusion matrix and the results files.

    - **Validation**, on data with ground-truth transfers (the rendered faces): the transfers'
      pixel metrics (:class:`~exprgan.evaluation.transfer.TransferMetrics`: ``val/edit_recall``,
      ``val/transfer_ratio``, ...) and ``val/reconstruction_l1``.
    - **Test**: mean per-class, per-class and per-pose accuracy (``test/*``), the confusion matrix
      (Fig. 5-7) and, with ground truth, the transfers judged by the data's ``transfer_oracle``
      (cached in the run's ``offline/``); in ``results_dir`` ``test_results.json``,
      ``test_per_class.csv``, ``test_confusion.csv`` and ``.png`` (``test_per_pose.csv``,
      ``test_transfer.json``), and a printed summary.

    It reads the logits the model's ``test_step`` returns. The ``exprgan`` CLI always adds it
    (``--report.results_dir``); with a plain ``Trainer``, pass it in ``callbacks``.

    Args:
        results_dir: where the test writes its files (default: ``results/`` in the run's folder,
            the logger's ``save_dir`` or else the trainer's ``default_root_dir``).
    """

    def __init__(self, results_dir: str | None = None) -> None:
        self.results_dir = results_dir

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        names = pl_module.class_names
        poses = list(getattr(trainer.datamodule, "poses", None) or []) or None
        self.recognition = ExpressionMetrics(names, pose_names=poses).to(pl_module.device)
        self.transfers = {"val": TransferMetrics(names, with_oracle=False).to(pl_module.device)}  # "test": at its start
        self.oracle_accuracy = MulticlassAccuracy(len(names), average="micro").to(pl_module.device)
        self.oracle: Callable[[torch.Tensor], torch.Tensor] | None = None

    # --- validation: the transfers' pixel metrics -----------------------------------------
    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._update_transfers(pl_module, batch, "val")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._log_transfers(pl_module, "val")

    # --- test: recognition, transfers judged by the oracle, files ---------------------------
    def on_test_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        make = getattr(trainer.datamodule, "transfer_oracle", None)  # data with ground-truth transfers
        if make is not None:
            oracle = rank_zero_first(trainer, "transfer_oracle", lambda: make(offline_dir(trainer)))
            self.oracle = partial(oracle_predict, oracle.to(pl_module.device))
        metrics = TransferMetrics(pl_module.class_names, with_oracle=self.oracle is not None)
        self.transfers["test"] = metrics.to(pl_module.device)

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        poses = batch.get("pose") if self.recognition.with_poses else None
        self.recognition.update(outputs, batch["label"], poses)  # outputs: the test step's logits
        self._update_transfers(pl_module, batch, "test")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        report = self.recognition.compute()
        self.recognition.reset()
        pl_module.log("test/mean_class_acc", report.mean_class_accuracy)
        poses = {f"pose_{pose}": value for pose, value in (report.per_pose or {}).items() if pose != "mean"}
        for name, value in [*report.per_class.items(), *poses.items()]:
            if not math.isnan(value):
                pl_module.log(f"test/acc_{name}", value)
        transfer = self._log_transfers(pl_module, "test")
        self.oracle = None
        if not trainer.is_global_zero:
            return
        names = pl_module.class_names
        title = f"accuracy {100 * report.accuracy:.2f}%, mean of classes {100 * report.mean_class_accuracy:.2f}%"
        figure = plot_confusion_matrix(report.confusion, names, title=title)
        log_image(trainer.logger, "test/confusion_matrix", figure_to_tensor(figure), step=trainer.global_step)
        directory = Path(self.results_dir) if self.results_dir else run_dir(trainer) / "results"
        written = [*write_results(report, directory, prefix="test").values(), directory / "test_confusion.png"]
        figure.savefig(written[-1])
        if transfer:
            written.append(write_transfer_results(transfer, directory / "test_transfer.json"))
            print(f"exprgan: {transfer_summary(transfer, names)}")
        print(f"exprgan: test results written: {', '.join(str(p) for p in written)}")

    # --- transfers to ground truth (the rendered faces) --------------------------------------
    def _update_transfers(self, pl_module: Any, batch: Batch, stage: str) -> None:
        """Score each face's transfer to its reference's expression against the ground truth ``target``, if any."""
        if "target" not in batch:
            return
        images, labels, y_b = batch["image"], batch["label"], batch["reference_label"]
        with torch.no_grad():
            transferred = pl_module.generator.transfer(images, batch["reference"], labels, y_b)  # I_c
            judged = None if self.oracle is None else self.oracle(transferred)
            self.transfers[stage].update(transferred, images, batch["target"], batch["reference"], y_b, judged)
            if self.oracle is not None:
                self.oracle_accuracy.update(self.oracle(images), labels)  # the judge on real faces
            reconstruction = (pl_module.generator.reconstruct(images) - images).abs().mean()
        pl_module.log(f"{stage}/reconstruction_l1", reconstruction, batch_size=len(labels))

    def _log_transfers(self, pl_module: Any, stage: str) -> dict[str, float]:
        """Log, reset and return the epoch's transfer metrics (and the oracle's ``oracle_acc`` on real faces)."""
        metrics = self.transfers[stage]
        if metrics.update_count == 0:
            return {}
        results = metrics.compute()
        if metrics.with_oracle:
            results["oracle_acc"] = float(self.oracle_accuracy.compute())
            self.oracle_accuracy.reset()
        finite = {f"{stage}/{key}": value for key, value in results.items() if math.isfinite(value)}
        pl_module.log_dict(finite, sync_dist=True)  # the same on every rank (the metric reduced them): a no-op mean
        metrics.reset()
        return results
