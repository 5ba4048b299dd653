"""Callbacks: the side jobs of a run, beside :class:`~exprgan.joint.JointExprGAN`'s steps.

- :class:`EvaluationReport`: what validation and ``exprgan test`` report beyond accuracy
  (per-class and per-pose accuracy, the confusion matrix, transfers judged against ground
  truth, the results files); the ``exprgan`` CLI always adds it (``--report.*``).
- :class:`TrainingImages`: a grid of the training pairs, their transfers and reconstructions.
- :class:`ModelCheckpoint`: Lightning's, with a ``last.ckpt`` of the model training stopped with.
"""

from exprgan.callbacks.checkpoint import ModelCheckpoint
from exprgan.callbacks.images import TrainingImages
from exprgan.callbacks.report import EvaluationReport

__all__ = ["EvaluationReport", "ModelCheckpoint", "TrainingImages"]
