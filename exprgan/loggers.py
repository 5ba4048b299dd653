"""Logging: W&B by default, offline unless the user has logged in; images and the training pairs' grid."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid


def wandb_logged_in() -> bool:
    """Whether W&B credentials are available (``WANDB_API_KEY`` or a ``wandb login``)."""
    if os.environ.get("WANDB_MODE", "").lower() in {"offline", "disabled", "dryrun"}:
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return "api.wandb.ai" in Path(os.environ.get("NETRC", Path.home() / ".netrc")).read_text()
    except OSError:
        return False


class AutoWandbLogger(WandbLogger):
    """A :class:`~pytorch_lightning.loggers.WandbLogger` that runs offline unless logged in.

    No account is needed to train: without credentials the run is written under
    ``save_dir/wandb/offline-run-*`` and can be uploaded later with ``wandb sync``.

    Args:
        offline: force offline (True) or online (False); None decides from the credentials.
        **kwargs: passed to ``WandbLogger`` (``project``, ``name``, ``save_dir``, ...).
    """

    def __init__(
        self, offline: bool | None = None, project: str = "exprgan", save_dir: str = "runs", **kwargs: Any
    ) -> None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        offline = not wandb_logged_in() if offline is None else offline
        super().__init__(offline=offline, project=project, save_dir=save_dir, **kwargs)


def log_image(logger: Logger | None, key: str, image: torch.Tensor, step: int) -> None:
    """Log a ``[3, H, W]`` image in ``[0, 1]`` with whichever logger is attached."""
    if isinstance(logger, WandbLogger):
        pixels = image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        logger.log_image(key, [pixels], step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, image, global_step=step)


def pair_grid(rows: Sequence[torch.Tensor], max_samples: int = 8) -> torch.Tensor:
    """One row per tensor (``[N, 3, H, W]`` in ``[-1, 1]``), ``max_samples`` columns -> ``[3, h, w]`` in ``[0, 1]``.

    With ``rows = [I_a, I_b, I_c, I_d, I'_a, I'_b]`` column ``k`` shows pair ``k``: the two
    inputs, the two transfers and the two reconstructions.
    """
    columns = min(max_samples, *(len(r) for r in rows))
    images = torch.cat([r[:columns].detach().float().cpu() for r in rows])
    return make_grid(images, nrow=columns, padding=1, normalize=True, value_range=(-1, 1))
