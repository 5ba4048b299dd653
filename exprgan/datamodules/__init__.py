"""Data: unpaired pair sampling and per-dataset DataModules."""

from exprgan.datamodules.augment import Augmentation
from exprgan.datamodules.base import PairDataModule
from exprgan.datamodules.folds import assign_folds, subject_folds
from exprgan.datamodules.images import (
    INDEX_COLUMNS,
    CacheError,
    DataRootError,
    FaceImages,
    ImageFolderDataModule,
    LabelFileError,
    read_cache,
)
from exprgan.datamodules.io import BadImageError
from exprgan.datamodules.mmi import MMI_CLASSES_6, MMI_CLASSES_7, MMIDataModule, list_mmi
from exprgan.datamodules.multipie import MULTIPIE_CLASSES, PAN_CAMERAS, MultiPIEDataModule, list_multipie
from exprgan.datamodules.pairs import EmptyClassError, UnpairedPairs, class_members, sample_pairs, target_expression
from exprgan.datamodules.rafdb import RAFDB_CLASSES, RAFDBDataModule, list_rafdb
from exprgan.datamodules.registry import LISTINGS
from exprgan.datamodules.synthetic import SyntheticFacesDataModule
from exprgan.datamodules.synthetic_faces import EXPRESSIONS, render

__all__ = [
    "EXPRESSIONS",
    "INDEX_COLUMNS",
    "LISTINGS",
    "MMI_CLASSES_6",
    "MMI_CLASSES_7",
    "MULTIPIE_CLASSES",
    "PAN_CAMERAS",
    "RAFDB_CLASSES",
    "Augmentation",
    "BadImageError",
    "CacheError",
    "DataRootError",
    "EmptyClassError",
    "FaceImages",
    "ImageFolderDataModule",
    "LabelFileError",
    "MMIDataModule",
    "MultiPIEDataModule",
    "PairDataModule",
    "RAFDBDataModule",
    "SyntheticFacesDataModule",
    "UnpairedPairs",
    "assign_folds",
    "class_members",
    "list_mmi",
    "list_multipie",
    "list_rafdb",
    "read_cache",
    "render",
    "sample_pairs",
    "subject_folds",
    "target_expression",
]
