"""What the synthesis configuration's moving average of the weights buys, paired on one run.

``experiments/synthesis.yaml`` saves checkpoints that hold an exponential moving average of the
weights (Lightning's ``EMAWeightAveraging``, decay 0.995). This script judges, on the same run,
the checkpoint's average against the weights training stopped with and against the generator
averaged with other decays, by the oracle metrics of ``exprgan test`` on the 100 held-out
identities (700 faces). Train with the recording callback appended (run from the repository root)::

    PYTHONPATH=experiments/analysis exprgan fit --config experiments/demo.yaml --config experiments/synthesis.yaml \\
        --trainer.callbacks+=weight_average.WeightVariants \\
        --trainer.callbacks.dirpath=runs/synthesis/variants
    python experiments/analysis/weight_average.py runs/synthesis

The callback changes nothing in training: after each batch it updates the generator's averages
at ``decays`` (``torch.optim.swa_utils.AveragedModel``, as Lightning's callback), after
each epoch (and so when a time or step limit stops training) it keeps the current weights, and it
writes both under ``dirpath`` when training ends.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from exprgan.callbacks import EvaluationReport
from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.joint import JointExprGAN
from exprgan.tools.checkpoints import load_model

COLUMNS = ("target_acc", "edit_recall", "collateral_l1", "transfer_ratio")


class WeightVariants(pl.Callback):
    """Records the weights training stops with and the generator averaged at other decays."""

    def __init__(self, dirpath: str, decays: tuple[float, ...] = (0.99, 0.998, 0.999)) -> None:
        self.dirpath = Path(dirpath)
        self.decays = tuple(decays)
        self.averages: list[AveragedModel] = []
        self.current: dict[str, torch.Tensor] = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        self.averages = [
            AveragedModel(pl_module.generator, multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True)
            for d in self.decays
        ]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for average in self.averages:
            average.update_parameters(pl_module.generator)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # before EMAWeightAveraging.on_train_end copies its average into the module
        self.current = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(self.current, self.dirpath / "current.pt")
        for decay, average in zip(self.decays, self.averages):
            torch.save(average.module.state_dict(), self.dirpath / f"generator_ema{decay}.pt")


def evaluate(model: JointExprGAN, data: SyntheticFacesDataModule, results_dir: Path) -> dict[str, float]:
    """``exprgan test``'s figures for ``model`` as it is: its test step, its oracle (cached in the
    run's ``offline/``, beside ``results_dir``), its result files in ``results_dir``."""
    report = EvaluationReport(results_dir=str(results_dir))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        callbacks=[report],
        default_root_dir=str(results_dir.parent),
    )
    (metrics,) = trainer.test(model, datamodule=data, verbose=False)
    return {key.removeprefix("test/"): value for key, value in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run directory: checkpoints/last.ckpt, variants/, offline/")
    parser.add_argument("--test-identities", type=int, default=100)
    args = parser.parse_args()
    model = load_model(args.run / "checkpoints" / "last.ckpt")
    data = SyntheticFacesDataModule(
        image_size=model.hparams.image_size, val_identities=10, test_identities=args.test_identities, num_workers=0
    )
    averaged = {k: v.clone() for k, v in model.state_dict().items()}
    rows = {"checkpoint (every weight averaged)": evaluate(model, data, args.run / "results_average")}
    model.load_state_dict(torch.load(args.run / "variants" / "current.pt", weights_only=True))
    rows["weights training stopped with"] = evaluate(model, data, args.run / "results_current")
    for path in sorted((args.run / "variants").glob("generator_ema*.pt")):
        model.load_state_dict(averaged)
        model.generator.load_state_dict(torch.load(path, weights_only=True))
        decay = path.stem.removeprefix("generator_ema")
        rows[f"generator averaged with decay {decay}"] = evaluate(model, data, args.run / f"results_ema{decay}")
    print("| weights | classifier | " + " | ".join(COLUMNS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for name, row in rows.items():
        print(f"| {name} | {row['acc']:.3f} | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
