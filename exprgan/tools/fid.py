"""``exprgan fid``: per-expression FID of one or more checkpoints, side by side (paper Tables V, VI).

For each checkpoint and each target expression e, every evaluation face of another
expression is given expression e (reference: a seeded random face of e, the same pairs for
every checkpoint) and the FID of these transfers against the real faces of e is computed.
Writes into --out one side-by-side table (fid.md, fid.csv; lowest FID in bold) and each
checkpoint's own table (fid_NAME.csv). Any --data.* option of `exprgan fit` overrides the
config's data section (e.g. --data.root PATH, --data.init_args.image_size 32). Example:

    exprgan fid --ckpt runs/no_interl/checkpoints/last.ckpt --ckpt runs/ours/checkpoints/last.ckpt \\
        --config experiments/rafdb.yaml --data.root /data/RAF-DB \\
        --inception-weights weights-inception-2015-12-05-6726825d.pth --out results/fid

From Python::

    dm = load_datamodule(["experiments/rafdb.yaml"], ["--data.root=/data/RAF-DB"])
    tables = compare_checkpoints({"No_InterL": "a.ckpt", "Ours": "b.ckpt"}, *evaluation_images(dm),
                                 dm.class_names, inception_weights="inception.pth")
    write_fid_comparison(tables, "fid/")
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from jsonargparse import ArgumentError

from exprgan.datamodules.base import PairDataModule
from exprgan.evaluation.fid import (
    INCEPTION_WEIGHTS_FILE,
    InceptionWeightsError,
    inception_fid,
    per_expression_fid,
    write_fid_comparison,
)
from exprgan.tools import tool_parser
from exprgan.tools.checkpoints import check_fits, label_index, load_model
from exprgan.tools.data_config import load_datamodule


def evaluation_images(
    datamodule: PairDataModule, split: Literal["test", "val"] = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """All faces of a DataModule's ``test`` or ``val`` split, ``[N, 3, H, W]`` in ``[-1, 1]``, and labels ``[N]``."""
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    datamodule.setup("test" if split == "test" else "validate")
    batches = list(datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader())
    return torch.cat([b["image"] for b in batches]), torch.cat([b["label"].reshape(-1) for b in batches]).long()


def default_names(checkpoints: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Short distinct names of checkpoints: their run folders, or file stems when those repeat.

    ``runs/ours/checkpoints/last.ckpt`` and ``runs/no_interl/checkpoints/last.ckpt`` give
    ``ours`` and ``no_interl``.
    """
    paths = [Path(c) for c in checkpoints]
    runs = [(p.parent.parent if p.parent.name == "checkpoints" else p.parent).name or p.stem for p in paths]
    for names in (runs, [p.stem for p in paths], [f"{run}/{p.stem}" for run, p in zip(runs, paths)]):
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def resolve_targets(targets: Sequence[str | int] | None, class_names: Sequence[str]) -> list[int] | None:
    """Target expressions as label indices, from names (any case) or indices (``None``: all)."""
    return None if targets is None else [label_index(target, class_names) for target in targets]


def compare_checkpoints(
    checkpoints: Mapping[str, str | os.PathLike[str]],
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    inception_weights: str | os.PathLike[str] | None = None,
    features: int = 2048,
    device: str | torch.device = "cpu",
    **options: Any,
) -> dict[str, pd.DataFrame]:
    """Per-expression FID tables of several checkpoints on the same faces and reference pairs.

    Args:
        checkpoints: ``{name: checkpoint path}``, in table order.
        images, labels: evaluation faces ``[N, 3, H, W]`` in ``[-1, 1]`` and labels ``[N]``
            (see :func:`evaluation_images`).
        class_names: expressions in label order.
        inception_weights: torch-fidelity's InceptionV3 weights file (None: its cache location).
        features: the Inception layer compared (2048: the standard FID).
        device: where the generators and the Inception net run.
        **options: ``targets``, ``batch_size``, ``seed``, ``progress`` of
            :func:`~exprgan.evaluation.fid.per_expression_fid` (same seed: same pairs for all).

    Raises:
        ValueError: a checkpoint's expressions or image size differ from the data's.
    """
    metric = inception_fid(inception_weights, features).to(device)
    tables = {}
    for name, checkpoint in checkpoints.items():
        model = load_model(checkpoint, device)
        check_fits(model, class_names, images.shape[-1], str(checkpoint))
        tables[name] = per_expression_fid(
            model.transfer, images, labels, class_names, metric=metric, device=device, **options
        )
        del model
    return tables


def fid_main(args: Sequence[str]) -> None:
    """``exprgan fid``: per-expression FID of checkpoints, one side-by-side table (Tables V-VI)."""
    parser = tool_parser("exprgan fid", __doc__)
    add = parser.add_argument
    add("--ckpt", action="append", required=True, help="a checkpoint (repeat for several)")
    add("--name", action="append", help="a table row name per --ckpt, in order (default: run folder or file stem)")
    add("--config", action="append", required=True, help="experiment config whose data: section gives the faces")
    add("--split", choices=("test", "val"), default="test", help="evaluation split (test)")
    add(
        "--inception-weights",
        help="torch-fidelity's InceptionV3 weights file (" + INCEPTION_WEIGHTS_FILE + "); "
        "default: the one in $TORCH_HOME/hub/checkpoints/. Never downloaded.",
    )
    add(
        "--inception-features",
        type=int,
        choices=(64, 192, 768, 2048),
        default=2048,
        help="Inception layer compared (2048: the standard FID; smaller ones: faster, not comparable)",
    )
    add("--targets", nargs="+", default=None, help="target expressions, names or indices (default: all)")
    add("--out", required=True, help="output folder")
    add("--batch-size", type=int, default=32, help="pairs per transfer / images per Inception pass")
    add("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    add("--seed", type=int, default=0, help="seed of the reference faces (0)")
    add("--digits", type=int, default=2, help="decimals in the markdown table (2)")
    add("--no-progress", action="store_true", help="no progress bars")
    options, data_overrides = parser.parse_known_args(args)
    if options.name is not None and len(options.name) != len(options.ckpt):
        parser.error(f"{len(options.name)} --name for {len(options.ckpt)} --ckpt")
    try:
        datamodule = load_datamodule(options.config, data_overrides)
    except (ValueError, ArgumentError) as error:
        parser.error(str(error))
    try:
        images, labels = evaluation_images(datamodule, options.split)
        class_names = list(datamodule.class_names)
        tables = compare_checkpoints(
            dict(zip(options.name or default_names(options.ckpt), options.ckpt)),
            images,
            labels,
            class_names,
            inception_weights=options.inception_weights,
            features=options.inception_features,
            targets=resolve_targets(options.targets, class_names),
            batch_size=options.batch_size,
            device=options.device,
            seed=options.seed,
            progress=not options.no_progress,
        )
    except (InceptionWeightsError, FileNotFoundError, ValueError) as error:
        # missing weights or checkpoint, a model that does not fit the data: the message says what to do
        print(f"exprgan fid: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    paths = write_fid_comparison(tables, options.out, digits=options.digits)
    for name, table in tables.items():
        table.to_csv(Path(options.out) / f"fid_{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'model'}.csv")
    print(paths["markdown"].read_text(), end="")
    print(f"exprgan fid: wrote {paths['markdown']}, {paths['csv']} and {len(tables)} per-checkpoint tables")
