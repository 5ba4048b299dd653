"""Networks trained offline on a data set's real training faces, cached on disk: the oracle that
judges transfers (:mod:`exprgan.evaluation.oracle`), a plain supervised classifier trained by one
seeded loop and cached under a name that hashes what it depends on, in the run's ``offline/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

# The fewest optimiser steps of train_classifier, whatever the set's size: 15 epochs of the
# demo's 2,100 training faces are 495 steps; of 15 identities' 105 faces, 30.
MIN_STEPS = 400
T = TypeVar("T")


def run_dir(trainer: pl.Trainer) -> Path:
    """A run's folder: the logger's ``save_dir``, else the trainer's ``default_root_dir``."""
    return Path(getattr(trainer.logger, "save_dir", None) or trainer.default_root_dir)


def offline_dir(trainer: pl.Trainer) -> Path:
    """Where a run caches the networks trained offline for it: ``offline/`` in :func:`run_dir`."""
    return run_dir(trainer) / "offline"


def rank_zero_first(trainer: pl.Trainer, name: str, make: Callable[[], T]) -> T:
    """``make()`` on global rank 0 first (it trains and caches), then on the other ranks
    (they load the cache): one training, no two ranks writing one file."""
    zero = trainer.is_global_zero
    if not zero:
        trainer.strategy.barrier(name)
    result = make()
    if zero:
        trainer.strategy.barrier(name)
    return result


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shifts of up to 2 pixels, a brightness change and pixel noise: a classifier of
    geometry, not of exact pixel values (a generator's outputs are a little blurred and noisy)."""
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    shifted = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
    gain = 1.0 + 0.1 * (torch.rand(len(images), 1, 1, 1, generator=generator) - 0.5)
    noise = 0.04 * torch.randn(images.shape, generator=generator)
    return (shifted * gain + noise).clamp(-1.0, 1.0)


def train_classifier(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 1234,
    desc: str = "training",
    progress: bool = True,
    min_steps: int = MIN_STEPS,
) -> nn.Module:
    """Train ``network`` to classify ``images [N, 3, H, W]`` (in ``[-1, 1]``) as ``labels [N]``.

    Adam with a one-cycle schedule on :func:`augment`-ed batches; deterministic given
    ``seed`` (its own generator: the global RNG is untouched). ``network`` maps images to
    logits. Returns it in eval mode.

    ``epochs`` passes over the images, more on a small set: as many whole epochs as reach
    ``min_steps`` optimiser steps (15 epochs of 105 faces are 30 steps, after which a network
    answers one class; ``min_steps=0``: exactly ``epochs``).
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (> 0), got {len(images)} images, {len(labels)} labels")
    generator = torch.Generator().manual_seed(seed)
    per_epoch = -(-len(images) // batch_size)
    epochs = max(epochs, -(-min_steps // per_epoch))
    steps = epochs * per_epoch
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    network.train()
    with tqdm(total=steps, desc=desc, disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), batch_size):
                index = order[start : start + batch_size]
                loss = F.cross_entropy(network(augment(images[index], generator)), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update()
    return network.eval()


def cached(
    network: nn.Module, cache_dir: str | Path, name: str, key: Mapping[str, Any], train: Callable[[nn.Module], None]
) -> nn.Module:
    """``network`` with the weights cached as ``cache_dir/name-<hash of key>.pt``, or, when
    there are none yet, trained in place by ``train(network)`` and then cached (written
    atomically: a crashed run leaves no half-written file). Returns it in eval mode."""
    digest = hashlib.sha1(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{name}-{digest}.pt"
    if path.is_file():
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        print(f"exprgan: {name} loaded from {path}")
        return network.eval()
    train(network)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(network.state_dict(), tmp)
    tmp.replace(path)
    print(f"exprgan: {name} trained and cached in {path}")
    return network.eval()
