"""What the labels of a model's generated faces are worth: the oracle against the model's own C and D.

The classifier learns from generated faces under the labels they were given (``I_c``: ``y_b``,
``I_d``: ``y_a``). That teaches it expressions only where the face shows the label. This script
takes ``--batches`` batches of the training pair stream of the configs' rendered faces (the
cycled targets a run trains on), lets each checkpoint's generator make ``I_c`` and ``I_d``, and
asks who sees the given label:

- ``oracle``: the data's oracle, the independent judge (``oracle still source``: it sees the
  source face's expression instead, a transfer that did not happen);
- ``C``: the checkpoint's classifier as it reads a face (its pixels and ``G_enc``'s representation
  R of them); ``C pixels``: the generated face's pixels with the *source* face's R (what the pixels
  alone tell C); ``C R``: the source face's pixels with the generated face's R (what R alone tells C);
- ``D``: the checkpoint's discriminators read as a classifier: the label under which D1 + D2
  find the face most real.

For each judge of the model: the share of generated faces it accepts (says the given label) and,
against the oracle, the precision and recall of that acceptance. A classifier that accepts far
more faces than the oracle does has learnt to read the generator's label, not the expression.

    python experiments/analysis/generated_labels.py runs/table7/ours-s0/checkpoints/last.ckpt \\
        runs/table7/no_synfi-s0/checkpoints/last.ckpt --config experiments/demo.yaml experiments/wild.yaml
"""

from __future__ import annotations

import argparse

import torch

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.evaluation.oracle import oracle_predict
from exprgan.tools.checkpoints import load_model
from exprgan.tools.data_config import load_datamodule

JUDGES = ("C", "C pixels", "C R", "D")


@torch.no_grad()
def judge(model, data: SyntheticFacesDataModule, oracle: torch.nn.Module, batches: int) -> dict[str, torch.Tensor]:
    """Per generated face (``[I_c, I_d]`` of each batch): does each judge say the given label? (bool ``[M]``)"""
    model.eval()
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in ("oracle", "oracle still source", *JUDGES)}
    for index, batch in enumerate(data.train_dataloader()):
        if index == batches:
            break
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        generated = torch.cat([model.generator.transfer(a, b, y_a, y_b), model.generator.transfer(b, a, y_b, y_a)])
        sources, given, source_labels = torch.cat([a, b]), torch.cat([y_b, y_a]), torch.cat([y_a, y_b])
        judged = oracle_predict(oracle, generated)
        seen["oracle"].append(judged == given)
        seen["oracle still source"].append(judged == source_labels)

        reads_r = model.classifier.uses_representation
        r_generated, r_sources = (model.generator.encode(x) if reads_r else None for x in (generated, sources))
        for name, pixels, code in (
            ("C", generated, r_generated),
            ("C pixels", generated, r_sources),
            ("C R", sources, r_generated),
        ):
            seen[name].append(model.classifier(pixels, code).argmax(1) == given)
        every_label = torch.arange(model.hparams.num_expressions).expand(len(generated), -1)
        seen["D"].append(sum(model.discriminator(generated, every_label)).argmax(1) == given)
    return {name: torch.cat(parts) for name, parts in seen.items()}


def report(name: str, seen: dict[str, torch.Tensor]) -> str:
    hit = seen["oracle"]
    lines = [
        f"{name}: {len(hit)} generated faces; the oracle sees the given label in {hit.float().mean():.1%}, "
        f"the source's in {seen['oracle still source'].float().mean():.1%}",
        "| judge | accepts | precision | recall |",
        "|---|---:|---:|---:|",
    ]
    for judge_name in JUDGES:
        accepted = seen[judge_name]
        both = (accepted & hit).sum().item()
        precision = both / max(int(accepted.sum()), 1)
        recall = both / max(int(hit.sum()), 1)
        lines.append(f"| {judge_name} | {accepted.float().mean():.1%} | {precision:.1%} | {recall:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--config", nargs="+", required=True, help="configs whose data: section sets the faces")
    parser.add_argument("--batches", type=int, default=60, help="training batches of pairs to judge")
    parser.add_argument("--oracle-dir", default="runs/table7/offline", help="where the oracle is cached")
    args = parser.parse_args(argv)

    data, oracle = None, None
    for checkpoint in args.checkpoints:
        model = load_model(checkpoint, "cpu")
        if data is None:
            size = model.hparams.image_size
            data = load_datamodule(
                args.config, [f"--data.init_args.image_size={size}", "--data.init_args.num_workers=0"]
            )
            if not isinstance(data, SyntheticFacesDataModule):
                parser.error(f"the configs' data is {type(data).__name__}; this script judges the rendered faces only")
            oracle = data.transfer_oracle(args.oracle_dir)
        torch.manual_seed(0)
        print(report(checkpoint, judge(model, data, oracle, args.batches)), end="\n\n")


if __name__ == "__main__":
    main()
