"""Loading ImageNet weights: torchvision's weights API online, an explicit file offline."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import WeightsEnum


class PretrainedWeightsError(FileNotFoundError):
    """Pretrained weights were asked for but cannot be found or fetched."""


def expected_cache_file(weights: WeightsEnum) -> Path:
    """Where torchvision's weights API keeps (or would download) ``weights``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict saved with ``torch.save`` (a bare state dict or ``{"state_dict": ...}``)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def load_pretrained(model: nn.Module, weights: WeightsEnum, weights_path: str | os.PathLike[str] | None) -> None:
    """Load ``weights`` into ``model`` (a torchvision model, or the part of one it keeps), in place.

    With ``weights_path`` the file is read and nothing is fetched. Without it torchvision's
    weights API is used: the cached file under ``$TORCH_HOME/hub/checkpoints`` or, with
    internet, a download into it. Offline and without the file, a
    :class:`PretrainedWeightsError` names the file expected and how to provide it.
    """
    if weights_path is not None:
        state = load_state_dict_file(weights_path)
        try:
            model.load_state_dict(_kept(model, state))
        except RuntimeError as error:
            raise PretrainedWeightsError(f"{weights_path} does not match {type(model).__name__}: {error}") from error
        return
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise PretrainedWeightsError(
            f"pretrained weights {weights} are not available offline: expected the file {expected_cache_file(weights)} "
            f"(downloadable from {weights.url}). Put it there, or pass weights_path=<file> "
            f"(a torchvision state dict), or use pretrained=False. Cause: {error}"
        ) from error
    model.load_state_dict(_kept(model, state))


def _kept(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that ``model`` has: a model built without its head (VGG's
    120M-parameter classifier) ignores the head's weights; missing ones still raise."""
    own = model.state_dict().keys()
    return {k: v for k, v in state.items() if k in own}
