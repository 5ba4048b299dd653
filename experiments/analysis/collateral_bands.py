"""Where a checkpoint's transfer error lies, by distance from the true edit (the rendered faces).

``exprgan test`` splits the pixels in two: those the true edit changes (edit recall) and the
rest (collateral L1). This script splits the rest further, by distance from the edit mask
(the 1-pixel ring around it, 2-3 px, 4-7 px, 8 px and further), and prints for each band
its share of the pixels, the mean error of the transfer, of "no change" and of the
generator's reconstruction of its own input, and the band's share of the transfer ratio
(transfer L1 / "no change" L1: the bands' shares add up to it). Error far from the edit is
the decoder's reconstruction floor; error in the rings is an edit drawn in the wrong place
or with soft edges.

    python experiments/analysis/collateral_bands.py runs/synthesis/checkpoints/last.ckpt [more.ckpt ...] \
        [--config experiments/demo.yaml]

The test faces of the run's ``data:`` section (``--config``; for the demo's and the synthesis
configuration, the 700 faces of the 100 held-out identities), as ``exprgan test`` judges them.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from exprgan.datamodules.base import PairDataModule
from exprgan.evaluation.transfer import edit_mask
from exprgan.joint import JointExprGAN
from exprgan.tools.checkpoints import check_fits, load_model
from exprgan.tools.data_config import load_datamodule

RINGS: tuple[tuple[str, int, int], ...] = (("ring <=1px", 0, 1), ("ring 2-3px", 1, 3), ("ring 4-7px", 3, 7))


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` ``[N, 1, H, W]`` (0/1 floats) grown by ``radius`` pixels (a square neighbourhood)."""
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius) if radius > 0 else mask


def bands(source: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{band: [N, 1, H, W] 0/1 mask}``: the edit, rings around it, the rest; they partition the image."""
    edit = edit_mask(source, target).float()
    out = {"edit": edit}
    for name, inner, outer in RINGS:
        out[name] = dilate(edit, outer) - dilate(edit, inner)
    out["8px and further"] = 1.0 - dilate(edit, RINGS[-1][2])
    return out


@torch.no_grad()
def band_errors(model: JointExprGAN, data: PairDataModule) -> dict[str, dict[str, float]]:
    """Per band: pixel share, mean |transfer - target|, |source - target|, |reconstruction - source|,
    and the band's share of the transfer ratio."""
    sums: dict[str, torch.Tensor] = {}
    for batch in data.test_dataloader():
        source, target = batch["image"], batch["target"]
        out = model.generator.transfer(source, batch["reference"], batch["label"], batch["reference_label"])
        errors = torch.stack(
            [
                (out - target).abs().mean(1, keepdim=True),
                (source - target).abs().mean(1, keepdim=True),
                (model.generator.reconstruct(source) - source).abs().mean(1, keepdim=True),
            ]
        )  # [3, N, 1, H, W]
        for name, mask in bands(source, target).items():
            row = torch.cat([mask.sum().view(1), (errors * mask).sum((1, 2, 3, 4))]).double()
            sums[name] = sums.get(name, torch.zeros(4, dtype=torch.float64)) + row
    pixels = sum(row[0] for row in sums.values())
    no_change = sum(row[2] for row in sums.values())
    return {
        name: {
            "pixels": float(row[0] / pixels),
            "transfer": float(row[1] / row[0]),
            "no_change": float(row[2] / row[0]),
            "reconstruction": float(row[3] / row[0]),
            "ratio_share": float(row[1] / no_change),
        }
        for name, row in sums.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="exprgan checkpoints trained on the rendered faces")
    parser.add_argument(
        "--config", action="append", help="the runs' configs (their data: sections; default experiments/demo.yaml)"
    )
    args = parser.parse_args()
    data = load_datamodule(args.config or ["experiments/demo.yaml"])
    data.setup("test")
    for path in args.checkpoints:
        model = load_model(path)
        check_fits(model, data.class_names, getattr(data, "image_size", model.hparams.image_size), path)
        rows = band_errors(model, data)
        print(f"\n{path}: transfer ratio {sum(r['ratio_share'] for r in rows.values()):.3f}")
        print(f"{'band':<16} {'pixels':>7} {'transfer':>9} {'no change':>10} {'reconstr.':>10} {'of ratio':>9}")
        for name, r in rows.items():
            print(
                f"{name:<16} {r['pixels']:>7.3f} {r['transfer']:>9.4f} {r['no_change']:>10.4f} "
                f"{r['reconstruction']:>10.4f} {r['ratio_share']:>9.3f}"
            )


if __name__ == "__main__":
    main()
