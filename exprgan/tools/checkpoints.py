"""Loading a trained :class:`~exprgan.joint.JointExprGAN` for inference, offline."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from exprgan.joint import JointExprGAN


def load_model(checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu") -> JointExprGAN:
    """A trained model from a Lightning checkpoint, in eval mode on ``device``.

    Every weight comes from the checkpoint, so no ImageNet file is needed even when the run
    trained from one (the networks are built without pretrained weights, then the
    checkpoint's weights are loaded).

    Raises:
        FileNotFoundError: no such checkpoint file.
        ValueError: the file is not a loadable exprgan checkpoint (truncated, another model's,
            ...); the message names it.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        hparams = {key: value for key, value in state["hyper_parameters"].items() if not key.startswith("_")}
        hparams["networks"] = {**hparams["networks"], "pretrained": False, "perceptual_pretrained": False}
        model = JointExprGAN(**hparams)
        model.load_state_dict(state["state_dict"])
    except Exception as error:  # a truncated or foreign file: say which, without a traceback
        raise ValueError(f"{path}: not a loadable exprgan checkpoint ({type(error).__name__}: {error})") from error
    return model.to(device).eval()
