"""Data: unpaired pair sampling and per-dataset DataModules.

Names are imported lazily, on first use: reading an image (:mod:`.io`), which preprocessing
workers do, does not pull in Lightning and every data set.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Augmentation": "augment",
    "PairDataModule": "base",
    "assign_folds": "folds",
    "subject_folds": "folds",
    "INDEX_COLUMNS": "images",
    "CacheError": "images",
    "DataRootError": "images",
    "FaceImages": "images",
    "ImageFolderDataModule": "images",
    "LabelFileError": "images",
    "read_cache": "images",
    "BadImageError": "io",
    "read_image": "io",
    "MMI_CLASSES_6": "mmi",
    "MMI_CLASSES_7": "mmi",
    "MMIDataModule": "mmi",
    "list_mmi": "mmi",
    "MULTIPIE_CLASSES": "multipie",
    "PAN_CAMERAS": "multipie",
    "MultiPIEDataModule": "multipie",
    "list_multipie": "multipie",
    "EmptyClassError": "pairs",
    "UnpairedPairs": "pairs",
    "class_members": "pairs",
    "sample_pairs": "pairs",
    "target_expression": "pairs",
    "RAFDB_CLASSES": "rafdb",
    "RAFDBDataModule": "rafdb",
    "list_rafdb": "rafdb",
    "LISTINGS": "registry",
    "SyntheticFacesDataModule": "synthetic",
    "SynthesizedDataModule": "synthesized",
    "EXPRESSIONS": "synthetic_faces",
    "render": "synthetic_faces",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"exprgan.datamodules.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'exprgan.datamodules' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
