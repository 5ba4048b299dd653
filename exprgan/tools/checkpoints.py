"""Loading a trained :class:`~exprgan.joint.JointExprGAN` for inference, offline."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from exprgan.joint import RETIRED_HPARAMS, JointExprGAN


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
        hparams = state["hyper_parameters"]
        hparams = {k: v for k, v in hparams.items() if not k.startswith("_") and k not in RETIRED_HPARAMS}
        hparams["networks"] = {**hparams["networks"], "pretrained": False, "perceptual_pretrained": False}
        model = JointExprGAN(**hparams)
        model.load_state_dict(state["state_dict"])
    except Exception as error:  # a truncated or foreign file: say which, without a traceback
        raise ValueError(f"{path}: not a loadable exprgan checkpoint ({type(error).__name__}: {error})") from error
    return model.to(device).eval()


def check_fits(model: JointExprGAN, class_names: Sequence[str], image_size: int, where: str) -> None:
    """Raise ``ValueError`` (naming ``where``) when ``model`` was trained on other expressions or image size."""
    trained, data = (model.hparams.num_expressions, model.hparams.image_size), (len(class_names), image_size)
    if trained != data:
        raise ValueError(
            f"{where}: the model was trained on {trained[0]} expressions at {trained[1]} px, the data gives "
            f"{data[0]} ({list(class_names)}) at {data[1]} px (set --data.init_args.image_size)"
        )


def label_index(label: str | int, class_names: Sequence[str]) -> int:
    """The index of expression ``label``: a class name (any case) or an index.

    Raises:
        ValueError: no such class; the message lists the valid names.
    """
    names = [str(name).lower() for name in class_names]
    text = str(label).strip()
    if text.lower() in names:
        return names.index(text.lower())
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise ValueError(
        f"unknown expression {text!r}: the model's expressions are {', '.join(map(str, class_names))} "
        f"(or 0-{len(names) - 1})"
    )
