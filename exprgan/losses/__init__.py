"""Losses of the paper (Eq. 5-12): pure functions of tensors, weights passed by the caller."""

from exprgan.losses.adversarial import SCALE_WEIGHTS, adversarial_loss, d_adversarial_loss, multiscale_adversarial_loss
from exprgan.losses.classification import classification_loss
from exprgan.losses.gradient_penalty import r1_penalty
from exprgan.losses.perceptual import LAYER_WEIGHTS, PerceptualLoss, VGGFeatures, perceptual_loss
from exprgan.losses.reconstruction import change_l1, pixel_sum_loss, reconstruction_loss
from exprgan.losses.total_variation import total_variation
from exprgan.losses.weights import LossWeights

__all__ = [
    "LAYER_WEIGHTS",
    "SCALE_WEIGHTS",
    "LossWeights",
    "PerceptualLoss",
    "VGGFeatures",
    "adversarial_loss",
    "change_l1",
    "classification_loss",
    "d_adversarial_loss",
    "multiscale_adversarial_loss",
    "perceptual_loss",
    "pixel_sum_loss",
    "r1_penalty",
    "reconstruction_loss",
    "total_variation",
]
