"""exprgan synthesize: every training image transferred to K other expressions (paper Fig. 12).

For training image i (label y) the other n - 1 expressions are put in a seeded random order
(numpy.random.default_rng([seed, i])); the first K of them are its targets (K = n - 1 gives
the paper's 6N on 7 classes). For target e the reference face is a seeded random training
image of e (default_rng([seed, i, e])), and the written image is G's transfer of e onto
image i. Neither choice depends on K: the first k transfers of a K-run are exactly a k-run,
so one 6N folder serves every kN of Fig. 12: train on originals + kN with
exprgan.datamodules.SynthesizedDataModule (per_image: k), which reads the first k per image.
Any --data.* option of `exprgan fit` overrides the config's data section.

Output folder:
  OUT/synthesis.json   checkpoint, seed, K, number and class names of the training images
  OUT/index.csv        one row per transfer: path (relative to OUT), label, label_name, source
                       (training row), source_label, source_label_name, source_path (when the
                       data set has files), rank (0..K-1), reference (training row)
  OUT/images/SSS/IIIIII_to{e}.png

Sources are the training images without augmentation. Resumable: images already there are
skipped; every file is written under a temporary name and renamed, so an interrupted run
leaves no half-written PNG; index.csv is written last.

example:
  exprgan synthesize --ckpt runs/rafdb/checkpoints/last.ckpt --config experiments/rafdb.yaml \\
      --data.root /data/RAF-DB --per-image 6 --out synth/rafdb
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from jsonargparse import ArgumentError
from torchvision.utils import save_image
from tqdm.auto import tqdm

from exprgan.cache import write_bytes_atomic, write_text_atomic
from exprgan.datamodules.base import PairDataModule
from exprgan.datamodules.pairs import class_members
from exprgan.joint import JointExprGAN
from exprgan.tools import tool_parser
from exprgan.tools.checkpoints import check_fits, load_model
from exprgan.tools.data_config import load_datamodule

INDEX_FILE = "index.csv"
META_FILE = "synthesis.json"
INDEX_COLUMNS = tuple("path label label_name source source_label source_label_name source_path rank reference".split())
# what must match for a run to add to a folder: the same training set, seed and checkpoint
SAME_SYNTHESIS = ("seed", "num_train", "labels_digest", "class_names", "image_size", "checkpoint_sha256")


def synthesis_plan(
    labels: Sequence[int], num_expressions: int, per_image: int, seed: int = 0, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Which transfers to make: ``per_image`` (``K <= n - 1``) rows per training image of ``labels``, in rank order.

    Returns :data:`INDEX_COLUMNS` (``source_path`` empty; names: ``class_names`` or the label numbers).
    """
    if not 0 <= per_image <= num_expressions - 1:
        raise ValueError(f"per_image must be in 0..{num_expressions - 1} (n - 1 other expressions), got {per_image}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_expressions)]
    members = class_members(labels, num_expressions, names)
    rows = []
    for source, label in enumerate(int(y) for y in labels):
        order = np.random.default_rng([seed, source]).permutation([e for e in range(num_expressions) if e != label])
        for rank, target in enumerate(int(e) for e in order[:per_image]):
            candidates = members[target]
            reference = int(candidates[np.random.default_rng([seed, source, target]).integers(len(candidates))])
            path = f"images/{source // 1000:03d}/{source:06d}_to{target}.png"
            rows.append((path, target, names[target], source, label, names[label], "", rank, reference))
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS))


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@torch.no_grad()
def synthesize(
    model: JointExprGAN,
    datamodule: PairDataModule,
    out: str | os.PathLike[str],
    per_image: int,
    seed: int = 0,
    batch_size: int = 32,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, int]:
    """Write the transfers of every training image to ``per_image`` other expressions.

    Args:
        model: a :class:`~exprgan.joint.JointExprGAN` in eval mode.
        datamodule: the training data, not set up yet (its augmentation is switched off here).
        out: output folder (see the module docstring); existing images are kept.
        per_image: ``K`` transfers per image, ``0 .. n - 1``.
        seed: seed of the targets and references.
        batch_size: transfers per generator call.
        checkpoint: the model's checkpoint file, recorded (with its hash) in ``synthesis.json``.
        progress: show a progress bar.

    Returns:
        The index (as written to ``index.csv``) and the number of images written now.

    Raises:
        ValueError: the model does not match the data, or ``out`` holds another synthesis.
    """
    out = Path(out)
    if getattr(datamodule, "augmentation", None) is not None:
        datamodule.augmentation = None  # the sources are the training images as they are
    datamodule.setup("fit")
    labels = [int(y) for y in datamodule.train_labels()]
    class_names = list(datamodule.class_names)
    image_size = int(getattr(datamodule, "image_size", model.hparams.image_size))
    check_fits(model, class_names, image_size, str(checkpoint or "the model"))
    plan = synthesis_plan(labels, len(class_names), per_image, seed, class_names)
    frame = datamodule.split_frame("train") if hasattr(datamodule, "split_frame") else {}
    if "path" in frame:  # a data set of files
        plan["source_path"] = frame["path"].astype(str).to_numpy()[plan["source"].to_numpy(dtype=int)]
    meta = {
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "checkpoint_sha256": None if checkpoint is None else _sha256(checkpoint),
        "seed": seed,
        "per_image": per_image,
        "num_train": len(labels),
        "labels_digest": hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16],
        "class_names": class_names,
        "image_size": image_size,
        "data": type(datamodule).__name__,
    }
    if (out / META_FILE).is_file():
        old = json.loads((out / META_FILE).read_text())
        for key in SAME_SYNTHESIS:
            if old.get(key) != meta[key]:
                raise ValueError(
                    f"{out} holds a synthesis with another {key} ({old.get(key)!r}, now {meta[key]!r}): "
                    "use another --out folder (or delete this one)"
                )
    write_text_atomic(out / META_FILE, json.dumps(meta, indent=2) + "\n")

    load, device = datamodule.load_train_image, next(model.parameters()).device
    pending = plan[[not (out / path).is_file() for path in plan["path"]]]
    with tqdm(total=len(pending), desc="synthesizing", unit="img", disable=not progress) as bar:
        for start in range(0, len(pending), batch_size):
            rows = pending.iloc[start : start + batch_size]
            identity = torch.stack([load(int(s)) for s in rows["source"]]).to(device)
            reference = torch.stack([load(int(r)) for r in rows["reference"]]).to(device)
            labels_a, labels_b = (torch.tensor(rows[c].tolist(), device=device) for c in ("source_label", "label"))
            for path, image in zip(rows["path"], model.transfer(identity, reference, labels_a, labels_b)):
                png = io.BytesIO()
                save_image(image * 0.5 + 0.5, png, format="PNG")  # [-1, 1] -> [0, 1] -> uint8
                write_bytes_atomic(out / path, png.getvalue())
            bar.update(len(rows))
    write_text_atomic(out / INDEX_FILE, plan.to_csv(index=False))
    return plan, len(pending)


def synthesize_main(args: Sequence[str]) -> None:
    """``exprgan synthesize``: transfers of every training image to K other expressions, with an index."""
    usage = "exprgan synthesize --ckpt CKPT --config FILE [--data.* VALUE ...] --per-image K --out DIR [options]"
    parser = tool_parser("exprgan synthesize", __doc__, usage=usage)
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
    try:
        datamodule = load_datamodule(options.config, data_overrides)
    except (OSError, ValueError, ArgumentError) as error:
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
            checkpoint=options.ckpt,
            progress=not options.no_progress,
        )
    except (OSError, ValueError) as error:  # a bad checkpoint, a model that does not fit the data, another synthesis
        parser.exit(1, f"{parser.prog}: {error}\n")
    print(
        f"exprgan synthesize: {len(index)} transfers of {len(datamodule.train_labels())} training images in "
        f"{options.out} ({written} written now, {len(index) - written} already there); "
        f"index {Path(options.out) / INDEX_FILE}"
    )
