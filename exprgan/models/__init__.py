"""The paper's networks as plain ``nn.Module``s (no Lightning, no device code)."""

from exprgan.models.backbones import ImageNetNormalize, build_backbone
from exprgan.models.classifier import ExpressionClassifier
from exprgan.models.decoder import Decoder
from exprgan.models.discriminator import ConditionalDiscriminator, MultiScaleDiscriminator
from exprgan.models.encoder import Encoder
from exprgan.models.expression_cnn import ExpressionCNN
from exprgan.models.generator import Generator, GeneratorOutput
from exprgan.models.l2norm import L2Norm
from exprgan.models.pretrained import PretrainedWeightsError
from exprgan.models.switch import SwitchUnit, block_bounds

__all__ = [
    "ConditionalDiscriminator",
    "Decoder",
    "Encoder",
    "ExpressionClassifier",
    "ExpressionCNN",
    "Generator",
    "GeneratorOutput",
    "ImageNetNormalize",
    "L2Norm",
    "MultiScaleDiscriminator",
    "PretrainedWeightsError",
    "SwitchUnit",
    "block_bounds",
    "build_backbone",
]
