"""What the synthesis configuration's moving average of the weights buys, paired on one run.

``experiments/synthesis.yaml`` saves checkpoints that hold an exponential moving average of the
weights (Lightning's ``EMAWeightAveraging``, decay 0.995). This script judges, on the same run,
the checkpoint's average against the weights training stopped with and against the generator
averaged with other decays, by the oracle metrics of ``exprgan test`` on the 100 held-out
identities (700 faces). Train with the recording callback appended (run from the repository root)::

    PYTHONPATH=benchmarks exprgan fit --config experiments/synthesis.yaml \\
        --trainer.callbacks+=weight_average.WeightVariants \\
        --trainer.callbacks.dirpath=runs/synthesis/variants
    python benchmarks/weight_average.py runs/synthesis

The callback changes nothing in training: after each batch it updates the generator's averages
at ``decays`` (the first update a copy, as ``torch.optim.swa_utils.AveragedModel`` does), after
each epoch (and so when a time or step limit stops training) it keeps the current weights, and it
writes both under ``dirpath`` when training ends.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytorch_lightning as pl
import torch

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.evaluation.oracle import oracle_predict, rendered_oracle
from exprgan.evaluation.transfer import TransferMetrics
from exprgan.joint import JointExprGAN
from exprgan.tools.checkpoints import load_model

COLUMNS = ("target_acc", "edit_recall", "collateral_l1", "transfer_ratio")


class WeightVariants(pl.Callback):
    """Records the weights training stops with and the generator averaged at other decays."""

    def __init__(self, dirpath: str, decays: tuple[float, ...] = (0.99, 0.998, 0.999)) -> None:
        self.dirpath = Path(dirpath)
        self.decays = tuple(decays)
        self.averages: list[dict[str, torch.Tensor]] = []
        self.current: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        state = pl_module.generator.state_dict()
        if not self.averages:
            self.averages = [{k: v.detach().clone() for k, v in state.items()} for _ in self.decays]
            return
        with torch.no_grad():
            for decay, average in zip(self.decays, self.averages):
                for key, value in state.items():
                    if value.is_floating_point():
                        average[key].lerp_(value, 1 - decay)
                    else:
                        average[key].copy_(value)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # before EMAWeightAveraging.on_train_end copies its average into the module
        self.current = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(self.current, self.dirpath / "current.pt")
        for decay, average in zip(self.decays, self.averages):
            torch.save(average, self.dirpath / f"generator_ema{decay}.pt")


def evaluate(model: JointExprGAN, data: SyntheticFacesDataModule, oracle: torch.nn.Module) -> dict[str, float]:
    """Classifier accuracy and the oracle transfer metrics on the test identities."""
    metrics = TransferMetrics(data.class_names)
    hits = total = 0
    with torch.no_grad():
        for batch in data.test_dataloader():
            out = model.generator.transfer(batch["image"], batch["reference"], batch["label"], batch["reference_label"])
            predicted = oracle_predict(oracle, out)
            metrics.update(
                out, batch["image"], batch["target"], batch["reference"], batch["reference_label"], predicted
            )
            hits += int((model.classify(batch["image"]).argmax(1) == batch["label"]).sum())
            total += len(batch["label"])
    return {"classifier_acc": hits / total, **metrics.compute()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run directory: checkpoints/last.ckpt, variants/, offline/")
    parser.add_argument("--test-identities", type=int, default=100)
    args = parser.parse_args()
    model = load_model(args.run / "checkpoints" / "last.ckpt")
    data = SyntheticFacesDataModule(
        image_size=model.hparams.image_size, val_identities=10, test_identities=args.test_identities, num_workers=0
    )
    data.setup("test")
    oracle = rendered_oracle(data, args.run / "offline")
    averaged = {k: v.clone() for k, v in model.state_dict().items()}
    rows = {"checkpoint (every weight averaged)": evaluate(model, data, oracle)}
    model.load_state_dict(torch.load(args.run / "variants" / "current.pt", weights_only=True))
    rows["weights training stopped with"] = evaluate(model, data, oracle)
    for path in sorted((args.run / "variants").glob("generator_ema*.pt")):
        model.load_state_dict(averaged)
        model.generator.load_state_dict(torch.load(path, weights_only=True))
        rows[f"generator averaged with decay {path.stem[len('generator_ema') :]}"] = evaluate(model, data, oracle)
    print("| weights | classifier | " + " | ".join(COLUMNS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for name, row in rows.items():
        print(f"| {name} | {row['classifier_acc']:.3f} | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
