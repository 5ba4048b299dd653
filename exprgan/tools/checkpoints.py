"""Loading a trained :class:`~exprgan.joint.JointExprGAN` for inference, offline."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from exprgan.joint import JointExprGAN


def load_model(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> JointExprGAN:
    """A trained model from a Lightning checkpoint, in eval mode on ``device``.

    Every weight comes from the checkpoint, so no ImageNet file is needed even when the run
    trained from one (``pretrained`` and ``perceptual_pretrained`` are switched off while
    the networks are built, then the checkpoint's weights are loaded).

    Raises:
        FileNotFoundError: no such checkpoint file.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    model = JointExprGAN.load_from_checkpoint(
        path, map_location=device, weights_only=True, pretrained=False, perceptual_pretrained=False
    )
    return model.eval()
