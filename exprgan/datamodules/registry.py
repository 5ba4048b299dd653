"""The listings of the real data sets by name: what ``exprgan preprocess`` reads, what the DataModules index."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from exprgan.datamodules.images import INDEX_COLUMNS
from exprgan.datamodules.mmi import list_mmi
from exprgan.datamodules.multipie import list_multipie
from exprgan.datamodules.rafdb import list_rafdb

LISTINGS: dict[str, Callable[..., pd.DataFrame]] = {
    "rafdb": list_rafdb,
    "multipie": list_multipie,
    "mmi": list_mmi,
}
"""``name -> list_X(root, ...)``: a DataFrame with at least :data:`INDEX_COLUMNS`, one row per image or frame."""

__all__ = ["INDEX_COLUMNS", "LISTINGS"]
