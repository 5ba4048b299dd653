"""Data: unpaired pair sampling and the DataModules of the demo faces and the paper's data sets.

Reading images and the crop cache lives in :mod:`exprgan.cache` (no Lightning), which
preprocessing workers import instead of this package.
"""

from collections.abc import Callable

import pandas as pd

from exprgan.cache import INDEX_COLUMNS, BadImageError, CacheError, read_cache, read_image
from exprgan.datamodules.augment import Augmentation
from exprgan.datamodules.base import PairDataModule
from exprgan.datamodules.face_renderer import EXPRESSIONS, render
from exprgan.datamodules.folds import assign_folds, subject_folds
from exprgan.datamodules.generated_sets import SynthesizedDataModule
from exprgan.datamodules.images import DataRootError, FaceImages, ImageFolderDataModule, LabelFileError
from exprgan.datamodules.mmi import MMI_CLASSES_6, MMI_CLASSES_7, MMIDataModule, list_mmi
from exprgan.datamodules.multipie import MULTIPIE_CLASSES, PAN_CAMERAS, MultiPIEDataModule, list_multipie
from exprgan.datamodules.pairs import EmptyClassError, UnpairedPairs, class_members, sample_pairs, target_expression
from exprgan.datamodules.rafdb import RAFDB_CLASSES, RAFDBDataModule, list_rafdb
from exprgan.datamodules.rendered_faces import SyntheticFacesDataModule

LISTINGS: dict[str, Callable[..., pd.DataFrame]] = {"rafdb": list_rafdb, "multipie": list_multipie, "mmi": list_mmi}
"""``name -> list_X(root, ...)``: the listing of a raw data set tree that ``exprgan preprocess`` reads."""

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
    "SynthesizedDataModule",
    "SyntheticFacesDataModule",
    "UnpairedPairs",
    "assign_folds",
    "class_members",
    "list_mmi",
    "list_multipie",
    "list_rafdb",
    "read_cache",
    "read_image",
    "render",
    "sample_pairs",
    "subject_folds",
    "target_expression",
]
