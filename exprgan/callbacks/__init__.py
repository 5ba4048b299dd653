"""The side jobs of a run beside :class:`~exprgan.joint.JointExprGAN`'s steps: the evaluation report
(always added by the ``exprgan`` CLI), the training images' log, checkpoints, a moving average of the weights."""

from exprgan.callbacks.averaging import EMAWeightAveraging
from exprgan.callbacks.checkpoint import ModelCheckpoint
from exprgan.callbacks.images import TrainingImages
from exprgan.callbacks.report import EvaluationReport

__all__ = ["EMAWeightAveraging", "EvaluationReport", "ModelCheckpoint", "TrainingImages"]
