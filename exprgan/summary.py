"""Parameter counts of the networks, to check them against the paper (Sec. IV-B): ``exprgan params``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from torch import nn

from exprgan.models.backbones import BackboneName
from exprgan.models.classifier import ExpressionClassifier
from exprgan.models.discriminator import MultiScaleDiscriminator
from exprgan.models.generator import Generator


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


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
    parts = {"G_enc": generator.encoder, "G_dec": generator.decoder, "D1": discriminator.d1, "D2": discriminator.d2}
    counts = {name: count_parameters(part) for name, part in parts.items()}
    counts["GAN"] = sum(counts.values())
    counts["classifier"] = count_parameters(ExpressionClassifier(num_expressions, backbone=backbone))
    counts["total"] = counts["GAN"] + counts["classifier"]
    return counts


def format_breakdown(counts: dict[str, int]) -> str:
    """A two-column markdown table of ``counts`` in millions."""
    rows = ["| part | parameters |", "| --- | ---: |"]
    rows += [f"| {name} | {value / 1e6:.2f}M |" for name, value in counts.items()]
    return "\n".join(rows)


def params_main(args: Sequence[str]) -> None:
    """``exprgan params``: print the parameter breakdown of the model."""
    parser = argparse.ArgumentParser(prog="exprgan params", description=params_main.__doc__)
    parser.add_argument("--num-expressions", type=int, default=7, help="n, the number of expressions (7)")
    parser.add_argument("--image-size", type=int, default=256, help="image side in pixels (256)")
    parser.add_argument("--backbone", default="vgg19", help="classifier backbone (vgg19)")
    options = parser.parse_args(args)
    print(format_breakdown(parameter_breakdown(options.num_expressions, options.image_size, options.backbone)))
