"""``exprgan synthesize``: every training image transferred to K other expressions (paper Fig. 12).

For training image ``i`` (label ``y``) the other ``n - 1`` expressions are put in a seeded
random order (``numpy.random.default_rng([seed, i])``); the first ``K`` of them are its
targets (``K = n - 1`` gives the paper's ``6N`` on 7 classes). For target ``e`` the
reference face is a seeded random training image of ``e`` (``default_rng([seed, i, e])``),
and the written image is ``G``'s transfer of ``e`` onto image ``i``. Neither choice depends
on ``K``: the first ``k`` transfers of a ``K``-run are exactly a ``k``-run, so one ``6N``
folder serves every ``kN`` of Fig. 12 (:class:`~exprgan.datamodules.synthesized.SynthesizedDataModule`
reads its first ``k`` per image).

Output folder::

    OUT/synthesis.json      checkpoint, seed, K, number and class names of the training images
    OUT/index.csv           one row per transfer: path (relative to OUT), label, label_name,
                            source (training row), source_label, source_label_name,
                            source_path (when the data set has files), rank (0..K-1), reference
    OUT/images/SSS/IIIIII_to{e}.png

Sources are the training images *without* augmentation. Resumable: images already there are
skipped; every file is written under a temporary name and renamed, so an interrupted run
leaves no half-written PNG; ``index.csv`` is written last.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from exprgan.datamodules.base import PairDataModule, to_tensor
from exprgan.datamodules.pairs import class_members
from exprgan.evaluation.fid import to_uint8

INDEX_FILE = "index.csv"
META_FILE = "synthesis.json"
INDEX_COLUMNS = (
    "path",
    "label",
    "label_name",
    "source",
    "source_label",
    "source_label_name",
    "source_path",
    "rank",
    "reference",
)


def synthesis_plan(
    labels: Sequence[int],
    num_expressions: int,
    per_image: int,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Which transfers to make: ``per_image`` rows per training image, in rank order.

    Args:
        labels: label of every training image.
        num_expressions: ``n``.
        per_image: ``K``, at most ``n - 1``.
        seed: seed of the target order and of the references.
        class_names: for ``label_name`` / ``source_label_name`` (default: the label numbers).

    Returns:
        :data:`INDEX_COLUMNS` (``source_path`` empty), one row per (image, rank).
    """
    if not 0 <= per_image <= num_expressions - 1:
        raise ValueError(f"per_image must be in 0..{num_expressions - 1} (n - 1 other expressions), got {per_image}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_expressions)]
    members = class_members(labels, num_expressions, names)
    rows = []
    for source, label in enumerate(int(y) for y in labels):
        others = [e for e in range(num_expressions) if e != label]
        order = np.random.default_rng([seed, source]).permutation(others)
        for rank, target in enumerate(int(e) for e in order[:per_image]):
            reference = int(
                members[target][np.random.default_rng([seed, source, target]).integers(len(members[target]))]
            )
            rows.append(
                {
                    "path": f"images/{source // 1000:03d}/{source:06d}_to{target}.png",
                    "label": target,
                    "label_name": names[target],
                    "source": source,
                    "source_label": label,
                    "source_label_name": names[label],
                    "source_path": "",
                    "rank": rank,
                    "reference": reference,
                }
            )
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def plain_train_images(datamodule: PairDataModule) -> Callable[[int], torch.Tensor]:
    """``index -> [3, H, W]`` training image in ``[-1, 1]`` *without* augmentation.

    For the on-disk data sets the training split's transform is dropped (on a copy); the
    demo data is never augmented.
    """
    split = getattr(datamodule, "split", None)
    if callable(split):
        dataset = split("train")
        if getattr(dataset, "transform", None) is not None and hasattr(dataset, "image"):
            plain = copy.copy(dataset)
            plain.transform = None
            return lambda index: to_tensor(plain.image(index))
    return datamodule.load_train_image


def _source_paths(datamodule: PairDataModule, count: int) -> list[str]:
    split_frame = getattr(datamodule, "split_frame", None)
    if callable(split_frame):
        frame = split_frame("train")
        if "path" in frame and len(frame) == count:
            return [str(p) for p in frame["path"]]
    return [""] * count


def labels_digest(labels: Sequence[int]) -> str:
    """A short hash of a label list: tells whether a folder was synthesised from this training set."""
    return hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _check_meta(out: Path, meta: dict[str, Any]) -> None:
    path = out / META_FILE
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    for key in ("seed", "num_train", "labels_digest", "class_names", "image_size"):
        if old.get(key) != meta[key]:
            raise ValueError(
                f"{out} holds a synthesis with another {key} ({old.get(key)!r}, now {meta[key]!r}): "
                "use another --out folder (or delete this one)"
            )
    if old.get("checkpoint_sha256") != meta["checkpoint_sha256"]:
        raise ValueError(f"{out} was synthesised by another checkpoint ({old.get('checkpoint')}): use another --out")


def _file_digest(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@torch.no_grad()
def synthesize(
    model: Any,
    datamodule: PairDataModule,
    out: str | os.PathLike[str],
    per_image: int,
    seed: int = 0,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, int]:
    """Write the transfers of every training image to ``per_image`` other expressions.

    Args:
        model: a :class:`~exprgan.joint.JointExprGAN` in eval mode on ``device``.
        datamodule: the training data (``setup("fit")`` is called here).
        out: output folder (see the module docstring); existing images are kept.
        per_image: ``K`` transfers per image, ``0 .. n - 1``.
        seed: seed of the targets and references.
        batch_size: transfers per generator call.
        device: where the generator runs.
        checkpoint: the model's checkpoint file, recorded (with its hash) in ``synthesis.json``.
        progress: show a progress bar.

    Returns:
        The index (as written to ``index.csv``) and the number of images written now.

    Raises:
        ValueError: the model does not match the data, or ``out`` holds another synthesis.
    """
    out = Path(out)
    datamodule.setup("fit")
    labels = [int(y) for y in datamodule.train_labels()]
    class_names = list(datamodule.class_names)
    n = len(class_names)
    image_size = int(getattr(datamodule, "image_size", model.hparams.image_size))
    if model.hparams.num_expressions != n:
        raise ValueError(f"the model has {model.hparams.num_expressions} expressions, the data {n} ({class_names})")
    if model.hparams.image_size != image_size:
        raise ValueError(
            f"the model was trained on {model.hparams.image_size} px images, the data gives {image_size} px "
            "(set --data.init_args.image_size)"
        )
    plan = synthesis_plan(labels, n, per_image, seed, class_names)
    sources = _source_paths(datamodule, len(labels))
    plan["source_path"] = [sources[s] for s in plan["source"]]
    meta = {
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "checkpoint_sha256": _file_digest(checkpoint),
        "seed": seed,
        "per_image": per_image,
        "num_train": len(labels),
        "labels_digest": labels_digest(labels),
        "class_names": class_names,
        "image_size": image_size,
        "data": type(datamodule).__name__,
    }
    _check_meta(out, meta)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / META_FILE, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))

    load = plain_train_images(datamodule)
    pending = plan[[not (out / path).is_file() for path in plan["path"]]]
    written = 0
    with tqdm(total=len(pending), desc="synthesizing", unit="img", disable=not progress) as bar:
        for start in range(0, len(pending), batch_size):
            rows = pending.iloc[start : start + batch_size]
            identity = torch.stack([load(int(s)) for s in rows["source"]]).to(device)
            reference = torch.stack([load(int(r)) for r in rows["reference"]]).to(device)
            source_labels = torch.tensor(rows["source_label"].tolist(), device=device)
            target_labels = torch.tensor(rows["label"].tolist(), device=device)
            images = to_uint8(model.transfer(identity, reference, source_labels, target_labels)).cpu()
            for path, image in zip(rows["path"], images):
                pixels = image.permute(1, 2, 0).numpy()  # [H, W, 3] uint8
                _write_atomic(out / path, lambda p, px=pixels: Image.fromarray(px).save(p, format="PNG"))
                written += 1
            bar.update(len(rows))
    _write_atomic(out / INDEX_FILE, lambda p: plan.to_csv(p, index=False))
    return plan, written


