"""Fréchet Inception Distance with torch-fidelity's InceptionV3, offline; per-expression FID (Tables V, VI).

The network is torch-fidelity's ``inception-v3-compat`` (the TensorFlow FID Inception,
2048-d pool features), always loaded from a local file: ``inception_weights=PATH`` or the
file torch-fidelity itself would have cached (``$TORCH_HOME/hub/checkpoints/``). Nothing is
downloaded; a missing file raises :class:`InceptionWeightsError` naming it.

The features are torch-fidelity's own, so :func:`fid` equals
``torch_fidelity.calculate_metrics(..., fid=True)`` on the same images (to float rounding;
see :func:`frechet_distance_from_features`).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.utils import glob_samples_paths
from tqdm.auto import tqdm

from exprgan.evaluation.tables import markdown_table
from exprgan.models.pretrained import PretrainedWeightsError

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = URL_INCEPTION_V3
FEATURE_EXTRACTOR = "inception-v3-compat"  # torch-fidelity's name of the FID network
FEATURE_LAYER = "2048"  # torch-fidelity's default FID features
IMAGE_EXTENSIONS = "png,jpg,jpeg"  # torch-fidelity's default for folders

ImageSource = torch.Tensor | str | os.PathLike
"""``[N, 3, H, W]`` images (float in ``[-1, 1]`` or uint8) or a folder of image files."""

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
"""uint8 images ``[N, 3, H, W]`` -> features ``[N, D]`` (an :class:`InceptionFeatures`)."""

TransferFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(identity_images, reference_images, identity_labels, reference_labels) -> images``, as
:meth:`exprgan.joint.JointExprGAN.transfer`; images ``[B, 3, H, W]`` in ``[-1, 1]``."""


class InceptionWeightsError(PretrainedWeightsError):
    """The FID Inception weights file is missing or unreadable (never downloaded)."""


# --- weights ------------------------------------------------------------------------------


