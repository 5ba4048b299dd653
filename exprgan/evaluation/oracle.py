"""An oracle expression classifier for the rendered faces: the independent judge of transfers.

A transfer is judged by whether a classifier that has never seen the model recognises the
target expression in it (the field's "target accuracy", e.g. StarGAN's classification error
on edited faces). The oracle is a small CNN trained from scratch, seeded, on the *real*
rendered faces of the training identities only (or, in the in-the-wild regime, of a balanced
pool of extra identities); it shares no weights and no training with the model it judges.
It is trained offline (:mod:`exprgan.offline`) in about two minutes on two CPU cores for the
demo's 300 identities at 64 px, and cached on disk, so a test run never downloads anything.
Its own accuracy on the held-out real test faces is reported beside the target accuracy
(``test/oracle_acc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from exprgan.models import ExpressionCNN
from exprgan.offline import MIN_STEPS, cached, train_classifier

ORACLE_VERSION = 3  # part of the cache key: bump when the network or its training changes


# the oracle's network: five stages (24, 48, 48, 96, 192 channels; ~12M multiply-adds at 64 px)
ORACLE_WIDTH, ORACLE_STRIDES = 24, (2, 2, 1, 2, 2)


@torch.no_grad()
def oracle_predict(oracle: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The oracle's predicted class of every image ``[N, 3, H, W]``: ``[N]`` int64 on the images' device."""
    oracle.eval()
    device = next(oracle.parameters()).device
    parts = [oracle(images[i : i + batch_size].to(device)).argmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(parts).to(images.device) if parts else torch.empty(0, dtype=torch.long, device=images.device)


class RenderedData(Protocol):
    """What :func:`rendered_oracle` reads of a :class:`~exprgan.datamodules.SyntheticFacesDataModule`."""

    num_expressions: int
    split_sizes: dict[str, int]
    oracle_identities: int | None

    def fingerprint(self) -> dict[str, object]: ...

    def identities(self, split: str) -> range: ...

    def oracle_faces(self) -> tuple[torch.Tensor, torch.Tensor]: ...


def rendered_oracle(
    datamodule: RenderedData,
    cache_dir: str | Path,
    seed: int = 1234,
    epochs: int = 15,
    progress: bool = True,
    min_steps: int = MIN_STEPS,
) -> ExpressionCNN:
    """The oracle of a :class:`~exprgan.datamodules.SyntheticFacesDataModule`, trained on its
    ``oracle_faces()`` (the training identities' real faces, or the pool of
    ``oracle_identities``), or loaded from ``cache_dir`` when trained before.

    The cache file (``cache_dir/oracle-<hash>.pt``) is named by a hash of everything the
    oracle depends on: the rendered faces it trains on (renderer, size, seed, intensities, the
    in-the-wild regime, number of training identities or the pool's identity range; not the
    validation and test splits, which it never sees), the oracle's seed, epochs, fewest steps
    (:func:`~exprgan.offline.train_classifier`) and version.
    Trains in any grad mode (a Trainer's test loop runs under ``torch.inference_mode``).
    """
    data = dict(datamodule.fingerprint())
    if datamodule.oracle_identities is None:
        data["identities"] = datamodule.split_sizes["train"]  # train identities are 0 .. n-1 whatever the other splits
    else:  # the pool follows the test range: its identity numbers, not the splits' sizes
        pool = datamodule.identities("oracle")
        data["identities"] = {"oracle": [pool.start, pool.stop]}
    key = {"data": data, "classes": datamodule.num_expressions, "seed": seed, "epochs": epochs, "min_steps": min_steps}
    key["version"] = ORACLE_VERSION

    def train(oracle: nn.Module) -> None:
        images, labels = datamodule.oracle_faces()
        train_classifier(
            oracle, images, labels, epochs=epochs, min_steps=min_steps, seed=seed, desc="oracle", progress=progress
        )

    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng():  # the global RNG untouched
        torch.manual_seed(seed)  # the initial weights
        oracle = ExpressionCNN(datamodule.num_expressions, ORACLE_WIDTH, ORACLE_STRIDES)
        return cached(oracle, cache_dir, "oracle", key, train)
