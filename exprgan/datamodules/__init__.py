"""Data: unpaired pair sampling and per-dataset DataModules."""

from exprgan.datamodules.base import PairDataModule
from exprgan.datamodules.pairs import EmptyClassError, UnpairedPairs, class_members, sample_pairs, target_expression
from exprgan.datamodules.synthetic import SyntheticFacesDataModule
from exprgan.datamodules.synthetic_faces import EXPRESSIONS, render

__all__ = [
    "EXPRESSIONS",
    "EmptyClassError",
    "PairDataModule",
    "SyntheticFacesDataModule",
    "UnpairedPairs",
    "class_members",
    "render",
    "sample_pairs",
    "target_expression",
]
