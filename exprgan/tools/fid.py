"""``exprgan fid``: per-expression FID of one or more checkpoints, side by side (paper Tables V, VI).

For each checkpoint and each target expression ``e``, every evaluation face of another
expression is given expression ``e`` (reference: a seeded random face of ``e``, the same
pairs for every checkpoint) and the FID of these transfers against the real faces of ``e``
is computed with torch-fidelity's Inception (:func:`exprgan.evaluation.fid.per_expression_fid`).

Usable from a notebook::

    dm = load_datamodule(["experiments/rafdb.yaml"], ["--data.root=/data/RAF-DB"])
    images, labels = evaluation_images(dm, "test")
    tables = compare_checkpoints({"No_InterL": "a.ckpt", "Ours": "b.ckpt"}, images, labels,
                                 dm.class_names, inception_weights="inception.pth")
    write_fid_comparison(tables, "fid/")
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
import torch

from exprgan.datamodules.base import PairDataModule
from exprgan.evaluation.fid import InceptionFeatures, InceptionWeightsError, per_expression_fid, write_fid_comparison
from exprgan.evaluation.tables import markdown_table

Split = Literal["test", "val"]


def evaluation_images(datamodule: PairDataModule, split: Split = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """All faces of an evaluation split, ``[N, 3, H, W]`` in ``[-1, 1]``, and their labels ``[N]``.

    Args:
        datamodule: any exprgan DataModule (``setup`` is called here).
        split: ``test`` or ``val``.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    datamodule.setup("test" if split == "test" else "validate")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    images, labels = [], []
    for batch in loader:
        images.append(batch["image"])
        labels.append(batch["label"].reshape(-1))
    return torch.cat(images), torch.cat(labels).long()


