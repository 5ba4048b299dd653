"""Parameter counts of the networks, to check them against the paper (Sec. IV-B)."""

from __future__ import annotations

from torch import nn

from exprgan.models.backbones import BackboneName
from exprgan.models.classifier import ExpressionClassifier
from exprgan.models.discriminator import MultiScaleDiscriminator
from exprgan.models.generator import Generator


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_breakdown(
    num_expressions: int = 7, image_size: int = 256, backbone: BackboneName = "vgg19"
) -> dict[str, int]:
    """Trainable parameters of every part of the model, built randomly initialised.

    Keys: ``G_enc``, ``G_dec``, ``D1``, ``D2``, ``GAN`` (their sum), ``classifier`` (C without
    G_enc, which it shares) and ``total``. The paper reports GAN 14M, classifier 140.1M,
    total 154.1M at ``n = 7``, 256 px.
    """
    generator = Generator(num_expressions)
    discriminator = MultiScaleDiscriminator(num_expressions, image_size)
    classifier = ExpressionClassifier(num_expressions, backbone=backbone)
    counts = {
        "G_enc": count_parameters(generator.encoder),
        "G_dec": count_parameters(generator.decoder),
        "D1": count_parameters(discriminator.d1),
        "D2": count_parameters(discriminator.d2),
    }
    counts["GAN"] = sum(counts.values())
    counts["classifier"] = count_parameters(classifier)
    counts["total"] = counts["GAN"] + counts["classifier"]
    return counts


def format_breakdown(counts: dict[str, int]) -> str:
    """A two-column markdown table of ``counts`` in millions."""
    rows = ["| part | parameters |", "| --- | ---: |"]
    rows += [f"| {name} | {value / 1e6:.2f}M |" for name, value in counts.items()]
    return "\n".join(rows)
