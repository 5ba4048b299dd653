"""Draw the demo's figures from a checkpoint trained on the rendered faces (held-out identities).

``--out`` (``docs/demo_transfer.png``): columns are 10 test faces; rows ``I_a``, the
reference ``I_b``, the model's transfer, and the ground truth (``I_a``'s identity rendered
with ``I_b``'s expression).

``--grid`` (``docs/demo_grid.png``, like the paper's Fig. 8): rows are held-out identities,
columns the 7 expressions; each cell is the identity's neutral face turned to the column's
expression, with a reference face of another held-out identity showing it (the first row
shows those references, the first column the input faces).

    python experiments/analysis/demo_figure.py runs/demo/checkpoints/last.ckpt --out docs/demo_transfer.png \\
        --grid docs/demo_grid.png

``--config`` reads the rendered faces' options from the configs' ``data.init_args`` (later files
win), e.g. the in-the-wild regime's faces of a Table VII run::

    python experiments/analysis/demo_figure.py runs/table7/ours-s0/checkpoints/last.ckpt \\
        --config experiments/demo.yaml experiments/wild.yaml --out docs/wild_transfers_ours_s0.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from torchvision.utils import save_image

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.datamodules.base import to_tensor
from exprgan.tools.checkpoints import load_model

NEUTRAL = 6


def transfer_row(model, data: SyntheticFacesDataModule, out: str, faces: int) -> None:
    test = data.split("test")
    # one face per identity, expressions cycling: the first test identities, each with another expression
    step = len(test) // faces
    items = [test[k * step + k % 7] for k in range(faces)]
    batch = {
        key: torch.stack([item[key] for item in items])
        for key in ("image", "label", "reference", "reference_label", "target")
    }
    with torch.no_grad():
        transferred = model.generator.transfer(
            batch["image"], batch["reference"], batch["label"], batch["reference_label"]
        )
    rows = torch.cat([batch["image"], batch["reference"], transferred, batch["target"]])
    save_image(rows, out, nrow=faces, normalize=True, value_range=(-1, 1), padding=2)
    print(f"wrote {out}")


def expression_grid(model, data: SyntheticFacesDataModule, out: str, identities: int) -> None:
    ids = list(data.identities("test"))
    n = data.num_expressions

    def face(identity: int, expression: int) -> torch.Tensor:
        return to_tensor(data.face(identity, expression))

    references = torch.stack([face(ids[-1 - e], e) for e in range(n)])  # other identities, one per expression
    sources = torch.stack([face(i, NEUTRAL) for i in ids[:identities]])
    rows = [torch.cat([torch.full_like(sources[0], 1.0)[None], references])]
    with torch.no_grad():
        for source in sources:
            image = source.expand(n, -1, -1, -1)
            labels = torch.full((n,), NEUTRAL)
            turned = model.generator.transfer(image, references, labels, torch.arange(n))
            rows.append(torch.cat([source[None], turned]))
    save_image(torch.cat(rows), out, nrow=n + 1, normalize=True, value_range=(-1, 1), padding=2)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--out", default="docs/demo_transfer.png")
    parser.add_argument("--faces", type=int, default=10)
    parser.add_argument("--grid", default=None, help="also draw the Fig. 8-like grid here")
    parser.add_argument("--identities", type=int, default=6, help="rows of the grid")
    parser.add_argument("--config", nargs="+", default=[], help="configs whose data.init_args set the faces")
    args = parser.parse_args(argv)

    options = {"val_identities": 10}
    for config in args.config:
        data_section = (yaml.safe_load(Path(config).read_text()) or {}).get("data") or {}
        class_path = data_section.get("class_path", "exprgan.datamodules.SyntheticFacesDataModule")
        if not class_path.endswith("SyntheticFacesDataModule"):
            parser.error(f"{config}: data is {class_path}; this script draws the rendered faces only")
        options |= data_section.get("init_args") or {}
    model = load_model(args.checkpoint, "cpu")
    options |= {"image_size": model.hparams.image_size, "num_workers": 0}
    data = SyntheticFacesDataModule(**options)
    data.setup("test")
    transfer_row(model, data, args.out, args.faces)
    if args.grid:
        expression_grid(model, data, args.grid, args.identities)


if __name__ == "__main__":
    main()
