"""Draw ``docs/demo_transfer.png`` from a demo checkpoint: held-out identities' transfers.

Columns: 10 test faces; rows: ``I_a``, the reference ``I_b``, the model's transfer, the
ground truth (``I_a``'s identity rendered with ``I_b``'s expression).

    python benchmarks/demo_figure.py runs/demo/checkpoints/last.ckpt --out docs/demo_transfer.png
"""

from __future__ import annotations

import argparse

import torch
from torchvision.utils import save_image

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.tools.checkpoints import load_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default="docs/demo_transfer.png")
    parser.add_argument("--faces", type=int, default=10)
    args = parser.parse_args(argv)

    model = load_model(args.checkpoint, "cpu")
    data = SyntheticFacesDataModule(image_size=model.hparams.image_size, val_identities=10, num_workers=0)
    data.setup("test")
    test = data.split("test")
    # one face per identity, expressions cycling: the first test identities, each with another expression
    step = len(test) // args.faces
    items = [test[k * step + k % 7] for k in range(args.faces)]
    batch = {
        key: torch.stack([item[key] for item in items])
        for key in ("image", "label", "reference", "reference_label", "target")
    }
    with torch.no_grad():
        transferred = model.generator.transfer(
            batch["image"], batch["reference"], batch["label"], batch["reference_label"]
        )
    rows = torch.cat([batch["image"], batch["reference"], transferred, batch["target"]])
    save_image(rows, args.out, nrow=args.faces, normalize=True, value_range=(-1, 1), padding=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