def synthesize_main(args: Sequence[str]) -> None:
    """``exprgan synthesize``: transfers of every training image to K other expressions, with an index."""
    parser = argparse.ArgumentParser(
        prog="exprgan synthesize",
        usage="exprgan synthesize --ckpt CKPT --config FILE [--data.* VALUE ...] --per-image K --out DIR [options]",
        description=(
            "Write, for every training image of the config's data set, G's transfers to K other expressions "
            "(a seeded random order of the n - 1 others; each reference a seeded random training face of the "
            "target expression) as PNGs, with OUT/index.csv (path, label, label_name, source row, source label, "
            "...) and OUT/synthesis.json. K = n - 1 gives the paper's 6N (Fig. 12); the first k of every image "
            "are a k-run, so train on originals + kN with exprgan.datamodules.synthesized.SynthesizedDataModule "
            "(per_image: k). Resumable: existing images are skipped. Any --data.* option of `exprgan fit` "
            "overrides the config's data section."
        ),
        epilog="example: exprgan synthesize --ckpt runs/rafdb/checkpoints/last.ckpt --config experiments/rafdb.yaml "
        "--data.root /data/RAF-DB --per-image 6 --out synth/rafdb",
        allow_abbrev=False,
    )
    parser.add_argument("--ckpt", required=True, help="a trained exprgan checkpoint")
    parser.add_argument(
        "--config", action="append", required=True, help="experiment config whose data: section gives the images"
    )
    parser.add_argument("--per-image", type=int, required=True, help="K transfers per image (n - 1: all, the 6N)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the targets and references (0)")
    parser.add_argument("--batch-size", type=int, default=32, help="transfers per generator call (32)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    options, data_overrides = parser.parse_known_args(args)

    from jsonargparse import ArgumentError

    from exprgan.tools.checkpoints import load_model
    from exprgan.tools.data_config import load_datamodule

    try:
        datamodule = load_datamodule(options.config, data_overrides)
    except (ValueError, ArgumentError) as error:
        parser.error(str(error))
    try:
        model = load_model(options.ckpt, options.device)
        index, written = synthesize(
            model,
            datamodule,
            options.out,
            options.per_image,
            seed=options.seed,
            batch_size=options.batch_size,
            device=options.device,
            checkpoint=options.ckpt,
            progress=not options.no_progress,
        )
    except (FileNotFoundError, ValueError) as error:
        # a missing checkpoint, a model that does not fit the data, another synthesis in --out
        print(f"exprgan synthesize: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(
        f"exprgan synthesize: {len(index)} transfers of {len(datamodule.train_labels())} training images in "
        f"{options.out} "
        f"({written} written now, {len(index) - written} already there); index {Path(options.out) / INDEX_FILE}"
    )
