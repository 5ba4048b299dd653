"""Fréchet Inception Distance (paper Eq. 13) with torchmetrics, offline; per-expression FID (Tables V, VI).

FID is torchmetrics' ``FrechetInceptionDistance`` on torch-fidelity's InceptionV3 resizing as
TensorFlow does, so values equal torch-fidelity's; its weights only ever come from a local file.
Ours: the per-expression loop of Tables V-VI and the side-by-side tables.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.utils import glob_samples_paths
from torchmetrics.image.fid import FrechetInceptionDistance
from tqdm.auto import tqdm

from exprgan.evaluation.tables import markdown_table
from exprgan.models.pretrained import PretrainedWeightsError

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
IMAGE_EXTENSIONS = "png,jpg,jpeg"  # torch-fidelity's default for folders

ImageSource = torch.Tensor | str | os.PathLike  # [N, 3, H, W] in [-1, 1] or uint8, or a folder of images


class InceptionWeightsError(PretrainedWeightsError):
    """The FID Inception weights file is missing or unreadable (never downloaded)."""


def inception_fid(
    inception_weights: str | os.PathLike[str] | None = None, features: int = 2048
) -> FrechetInceptionDistance:
    """torchmetrics' FID metric on torch-fidelity's InceptionV3, loaded from a local file.

    Feed it uint8 images ``[N, 3, H, W]`` of any size (resized to 299 inside); move it with
    ``.to(device)`` and ``reset()`` it between comparisons.

    Args:
        inception_weights: the weights file; None: where torch-fidelity caches it,
            ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
        features: the Inception layer compared: 2048 (the standard FID) or 64, 192, 768
            (faster; not comparable with published values).

    Raises:
        InceptionWeightsError: the file is missing (the message names it and where to get
            it) or is not InceptionV3's state dict.
    """
    default = inception_weights is None
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE if default else Path(inception_weights)
    if not path.is_file():
        raise InceptionWeightsError(
            f"Inception weights file not found: {path}. FID needs torch-fidelity's InceptionV3 weights "
            f"({INCEPTION_WEIGHTS_FILE}, from {URL_INCEPTION_V3}); exprgan never downloads them."
            + (" Pass inception_weights=PATH (CLI: --inception-weights PATH) or put the file there." if default else "")
        )
    try:
        return FrechetInceptionDistance(features, feature_extractor_weights_path=str(path), antialias=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, AttributeError) as error:
        raise InceptionWeightsError(
            f"{path} is not torch-fidelity's InceptionV3 state dict ({INCEPTION_WEIGHTS_FILE}): {error}"
        ) from error


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` float in ``[-1, 1]`` (clamped) or uint8 -> uint8 RGB ``[N, 3, H, W]``."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 3, H, W] (or 1 channel), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        images = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def image_batches(source: ImageSource, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """uint8 ``[B, 3, H, W]`` batches of a tensor or of a folder's png/jpg files (sorted, as torch-fidelity)."""
    if isinstance(source, torch.Tensor):
        for start in range(0, len(source), batch_size):
            yield to_uint8(source[start : start + batch_size])
        return
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = glob_samples_paths(str(folder), False, IMAGE_EXTENSIONS, verbose=False)
    if not files:
        raise ValueError(f"no images ({IMAGE_EXTENSIONS}) in {folder}")
    yield from DataLoader(ImagesPathDataset(files), batch_size=batch_size)  # uint8 [B, 3, H, W]


def fid(images1: ImageSource, images2: ImageSource, metric: FrechetInceptionDistance, batch_size: int = 64) -> float:
    """FID between two sets of images (tensors in ``[-1, 1]`` or uint8, or folders), at least 2 each.

    Args:
        images1, images2: the real and the generated set (FID is symmetric).
        metric: e.g. ``inception_fid(path).to(device)``; it is reset here.
        batch_size: images per Inception pass.
    """
    metric.reset()
    for real, source in ((True, images1), (False, images2)):
        for batch in image_batches(source, batch_size):
            metric.update(batch.to(metric.device), real=real)
    return float(metric.compute())