def default_inception_weights_path() -> Path:
    """Where torch-fidelity caches its Inception weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def resolve_inception_weights(inception_weights: str | os.PathLike[str] | None) -> Path:
    """The Inception weights file to load: ``inception_weights`` or torch-fidelity's cached file.

    Args:
        inception_weights: path of the file; None: torch-fidelity's cache location.

    Raises:
        InceptionWeightsError: the file does not exist; the message names it and where to get it.
    """
    how = (
        f"FID needs torch-fidelity's InceptionV3 weights ({INCEPTION_WEIGHTS_FILE}, downloadable from "
        f"{INCEPTION_WEIGHTS_URL}); exprgan never downloads them."
    )
    if inception_weights is not None:
        path = Path(inception_weights)
        if not path.is_file():
            raise InceptionWeightsError(f"Inception weights file not found: {path}. {how}")
        return path
    path = default_inception_weights_path()
    if not path.is_file():
        raise InceptionWeightsError(
            f"Inception weights not found: expected the file {path} (where torch-fidelity caches "
            f"{INCEPTION_WEIGHTS_FILE}). {how} Put the file there, or pass inception_weights=PATH "
            "(CLI: --inception-weights PATH)."
        )
    return path


class _UntrainedInception(FeatureExtractorInceptionV3):
    """torch-fidelity's network built without weights (its constructor loads an empty dict, skipped)."""

    def load_state_dict(self, state_dict: Mapping, strict: bool = True, assign: bool = False):  # type: ignore[override]
        if not state_dict:
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def save_random_inception_weights(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write randomly initialised weights in the layout of torch-fidelity's InceptionV3 file.

    For tests and offline smoke runs only: FID values computed with them are not comparable
    to published ones. Convolutions get He (fan-in) initialisation so that features keep a
    useful scale through the whole depth of the network.

    Args:
        path: the file to write (``torch.save`` of a state dict), folder created.
        seed: seed of the initialisation.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _UntrainedInception(FEATURE_EXTRACTOR, [FEATURE_LAYER], feature_extractor_weights_path=str(empty))
            for module in net.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


# --- images -------------------------------------------------------------------------------


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` float in ``[-1, 1]`` (clamped) or uint8 -> uint8 RGB ``[N, 3, H, W]``."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 3, H, W] (or 1 channel), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        images = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _folder_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = glob_samples_paths(str(folder), False, IMAGE_EXTENSIONS, verbose=False)
    if not files:
        raise ValueError(f"no images ({IMAGE_EXTENSIONS}) in {folder}")
    return files


def count_images(source: ImageSource) -> int:
    """Number of images in a tensor or folder (files as torch-fidelity finds them)."""
    return len(source) if isinstance(source, torch.Tensor) else len(_folder_files(Path(source)))


def image_batches(source: ImageSource, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """uint8 ``[B, 3, H, W]`` batches of a tensor or of a folder (sorted file names, as torch-fidelity).

    Args:
        source: images ``[N, 3, H, W]`` (float in ``[-1, 1]`` or uint8) or a folder of png/jpg files.
        batch_size: images per batch.
    """
    if isinstance(source, torch.Tensor):
        for start in range(0, len(source), batch_size):
            yield to_uint8(source[start : start + batch_size])
        return
    dataset = ImagesPathDataset(_folder_files(Path(source)))
    for start in range(0, len(dataset), batch_size):
        yield torch.stack([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


# --- features and the distance ----------------------------------------------------------------


class InceptionFeatures(nn.Module):
    """torch-fidelity's FID InceptionV3: uint8 images ``[N, 3, H, W]`` (any size) -> pool features ``[N, 2048]``.

    Images are resized to 299 inside, as torch-fidelity does. Move it with ``.to(device)``.

    Args:
        inception_weights: local weights file; None: torch-fidelity's cached file.
    """

    def __init__(self, inception_weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        path = resolve_inception_weights(inception_weights)
        try:
            self.net = FeatureExtractorInceptionV3(
                FEATURE_EXTRACTOR, [FEATURE_LAYER], feature_extractor_weights_path=str(path)
            )
        except (RuntimeError, EOFError, pickle.UnpicklingError, AttributeError) as error:
            raise InceptionWeightsError(
                f"{path} is not torch-fidelity's InceptionV3 state dict ({INCEPTION_WEIGHTS_FILE}): {error}"
            ) from error
        self.weights_path = path

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_uint8(images).to(self.device))[0].cpu()  # [N, 2048], float32


@torch.no_grad()
def extract_features(
    features: FeatureFn, source: ImageSource, batch_size: int = 64, progress: bool = False, desc: str = "features"
) -> torch.Tensor:
    """Features ``[N, D]`` of every image of ``source``, in batches.

    Args:
        features: e.g. an :class:`InceptionFeatures`.
        source: images (float in ``[-1, 1]`` or uint8) or a folder.
        batch_size: images per forward pass (64: torch-fidelity's default).
        progress: show a progress bar.
        desc: its label.
    """
    total = count_images(source)
    out = []
    with tqdm(total=total, desc=desc, unit="img", leave=False, disable=not progress) as bar:
        for batch in image_batches(source, batch_size):
            out.append(features(batch).detach().cpu())
            bar.update(len(batch))
    return torch.cat(out)


def fid_statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` of features ``[N, D]`` (torch-fidelity's computation)."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"FID needs features [N, D] of at least 2 images, got shape {tuple(features.shape)}")
    array = features.cpu().numpy()
    return np.mean(array, axis=0), np.cov(array, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians (paper Eq. 13).

    torch-fidelity's computation: ``tr (S1 S2)^(1/2)`` is the sum of the square roots of the
    eigenvalues of ``S1 S2`` (``O(D^3)``: seconds for D = 2048 on one core).

    Args:
        mu1, sigma1: mean ``[D]`` and covariance ``[D, D]`` of the first set.
        mu2, sigma2: the same of the second set.
    """
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape} vs {mu2.shape}, {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def frechet_distance_from_features(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """The Fréchet distance of two feature sets ``[N1, D]``, ``[N2, D]`` (FID on Inception features).

    With fewer samples than dimensions (the usual case per expression) it never forms a
    ``[D, D]`` matrix: with centred features ``A1, A2``, the non-zero eigenvalues of
    ``S1 S2`` are the squared singular values of ``A1 A2^T / sqrt((N1 - 1)(N2 - 1))``, so
    ``tr (S1 S2)^(1/2)`` is that matrix's nuclear norm and ``tr S = |A|_F^2 / (N - 1)``.
    Exact, and without the rounding noise the ``D - N`` zero eigenvalues add to
    :func:`frechet_distance` (torch-fidelity's route, used here when both sets have more
    samples than dimensions).

    Args:
        features1: features of the first set (at least 2 rows).
        features2: features of the second set, same ``D``.
    """
    for f in (features1, features2):
        if f.ndim != 2 or len(f) < 2:
            raise ValueError(f"FID needs features [N, D] of at least 2 images, got shape {tuple(f.shape)}")
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(f"feature sizes differ: {features1.shape[1]} vs {features2.shape[1]}")
    n1, n2, dims = len(features1), len(features2), features1.shape[1]
    if min(n1, n2) > dims:
        return frechet_distance(*fid_statistics(features1), *fid_statistics(features2))
    f1, f2 = features1.detach().cpu().double().numpy(), features2.detach().cpu().double().numpy()
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1, a2 = f1 - mu1, f2 - mu2
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.sum(a1 * a1) / (n1 - 1) + np.sum(a2 * a2) / (n2 - 1) - 2 * tr_covmean)


def fid(
    images1: ImageSource,
    images2: ImageSource,
    inception_weights: str | os.PathLike[str] | None = None,
    features: FeatureFn | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> float:
    """FID between two sets of images (tensors in ``[-1, 1]`` or uint8, or folders).

    Args:
        images1, images2: the two sets (at least 2 images each).
        inception_weights: local Inception weights file (None: torch-fidelity's cached file);
            ignored when ``features`` is given.
        features: a feature extractor to reuse (e.g. an :class:`InceptionFeatures`).
        batch_size: images per forward pass.
        device: where a new :class:`InceptionFeatures` runs.
        progress: show progress bars.
    """
    if features is None:
        features = InceptionFeatures(inception_weights).to(device)
    features1 = extract_features(features, images1, batch_size, progress, "FID set 1")
    features2 = extract_features(features, images2, batch_size, progress, "FID set 2")
    return frechet_distance_from_features(features1, features2)


# --- per-expression FID (Tables V and VI) -------------------------------------------------------


@torch.no_grad()
def per_expression_fid(
    transfer: TransferFn,
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    inception_weights: str | os.PathLike[str] | None = None,
    features: FeatureFn | None = None,
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
        transfer: e.g. ``model.eval().transfer`` of a :class:`~exprgan.joint.JointExprGAN`.
        images: test faces ``[N, 3, H, W]`` in ``[-1, 1]``.
        labels: their expressions ``[N]``.
        class_names: expression names, in label order (the table's row names).
        inception_weights: local Inception weights file (None: torch-fidelity's cached file);
            ignored when ``features`` is given.
        features: a feature extractor to reuse across calls (e.g. an :class:`InceptionFeatures`).
        targets: expressions to evaluate (default all; the paper leaves out neutral).
        batch_size: pairs per ``transfer`` call and images per Inception pass.
        device: where images are sent for ``transfer`` and where a new Inception net runs.
        seed: seed of the reference draws.
        progress: show progress bars.

    Returns:
        One row per target expression (index ``expression``) and a last ``mean`` row;
        columns ``fid``, ``real`` (faces of ``e``) and ``generated`` (transfers); the
        ``mean`` row holds the mean FID and the total counts.
    """
    labels = labels.reshape(-1).long().cpu()
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be [N, 3, H, W] with N = {len(labels)} labels, got {tuple(images.shape)}")
    if features is None:
        features = InceptionFeatures(inception_weights).to(device)
    targets = list(range(len(class_names))) if targets is None else list(targets)

    rows = []
    for e in tqdm(targets, desc="per-expression FID", disable=not progress):
        real = torch.nonzero(labels == e).flatten()
        sources = torch.nonzero(labels != e).flatten()
        if len(real) < 2 or len(sources) < 2:
            raise ValueError(
                f"expression {class_names[e]!r}: FID needs at least 2 real and 2 other faces, "
                f"got {len(real)} and {len(sources)}"
            )
        rng = np.random.default_rng([seed, e])
        references = real[torch.from_numpy(rng.integers(len(real), size=len(sources)))]

        generated = []
        for start in tqdm(
            range(0, len(sources), batch_size), desc=f"transfer to {class_names[e]}", leave=False, disable=not progress
        ):
            s, r = sources[start : start + batch_size], references[start : start + batch_size]
            out = transfer(images[s].to(device), images[r].to(device), labels[s].to(device), labels[r].to(device))
            generated.append(features(to_uint8(out)).cpu())
        real_features = extract_features(features, images[real], batch_size, progress, f"real {class_names[e]}")
        value = frechet_distance_from_features(real_features, torch.cat(generated))
        rows.append({"expression": class_names[e], "fid": value, "real": len(real), "generated": len(sources)})

    table = pd.DataFrame(rows).set_index("expression")
    table.loc["mean"] = [table["fid"].mean(), table["real"].sum(), table["generated"].sum()]
    return table.astype({"real": int, "generated": int})


def fid_comparison(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Several :func:`per_expression_fid` tables side by side, as Tables V/VI: one row per model.

    Args:
        tables: ``{model name: table}`` (e.g. ``{"No_InterL": ..., "Ours": ...}``).
    """
    if not tables:
        raise ValueError("no FID tables to compare")
    comparison = pd.DataFrame({name: table["fid"] for name, table in tables.items()}).T
    comparison.index.name = "model"
    comparison.columns.name = None
    return comparison


def write_fid_comparison(
    tables: Mapping[str, pd.DataFrame], directory: str | os.PathLike[str], stem: str = "fid", digits: int = 2
) -> dict[str, Path]:
    """Write :func:`fid_comparison` as ``<stem>.md`` (lowest FID of each column in bold) and ``<stem>.csv``.

    Args:
        tables: ``{model name: per_expression_fid table}``.
        directory: created if missing.
        stem: file name without extension.
        digits: decimals in the markdown table.
    """
    comparison = fid_comparison(tables)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / f"{stem}.md", "csv": out / f"{stem}.csv"}
    paths["markdown"].write_text(markdown_table(comparison, digits=digits, bold="min"))
    comparison.to_csv(paths["csv"])
    return paths
