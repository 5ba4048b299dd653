"""Exact shortcuts of the training step, used by ``JointExprGAN(reuse_features=True)``.

Each function computes the same value as the plain path (up to floating-point rounding:
batches are split differently, so convolutions may sum in another order) with less work.
What they skip, found by profiling a step (``benchmarks/README.md``):

- **Perceptual loss**: the frozen VGG19 runs on ``[I_a, I_b, I_c, I_d]`` in one batch, so
  its backward pass computes input gradients for the real faces too, which nothing needs.
  :func:`perceptual_loss_split` runs the real faces under ``no_grad``: a third of the
  perceptual loss's backward (and its activations) is gone.
- **Classifier backbone**: the G phase runs C on the real and generated faces (for ``L_C``)
  and the C phase runs it again on the same faces; C does not change in between (only G
  is stepped), so for a backbone without batch statistics (VGG19, the paper's) the two
  forward passes are equal. :func:`backbone_features` computes them once, with the graph
  kept for the C phase's backward; the G phase's backward visits only the generated faces.

:func:`transfer` is the same kind of shortcut for synthesis at inference time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from exprgan.losses import PerceptualLoss, perceptual_loss
from exprgan.models import ExpressionClassifier, Generator


def has_batch_statistics(module: nn.Module) -> bool:
    """Whether a module normalises with batch statistics (BatchNorm, SyncBatchNorm) anywhere.

    Such a module's output depends on the rest of its batch and its forward pass updates
    running statistics, so two forward passes cannot be replaced by one.
    """
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def perceptual_loss_split(
    loss: PerceptualLoss,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    image_c: torch.Tensor,
    image_d: torch.Tensor,
) -> torch.Tensor:
    """``loss(images_a, images_b, image_c, image_d)`` with the real faces' features under ``no_grad``.

    The real faces are data: no gradient flows into them, and the VGG is frozen, so their
    features are constants of the generator's loss.
    """
    network = loss.network
    with torch.no_grad():
        real = [f.chunk(2) for f in network(torch.cat([images_a, images_b]))]
    fake = [f.chunk(2) for f in network(torch.cat([image_c, image_d]))]
    f_a, f_b = ([f[k] for f in real] for k in range(2))
    f_c, f_d = ([f[k] for f in fake] for k in range(2))
    return perceptual_loss(f_a, f_d, loss.layer_weights) + perceptual_loss(f_b, f_c, loss.layer_weights)


@dataclass
class BackboneFeatures:
    """Classifier backbone outputs of one step, shared by the G and C phases.

    Attributes:
        real: backbone features of ``[I_a, I_b]``: ``[2N, C, H/32, W/32]``, graph to C's
            parameters.
        generated: those of ``[I_c, I_d]`` (not detached: the graph reaches both C's
            parameters and G through the pixels), or None when C never sees generated faces.
    """

    real: torch.Tensor
    generated: torch.Tensor | None


def backbone_features(
    classifier: ExpressionClassifier, real: torch.Tensor, generated: torch.Tensor | None
) -> BackboneFeatures:
    """Run C's backbone once on the real and the generated faces (two calls: only the
    generated ones need an input gradient)."""
    run = classifier.backbone
    return BackboneFeatures(
        real=run(classifier.normalize(real)),
        generated=run(classifier.normalize(generated)) if generated is not None else None,
    )


def classifier_head(
    classifier: ExpressionClassifier, features: torch.Tensor, representation: torch.Tensor | None
) -> torch.Tensor:
    """Logits ``[N, n]`` from backbone features: the rest of ``ExpressionClassifier.forward``."""
    x = features
    if classifier.uses_representation:
        if representation is None or representation.shape[0] != x.shape[0]:
            raise ValueError("this classifier fuses G_enc's representation: pass one per image")
        x = torch.cat([x, representation], dim=1)
    return classifier.forward_head(classifier.pool(classifier.fuse(x)))


def transfer(
    generator: Generator,
    identity_images: torch.Tensor,
    reference_images: torch.Tensor,
    identity_labels: torch.Tensor,
    reference_labels: torch.Tensor,
) -> torch.Tensor:
    """``generator.transfer(...)``'s output, decoding only the images it returns.

    ``Generator.transfer`` runs the training forward pass, which decodes four images per
    pair (``I_c, I_d, I'_a, I'_b``) and keeps one. Here each sample is decoded once: from
    ``[R_c, R_a, S]``, or from ``[R_a, R_a, 0]`` (its reconstruction) where the two labels
    are equal. Same values up to floating-point rounding; a quarter of the decoder's work.
    """
    switch = generator.switch
    features = generator.encoder.forward_features(torch.cat([identity_images, reference_images]))
    code_a, code_b = features[-1].chunk(2)  # each [N, 512, H/32, W/32]
    same = identity_labels == reference_labels
    safe_reference = torch.where(same, (identity_labels + 1) % generator.num_expressions, reference_labels)
    code_c, _ = switch.swap(code_a, code_b, identity_labels, safe_reference)
    keep = same[:, None, None, None]
    switched = torch.where(keep, code_a, code_c)
    code = torch.where(keep, switch.zero_code(code_a), switch.code(identity_labels, safe_reference, code_a))
    skips = [f[: len(identity_images)] for f in features[:-1]]
    residual = generator.decoder(switched, code_a, code, skips)
    return (identity_images + residual).clamp(-1.0, 1.0)