@torch.no_grad()
def per_expression_fid(
    transfer: Callable[..., torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    metric: FrechetInceptionDistance,
    targets: Sequence[int] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """FID of every target expression's transfers against its real faces (paper Tables V, VI).

    For each target expression ``e``, every test face of another expression is given
    expression ``e`` by ``transfer``, with a reference face drawn at random from the test
    faces of ``e`` (seeded by ``(seed, e)``: every model sees the same pairs); the FID is
    taken between these transfers and the real test faces of ``e``.

    Args:
        transfer: ``(identity_images, reference_images, identity_labels, reference_labels) -> images``
            (``[B, 3, H, W]`` in ``[-1, 1]``), e.g. :meth:`~exprgan.joint.JointExprGAN.transfer`.
        images: test faces ``[N, 3, H, W]`` in ``[-1, 1]``.
        labels: their expressions ``[N]``.
        class_names: expression names, in label order (the table's row names).
        metric: e.g. ``inception_fid(path).to(device)``, reset for every expression.
        targets: expressions to evaluate (default all; the paper leaves out neutral).
        batch_size: pairs per ``transfer`` call and images per Inception pass.
        device: where images are sent for ``transfer``.
        seed: seed of the reference draws.
        progress: show a progress bar.

    Returns:
        One row per target expression (index ``expression``) and a last ``mean`` row;
        columns ``fid``, ``real`` (faces of ``e``) and ``generated`` (transfers); the
        ``mean`` row holds the mean FID and the total counts.
    """
    labels = labels.reshape(-1).long().cpu()
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be [N, 3, H, W] with N = {len(labels)} labels, got {tuple(images.shape)}")
    rows = []
    for e in tqdm(range(len(class_names)) if targets is None else targets, "per-expression FID", disable=not progress):
        real, sources = torch.nonzero(labels == e).flatten(), torch.nonzero(labels != e).flatten()
        if len(real) < 2 or len(sources) < 2:
            raise ValueError(
                f"expression {class_names[e]!r}: FID needs at least 2 real and 2 other faces, "
                f"got {len(real)} and {len(sources)}"
            )
        references = real[torch.from_numpy(np.random.default_rng([seed, e]).integers(len(real), size=len(sources)))]
        metric.reset()
        for batch in image_batches(images[real], batch_size):
            metric.update(batch.to(metric.device), real=True)
        for start in range(0, len(sources), batch_size):
            s, r = sources[start : start + batch_size], references[start : start + batch_size]
            out = transfer(images[s].to(device), images[r].to(device), labels[s].to(device), labels[r].to(device))
            metric.update(to_uint8(out).to(metric.device), real=False)
        value = float(metric.compute())
        rows.append({"expression": class_names[e], "fid": value, "real": len(real), "generated": len(sources)})
    table = pd.DataFrame(rows).set_index("expression")
    table.loc["mean"] = [table["fid"].mean(), table["real"].sum(), table["generated"].sum()]
    return table.astype({"real": int, "generated": int})


def write_fid_comparison(
    tables: Mapping[str, pd.DataFrame], directory: str | os.PathLike[str], stem: str = "fid", digits: int = 2
) -> dict[str, Path]:
    """Several :func:`per_expression_fid` tables side by side, as Tables V/VI (one row per model), written
    as ``<stem>.md`` (lowest FID of each column in bold) and ``<stem>.csv``; returns their paths.

    Args:
        tables: ``{model name: per_expression_fid table}``, in row order.
        directory: created if missing.
        stem: file name without extension.
        digits: decimals in the markdown table.
    """
    if not tables:
        raise ValueError("no FID tables to compare")
    comparison = pd.DataFrame({name: table["fid"] for name, table in tables.items()}).T
    comparison.index.name, comparison.columns.name = "model", None
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / f"{stem}.md", "csv": out / f"{stem}.csv"}
    paths["markdown"].write_text(markdown_table(comparison, digits=digits, bold="min"))
    comparison.to_csv(paths["csv"])
    return paths