def default_names(checkpoints: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Short distinct names of checkpoints: their run folders, or file stems when those repeat.

    ``runs/ours/checkpoints/last.ckpt`` and ``runs/no_interl/checkpoints/last.ckpt`` give
    ``ours`` and ``no_interl``.
    """
    paths = [Path(c) for c in checkpoints]
    runs = [p.parent.parent if p.parent.name == "checkpoints" else p.parent for p in paths]
    candidates = [
        [run.name or p.stem for run, p in zip(runs, paths)],
        [p.stem for p in paths],
        [f"{run.name}/{p.stem}" for run, p in zip(runs, paths)],
        [str(p) for p in paths],
    ]
    for names in candidates:
        if len(set(names)) == len(names):
            return names
    return [f"{k}:{p}" for k, p in enumerate(paths)]


def resolve_targets(targets: Sequence[str | int] | None, class_names: Sequence[str]) -> list[int] | None:
    """Target expressions as label indices, from names or indices (``None``: all)."""
    if targets is None:
        return None
    out = []
    for target in targets:
        if isinstance(target, int) or str(target).isdigit():
            index = int(target)
        elif target in class_names:
            index = list(class_names).index(target)
        else:
            raise ValueError(f"unknown expression {target!r}; the data set's are {list(class_names)}")
        if not 0 <= index < len(class_names):
            raise ValueError(f"expression index {index} out of range 0..{len(class_names) - 1}")
        out.append(index)
    return out


def checkpoint_fid(
    checkpoint: str | os.PathLike[str],
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    features: InceptionFeatures,
    targets: Sequence[int] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`~exprgan.evaluation.fid.per_expression_fid` of one checkpoint's transfers.

    Args:
        checkpoint: a :class:`~exprgan.joint.JointExprGAN` Lightning checkpoint.
        images, labels: evaluation faces ``[N, 3, H, W]`` in ``[-1, 1]`` and labels ``[N]``.
        class_names: the data set's expressions, in label order.
        features: the Inception feature extractor (shared by all checkpoints).
        targets: target expressions (default all).
        batch_size: pairs per transfer call and images per Inception pass.
        device: where the generator runs.
        seed: seed of the reference draws (same pairs for every checkpoint).
        progress: progress bars.

    Raises:
        ValueError: the checkpoint's expressions or image size differ from the data's.
    """
    from exprgan.tools.checkpoints import load_model

    model = load_model(checkpoint, device)
    if model.hparams.num_expressions != len(class_names):
        raise ValueError(
            f"{checkpoint}: the model has {model.hparams.num_expressions} expressions, "
            f"the data {len(class_names)} ({list(class_names)})"
        )
    if model.hparams.image_size != images.shape[-1]:
        raise ValueError(
            f"{checkpoint}: the model was trained on {model.hparams.image_size} px images, the data gives "
            f"{images.shape[-1]} px (set --data.init_args.image_size)"
        )
    try:
        return per_expression_fid(
            model.transfer,
            images,
            labels,
            class_names,
            features=features,
            targets=targets,
            batch_size=batch_size,
            device=device,
            seed=seed,
            progress=progress,
        )
    finally:
        del model


def compare_checkpoints(
    checkpoints: Mapping[str, str | os.PathLike[str]],
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    inception_weights: str | os.PathLike[str] | None = None,
    targets: Sequence[int] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Per-expression FID tables of several checkpoints on the same faces and reference pairs.

    Args:
        checkpoints: ``{name: checkpoint path}``, in table order.
        images, labels: evaluation faces and labels (see :func:`evaluation_images`).
        class_names: expressions in label order.
        inception_weights: torch-fidelity's InceptionV3 weights file (None: its cache location).
        targets, batch_size, device, seed, progress: see :func:`checkpoint_fid`.

    Returns:
        ``{name: table}`` for :func:`~exprgan.evaluation.fid.write_fid_comparison`.
    """
    features = InceptionFeatures(inception_weights).to(device)
    return {
        name: checkpoint_fid(path, images, labels, class_names, features, targets, batch_size, device, seed, progress)
        for name, path in checkpoints.items()
    }


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def fid_main(args: Sequence[str]) -> None:
    """``exprgan fid``: per-expression FID of checkpoints, one side-by-side table (Tables V-VI)."""
    parser = argparse.ArgumentParser(
        prog="exprgan fid",
        usage="exprgan fid --ckpt CKPT [--ckpt CKPT ...] [--name NAME ...] --config FILE [--data.* VALUE ...] "
        "[--split test|val] --inception-weights FILE [--targets EXPR ...] --out DIR [options]",
        description=(
            "Per-expression FID (paper Tables V-VI): for each target expression e, transfer e onto every "
            "evaluation face of another expression and compute the FID against the real faces of e, for each "
            "checkpoint; writes one side-by-side table (fid.md, fid.csv; lowest FID in bold) and each "
            "checkpoint's own table (fid_NAME.csv) into --out. Any --data.* option of `exprgan fit` overrides "
            "the config's data section (e.g. --data.root PATH, --data.init_args.image_size 32)."
        ),
        epilog="example: exprgan fid --ckpt runs/no_interl/checkpoints/last.ckpt --ckpt runs/ours/checkpoints/"
        "last.ckpt --config experiments/rafdb.yaml --data.root /data/RAF-DB --inception-weights "
        "weights-inception-2015-12-05-6726825d.pth --out results/fid",
        allow_abbrev=False,
    )
    parser.add_argument("--ckpt", action="append", required=True, help="a checkpoint (repeat for several)")
    parser.add_argument(
        "--name", action="append", help="a table row name per --ckpt, in order (default: run folder or file stem)"
    )
    parser.add_argument(
        "--config", action="append", required=True, help="experiment config whose data: section gives the faces"
    )
    parser.add_argument("--split", choices=("test", "val"), default="test", help="evaluation split (test)")
    parser.add_argument(
        "--inception-weights",
        default=None,
        help="torch-fidelity's InceptionV3 weights (weights-inception-2015-12-05-6726825d.pth); default: the file "
        "in $TORCH_HOME/hub/checkpoints/. Never downloaded.",
    )
    parser.add_argument(
        "--targets", nargs="+", default=None, help="target expressions, names or indices (default: all)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per transfer / images per Inception pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference faces (0)")
    parser.add_argument("--digits", type=int, default=2, help="decimals in the markdown table (2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    options, data_overrides = parser.parse_known_args(args)

    from jsonargparse import ArgumentError

    from exprgan.tools.data_config import load_datamodule

    if options.name is not None and len(options.name) != len(options.ckpt):
        parser.error(f"{len(options.name)} --name for {len(options.ckpt)} --ckpt")
    try:
        datamodule = load_datamodule(options.config, data_overrides)
    except (ValueError, ArgumentError) as error:
        parser.error(str(error))
    names = options.name or default_names(options.ckpt)
    try:
        images, labels = evaluation_images(datamodule, options.split)
        class_names = list(datamodule.class_names)
        tables = compare_checkpoints(
            dict(zip(names, options.ckpt)),
            images,
            labels,
            class_names,
            inception_weights=options.inception_weights,
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
    out = Path(options.out)
    paths = write_fid_comparison(tables, out, digits=options.digits)
    for name, table in tables.items():
        table.to_csv(out / f"fid_{_file_name(name)}.csv")
    comparison = pd.read_csv(paths["csv"], index_col=0)
    print(markdown_table(comparison, digits=options.digits, bold="min"), end="")
    print(f"exprgan fid: wrote {paths['markdown']}, {paths['csv']} and {len(tables)} per-checkpoint tables")
