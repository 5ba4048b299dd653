"""Typed groups of ``JointExprGAN``'s settings: the networks and the optimisers.

Each is a frozen dataclass with the paper's values as defaults. In a config they are nested
mappings (``model: {networks: {backbone: vgg19}, optimization: {gan_lr: 2e-4}}``); in a
checkpoint's hyperparameters, plain dictionaries (``dataclasses.asdict``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from exprgan.losses.perceptual import LAYER_WEIGHTS
from exprgan.models.backbones import BackboneName
from exprgan.models.discriminator import Conditioning

Group = TypeVar("Group")


@dataclass(frozen=True)
class Networks:
    """How G, D1/D2, C and the perceptual network are built (Table I).

    Attributes:
        backbone: classifier backbone (``vgg19`` in the paper; see
            :class:`~exprgan.models.ExpressionClassifier`).
        pretrained: ImageNet weights for the classifier backbone.
        backbone_weights: local file of those weights (never downloads).
        classifier_hidden_features: width of the classifier's two hidden layers (4096).
        expression_representation: the classifier reads ``G_enc(I)`` (off: the No_ExpR ablation).
        perceptual_pretrained: ImageNet VGG19 for the perceptual loss (the paper's).
        perceptual_weights: local ``vgg19`` weights file for it.
        perceptual_layer_weights: weights of relu1_1, relu2_1, ... (paper: 1/32 .. 1); a
            shorter list uses fewer, cheaper layers.
        gan_width: channels of the first G_enc and D block (64 in the paper; see
            :class:`~exprgan.models.Generator`).
        decoder_negative_slope: LeakyReLU slope of G_dec (0.2; 0 = ReLU, the authors' release).
        generator_identity_init: G starts as the identity map (its residual zeroed).
        decoder_output_block: not in the paper; G_dec ends with a block at full resolution
            and a 3x3 convolution instead of one deconv from half resolution (see
            :class:`~exprgan.models.decoder.Decoder`).
        discriminator_conditioning: how D1/D2 read the label: ``"concat"`` (the paper: one-hot
            input channels) or ``"projection"`` (Miyato & Koyama 2018; see
            :class:`~exprgan.models.ConditionalDiscriminator`).
    """

    backbone: BackboneName = "vgg19"
    pretrained: bool = True
    backbone_weights: str | None = None
    classifier_hidden_features: int = 4096
    expression_representation: bool = True
    perceptual_pretrained: bool = True
    perceptual_weights: str | None = None
    perceptual_layer_weights: tuple[float, ...] = LAYER_WEIGHTS
    gan_width: int = 64
    decoder_negative_slope: float = 0.2
    generator_identity_init: bool = True
    decoder_output_block: bool = False
    discriminator_conditioning: Conditioning = "concat"


@dataclass(frozen=True)
class Optimization:
    """The optimisers (Sec. IV-B): Adam for G and for D, SGD for C.

    Attributes:
        gan_lr, gan_betas, gan_weight_decay: Adam of G and of D (2e-4, (0.5, 0.999), 0).
        classifier_lr, classifier_momentum, classifier_weight_decay: SGD of C (1e-3, 0.9, 0).
        lr_decay: factor applied to every learning rate after each epoch (1: constant; the
            authors' release uses 0.97).
    """

    gan_lr: float = 2e-4
    gan_betas: tuple[float, float] = (0.5, 0.999)
    gan_weight_decay: float = 0.0
    classifier_lr: float = 1e-3
    classifier_momentum: float = 0.9
    classifier_weight_decay: float = 0.0
    lr_decay: float = 1.0


def as_group(cls: type[Group], value: Group | dict[str, Any] | None) -> Group:
    """``value`` as a ``cls``: the defaults for None, a mapping (a config, a checkpoint) by field."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        unknown = set(value) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    raise TypeError(f"expected {cls.__name__} or a mapping, got {type(value).__name__}")
